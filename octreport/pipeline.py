"""One run of octreport, top to bottom: data -> model -> evaluation (-> figures -> report)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from octreport.config import TrainConfig
from octreport.resources import sample_data_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOutcome:
    model_path: Path
    test_accuracy: float
    test_images: int
    train_seconds: float


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
