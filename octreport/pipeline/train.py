"""``octreport train``: train on the training side, evaluate on the test split, save the model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from octreport.config import TrainConfig
from octreport.data.dicom_headers import SPLIT_SALT, DicomHeaderReads
from octreport.evaluation.predict import predict_items
from octreport.models.distribute import distributed, is_chief, output_root
from octreport.models.io import save_model
from octreport.models.training import train_model
from octreport.pipeline.data_stages import prepare
from octreport.runfolder import prepare_output_folder


@dataclass(frozen=True)
class TrainOutcome:
    model_path: Path
    test_accuracy: float
    test_images: int
    train_seconds: float
    saved: bool = True  # False on a non-chief multi-worker task (see octreport.models.distribute)
    referral_rule: str = ""  # the urgent-referral rule stored with the model, in words; "" for other classes


def train_evaluate_save(data_dir: Path | None, model_path: Path, config: TrainConfig) -> TrainOutcome:
    """Train on ``data_dir`` (default: the bundled sample data), evaluate on its test split, save."""
    data = prepare(data_dir, config)
    with distributed(config.distribute) as strategy:
        if is_chief(strategy):
            prepare_output_folder(model_path.parent, "--out's folder")
        headers = DicomHeaderReads(data.root, SPLIT_SALT)  # the devices, from training's one read of each file
        trained = train_model(data, config, headers)
        predictions = predict_items(trained.model, data.test, config.preprocessing, config.batch_size)
        accuracy = float((predictions.predicted == predictions.labels).mean()) if len(predictions.labels) else 0.0
        with output_root(strategy, model_path.parent) as folder:
            save_model(trained.model, folder / model_path.name, trained.metadata)
    rule = trained.metadata.referral_rule
    return TrainOutcome(model_path, accuracy, len(predictions.labels), trained.seconds, is_chief(strategy),
                        "" if rule is None else rule.labelled)
