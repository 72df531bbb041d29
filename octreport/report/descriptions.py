"""What the report says about the run around its numbers: the model and data blocks of the title,
the data set's citation, and the appendix's reproduction rows and package versions."""

from __future__ import annotations

from octreport.document.results import RunResults
from octreport.provenance import package_versions
from octreport.report.views import KeyValue
from octreport.resources import sample_data_dir

DATASET_CITATION = (
    "Kermany, D.; Zhang, K.; Goldbaum, M. (2018), Large Dataset of Labeled Optical Coherence Tomography (OCT) "
    "and Chest X-Ray Images, Mendeley Data, doi:10.17632/rscbjbr9sj, CC BY 4.0. Paper: Kermany et al., "
    "Identifying Medical Diagnoses and Treatable Diseases by Image-Based Deep Learning, Cell 172(5):1122-1131, 2018."
)


def data_label(results: RunResults) -> str:
    """The data folder as the report names it: the bundled sample data by name (installed, its path
    is a long site-packages one), any other folder by its path."""
    return "octreport's bundled synthetic sample data (sample_data/)" if _is_bundled_sample(results) else str(results.data.root)


def dataset_citation(results: RunResults) -> str | None:
    """The Kermany data set's citation, for a run on the four OCT classes that is not the bundled sample."""
    return None if _is_bundled_sample(results) else (DATASET_CITATION if results.referral else None)


def model_description(results: RunResults) -> tuple[KeyValue, ...]:
    model = results.model
    rows = [
        KeyValue("Model", f"{model.name} ({results.model_source})"),
        KeyValue("Parameters", f"{model.count_params():,}"),
        KeyValue("Input", results.preprocessing.describe()),
    ]
    if results.input_scale is not None:
        rows.append(KeyValue("Input convention", results.input_scale.reason))
    drawn = len(results.layer_selection.drawn)
    rows.append(KeyValue("Convolutional layers", str(len(results.layers)) if drawn == len(results.layers)
                         else f"{len(results.layers)} ({drawn} drawn)"))
    metadata = results.metadata
    if metadata is not None and metadata.history:
        training = metadata.training
        rows.append(KeyValue(
            "Training",
            f"{training.get('architecture', '?')} network, {len(metadata.history.get('loss', []))} epochs run, "
            f"weights from epoch {metadata.best_epoch}, {training.get('train_images', '?')} training and "
            f"{training.get('val_images', '?')} validation images",
        ))
    return tuple(rows)


def data_description(results: RunResults) -> tuple[KeyValue, ...]:
    """The data block: every split for a run that trained; for one that only evaluates a model,
    the test split alone and where it came from."""
    data = results.data
    counts = data.counts()
    if results.train_config is None:
        test = counts["test"]
        return (
            KeyValue("Folder", data_label(results)),
            KeyValue("Evaluated", data.split_note),
            KeyValue("Evaluated images", _counts_text(test)),
            KeyValue("Skipped files", str(len(results.skipped))),
        )
    return (
        KeyValue("Folder", data_label(results)),
        KeyValue("Splits", data.split_note),
        *(
            KeyValue(f"{split.capitalize()} images", _counts_text(c))
            for split, c in counts.items()
        ),
        KeyValue("Skipped files", str(len(results.skipped))),
    )


def reproduce_rows(results: RunResults) -> tuple[KeyValue, ...]:
    rows = [KeyValue("Seed", str(results.report_config.seed)), KeyValue("Preprocessing", results.preprocessing.describe())]
    if results.train_config is not None:
        config = results.train_config
        rows += [
            KeyValue("Architecture", config.architecture),
            KeyValue("Training", f"at most {config.epochs} epochs, batch {config.batch_size}, learning rate {config.learning_rate}, "
                     f"augmentation {_augmentation_text(config)}, class weights {'on' if config.class_weights else 'off'}, "
                     f"early-stopping patience {config.early_stopping_patience}"),
            KeyValue("Reproducibility", "deterministic: the same seed, data and machine give bit-identical weights"
                     if config.deterministic else "fast, nondeterministic (--fast-nondeterministic): a rerun may differ"),
        ]
    rows.append(KeyValue("Started", results.started_at))
    return tuple(rows)


def version_rows() -> tuple[KeyValue, ...]:
    return tuple(KeyValue(name, version) for name, version in package_versions().items())


def _counts_text(per_class: dict[str, int]) -> str:
    """``"40 (CNV 10, DME 10, DRUSEN 10, NORMAL 10)"``."""
    return f"{sum(per_class.values())} ({', '.join(f'{name} {n}' for name, n in per_class.items())})"


def _augmentation_text(config) -> str:
    augmentation = config.augmentation()
    return f"on ({augmentation.describe()})" if augmentation else "off"


def _is_bundled_sample(results: RunResults) -> bool:
    try:
        return results.data.root.resolve() == sample_data_dir().resolve()
    except FileNotFoundError:
        return False
