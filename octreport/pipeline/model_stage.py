"""The model a run is about: loaded from a file, taken from Python, or trained in the run, with
the input convention it is fed in."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import keras

from octreport.audit.mlflow_models import RegistryModel
from octreport.config import TrainConfig
from octreport.data.dataset import PreparedData
from octreport.data.dicom_headers import DicomHeaderReads
from octreport.data.image_facts import SplitFacts
from octreport.data.preprocessing import Preprocessing
from octreport.engine.layer_selection import choose_drawn_layers
from octreport.engine.layers import discover_conv_layers
from octreport.evaluation.predict import Predictions
from octreport.models.architectures import build_model
from octreport.models.input_scale import InputScaleChoice, choose_input_scale
from octreport.models.io import load_model, model_class_names, preprocessing_for, save_model
from octreport.models.metadata import ModelMetadata, sidecar_path
from octreport.models.training import train_model

log = logging.getLogger(__name__)

TRAINED = "trained in this run"


@dataclass(frozen=True, eq=False)
class GivenModel:
    """The model a report is about, where it came from, and the preprocessing it expects
    (``input_scale``: the input convention in it, and why)."""

    model: keras.Model
    source: str
    path: Path | None
    metadata: ModelMetadata | None
    preprocessing: Preprocessing
    input_scale: InputScaleChoice
    class_names: tuple[str, ...] = ()
    """The model's classes in output order (its sidecar, ``--class-names``, or the data's folders)."""
    registry: Mapping[str, Any] | None = None
    """Where an MLflow model came from (:meth:`RegistryModel.to_dict`); None for a file or in-memory model."""
    validation: Predictions | None = None
    """A model trained in this run: its predictions on the validation split, made once by training."""

    @property
    def trained_in_run(self) -> bool:
        return self.source == TRAINED

    def files(self) -> tuple[Path, ...]:
        """The model files the manifest hashes: the model, and its sidecar when the run trained it
        (both then lie in the run folder)."""
        if self.path is None:
            return ()
        return (self.path, sidecar_path(self.path)) if self.trained_in_run else (self.path,)


def given_model(model: keras.Model | Path | str | RegistryModel, data_class_names: tuple[str, ...], input_scale: str,
                class_names: tuple[str, ...] = ()) -> GivenModel:
    """Load (a path, or a model fetched from MLflow) or take (a ``keras.Model``) the model, name its
    classes (its sidecar, else ``class_names`` from ``--class-names``, else ``data_class_names``, the
    data's class folders: none for unlabelled scans), check it has convolutional layers to show, and
    settle the input convention it is fed in."""
    registry = None
    if isinstance(model, keras.Model):
        source, path, metadata = f"in-memory model '{model.name}'", None, None
    elif isinstance(model, RegistryModel):
        loaded = load_model(model.file)
        model, source, path, metadata, registry = loaded.model, model.uri, loaded.path, loaded.metadata, model.to_dict()
    else:
        loaded = load_model(model)
        model, source, path, metadata = loaded.model, str(loaded.path), loaded.path, loaded.metadata
    names = model_class_names(model, data_class_names, metadata, class_names)
    saved = metadata.preprocessing if metadata else None
    preprocessing = preprocessing_for(model, saved)
    discover_conv_layers(model)
    choice = choose_input_scale(model, input_scale, saved)
    preprocessing = replace(preprocessing, input_scale=choice.scale)
    log.info("input convention: %s", choice.reason)
    return GivenModel(model, source, path, metadata, preprocessing, choice, names, registry)


def train_given_model(data: PreparedData, config: TrainConfig, path: Path,
                      headers: DicomHeaderReads | None = None) -> tuple[GivenModel, SplitFacts]:
    """Train the configured network, recording the training images' acquisition profile (with
    their DICOM devices, from ``headers``, which sees each file's one read), and save it (with its
    sidecar) at ``path``. Also returns the training and validation images' facts and digests,
    from the same read."""
    trained = train_model(data, config, headers)
    preprocessing = config.preprocessing
    choice = InputScaleChoice(preprocessing.input_scale, "trained",
                              f"{preprocessing.input_scale_text}: the model was trained in this run on it")
    given = GivenModel(trained.model, TRAINED, path, trained.metadata, preprocessing, choice, data.class_names,
                       validation=trained.validation)
    save_model(given.model, path, given.metadata)
    return given, trained.facts


def check_layer_names(given: GivenModel | None, config: TrainConfig, num_classes: int, names) -> None:
    """Refuse unknown ``--layers`` names up front; a model still to be trained is checked on its
    untrained architecture, which has the same layers."""
    if not names:
        return
    probe = given.model if given else build_model(config.architecture, config.preprocessing.input_shape, num_classes)
    choose_drawn_layers(discover_conv_layers(probe), names)
