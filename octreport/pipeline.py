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

from typing import TYPE_CHECKING

from octreport.config import ReportConfig, TrainConfig
from octreport.resources import sample_data_dir

if TYPE_CHECKING:  # TensorFlow is imported only once a run starts.
    import keras

    from octreport.data.preprocessing import Preprocessing
    from octreport.models.metadata import ModelMetadata

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
    the test split, look inside it, and write the report into a new run folder.

    Everything a user can get wrong (data folder, model file, layer names, images) is checked
    before the run folder is made, so a refused run leaves nothing behind.
    """
    from octreport.data.dataset import prepare_data
    from octreport.engine.layers import discover_conv_layers, select_layers
    from octreport.evaluation.metrics import compute_classification_metrics
    from octreport.evaluation.predict import predict_items
    from octreport.evaluation.referral import compute_referral_metrics
    from octreport.models.architectures import build_model
    from octreport.models.io import save_model
    from octreport.models.training import train_model
    from octreport.report.write import write_report
    from octreport.results import RunResults
    from octreport.runfolder import run_folder
    from octreport.visuals import choose_images, compute_visuals, items_from_paths

    timings: dict[str, float] = {}
    started_at = datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
    seed = train_config.seed
    data = prepare_data(data_dir or sample_data_dir(), seed, train_config.val_fraction, train_config.test_fraction)
    log.info("data: %s (%s); %s", data.root, ", ".join(data.class_names), data.split_note)
    given = None if model is None else _given_model(model, data)
    layer_names = report_config.layer_names or None
    # For a model still to be trained, check the layer names on the untrained architecture.
    probe = given.model if given else build_model(train_config.architecture, train_config.preprocessing.input_shape, len(data.class_names))
    select_layers(discover_conv_layers(probe), layer_names)
    requested = items_from_paths(report_config.image_paths, data.class_names) if report_config.image_paths else None

    with run_folder(Path(report_config.out_root)) as folder:
        if given is None:
            with _stage(timings, "train"):
                trained = train_model(data, train_config)
                given = GivenModel(trained.model, TRAINED, folder.work / "model.keras", trained.metadata, train_config.preprocessing)
                save_model(given.model, given.path, given.metadata)
        layers = select_layers(discover_conv_layers(given.model), layer_names)
        with _stage(timings, "evaluate"):
            predictions = predict_items(given.model, data.test, given.preprocessing, report_config.batch_size)
            metrics = compute_classification_metrics(predictions.labels, predictions.probabilities, data.class_names)
            referral = compute_referral_metrics(predictions.labels, predictions.probabilities, data.class_names)
        with _stage(timings, "visualize"):
            shown = requested or choose_images(
                predictions.items, len(data.class_names), report_config.images_per_class, report_config.seed
            )
            visuals = compute_visuals(
                given.model, layers, shown, given.preprocessing, report_config.maps_per_layer,
                report_config.channel_selection, report_config.filters_per_layer, report_config.filter_reduction,
                report_config.batch_size,
            )
        results = RunResults(
            data=data, model=given.model, model_source=given.source, model_path=given.path, metadata=given.metadata,
            preprocessing=given.preprocessing, predictions=predictions, metrics=metrics, referral=referral,
            layers=layers, visuals=visuals, train_config=train_config if given.source == TRAINED else None,
            report_config=report_config, command_line=command_line, started_at=started_at, timings=timings,
        )
        written = write_report(results, folder.work, report_config, timings)
    return RunOutcome(
        run_dir=folder.final,
        html_path=folder.published(written.html) if written.html else None,
        pdf_path=folder.published(written.pdf) if written.pdf else None,
        metrics_path=folder.published(written.metrics),
        accuracy=metrics.accuracy,
        timings=dict(timings),
    )


TRAINED = "trained in this run"


@dataclass(frozen=True, eq=False)
class GivenModel:
    """The model a report is about, where it came from, and the preprocessing it expects."""

    model: keras.Model
    source: str
    path: Path | None
    metadata: ModelMetadata | None
    preprocessing: Preprocessing | None


def _given_model(model, data) -> GivenModel:
    """Load (a path) or take (a ``keras.Model``) the model, and check it fits the data."""
    import keras

    from octreport.models.io import check_model_fits, load_model, preprocessing_for

    if isinstance(model, keras.Model):
        given = GivenModel(model, f"in-memory model '{model.name}'", None, None, None)
    else:
        loaded = load_model(model)
        given = GivenModel(loaded.model, str(loaded.path), loaded.path, loaded.metadata, None)
    saved = given.metadata.preprocessing if given.metadata else None
    preprocessing = preprocessing_for(given.model, saved)
    check_model_fits(given.model, data.class_names, given.metadata)
    return GivenModel(given.model, given.source, given.path, given.metadata, preprocessing)
