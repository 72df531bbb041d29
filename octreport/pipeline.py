"""One run of octreport, top to bottom:

data -> model (trained or loaded) -> conv layers -> {metrics, activations, filters}
     -> figures -> report context -> HTML -> PDF -> run folder (+ metrics.json)
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from octreport.config import ReportConfig, TrainConfig
from octreport.resources import sample_data_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOutcome:
    model_path: Path
    test_accuracy: float
    test_images: int
    train_seconds: float


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    html_path: Path | None
    pdf_path: Path | None
    metrics_path: Path
    accuracy: float
    timings: dict[str, float]


@contextmanager
def _stage(timings: dict[str, float], name: str):
    started = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - started
    log.info("%s took %.1f s", name, timings[name])


def train_evaluate_save(data_dir: Path | None, model_path: Path, config: TrainConfig) -> TrainOutcome:
    """Train on ``data_dir`` (default: the bundled sample data), evaluate on its test split, save."""
    from octreport.data.dataset import prepare_data
    from octreport.evaluation.predict import predict_items
    from octreport.models.io import save_model
    from octreport.models.training import train_model

    data = prepare_data(data_dir or sample_data_dir(), config.seed, config.val_fraction, config.test_fraction)
    log.info("data: %s (%s); %s", data.root, ", ".join(data.class_names), data.split_note)
    trained = train_model(data, config)
    predictions = predict_items(trained.model, data.test, config.preprocessing, config.batch_size)
    accuracy = float((predictions.predicted == predictions.labels).mean()) if len(predictions.labels) else 0.0
    save_model(trained.model, model_path, trained.metadata)
    return TrainOutcome(model_path, accuracy, len(predictions.labels), trained.seconds)


def run_report(
    *,
    data_dir: Path | str | None,
    model=None,
    train_config: TrainConfig = TrainConfig(),
    report_config: ReportConfig = ReportConfig(),
    command_line: str = "",
) -> RunOutcome:
    """Train (``model=None``) or load (a path) or take (a ``keras.Model``) a model, evaluate it on
    the test split, look inside it, and write the report into a new run folder."""
    from octreport.data.dataset import prepare_data
    from octreport.engine.layers import discover_conv_layers, select_layers
    from octreport.evaluation.metrics import compute_classification_metrics
    from octreport.evaluation.predict import predict_items
    from octreport.evaluation.referral import compute_referral_metrics
    from octreport.models.io import save_model
    from octreport.report.write import write_report
    from octreport.results import RunResults
    from octreport.runfolder import run_folder
    from octreport.visuals import choose_images, compute_visuals, items_from_paths

    timings: dict[str, float] = {}
    started_at = datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
    with run_folder(Path(report_config.out_root)) as folder:
        work = folder.work
        seed = train_config.seed
        data = prepare_data(data_dir or sample_data_dir(), seed, train_config.val_fraction, train_config.test_fraction)
        log.info("data: %s (%s); %s", data.root, ", ".join(data.class_names), data.split_note)
        with _stage(timings, "train"):
            model, source, model_path, metadata, preprocessing = _obtain_model(model, data, train_config)
            if source == TRAINED:
                model_path = work / "model.keras"
                save_model(model, model_path, metadata)
        layers = select_layers(discover_conv_layers(model), report_config.layer_names or None)
        with _stage(timings, "evaluate"):
            predictions = predict_items(model, data.test, preprocessing, report_config.batch_size)
            metrics = compute_classification_metrics(predictions.labels, predictions.probabilities, data.class_names)
            referral = compute_referral_metrics(predictions.labels, predictions.probabilities, data.class_names)
        with _stage(timings, "visualize"):
            shown = (
                items_from_paths(report_config.image_paths, data.class_names)
                if report_config.image_paths
                else choose_images(predictions.items, len(data.class_names), report_config.images_per_class, report_config.seed)
            )
            visuals = compute_visuals(
                model, layers, shown, preprocessing, report_config.maps_per_layer, report_config.channel_selection,
                report_config.filters_per_layer, report_config.filter_reduction, report_config.batch_size,
            )
        results = RunResults(
            data=data, model=model, model_source=source, model_path=model_path, metadata=metadata,
            preprocessing=preprocessing, predictions=predictions, metrics=metrics, referral=referral,
            layers=layers, visuals=visuals, train_config=train_config if source == TRAINED else None,
            report_config=report_config, command_line=command_line, started_at=started_at, timings=timings,
        )
        written = write_report(results, work, report_config, timings)
    return RunOutcome(
        run_dir=folder.final,
        html_path=folder.published(written.html) if written.html else None,
        pdf_path=folder.published(written.pdf) if written.pdf else None,
        metrics_path=folder.published(written.metrics),
        accuracy=metrics.accuracy,
        timings=dict(timings),
    )


TRAINED = "trained in this run"


def _obtain_model(model, data, train_config: TrainConfig):
    """The model to report on, where it came from, its path, metadata and preprocessing."""
    import keras

    from octreport.models.io import check_model_fits, load_model, preprocessing_for
    from octreport.models.training import train_model

    if model is None:
        trained = train_model(data, train_config)
        return trained.model, TRAINED, None, trained.metadata, train_config.preprocessing
    if isinstance(model, keras.Model):
        loaded_model, path, metadata = model, None, None
        source = f"in-memory model '{model.name}'"
    else:
        loaded = load_model(model)
        loaded_model, path, metadata = loaded.model, loaded.path, loaded.metadata
        source = str(loaded.path)
    preprocessing = preprocessing_for(loaded_model, metadata.preprocessing if metadata else None)
    check_model_fits(loaded_model, data.class_names, metadata)
    return loaded_model, source, path, metadata, preprocessing
