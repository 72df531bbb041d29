"""Save and load models, and check that a model fits the images it will be given."""

from __future__ import annotations

import logging
import os
import secrets
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras

from octreport.data.layout import folder_key
from octreport.data.preprocessing import Preprocessing
from octreport.errors import ConfigError, ModelError
from octreport.models.metadata import ModelMetadata, read_metadata, sidecar_path, write_metadata

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclass(frozen=True)
class LoadedModel:
    model: keras.Model
    path: Path | None
    metadata: ModelMetadata | None


def save_model(model: keras.Model, path: Path, metadata: ModelMetadata) -> None:
    """Write ``model`` to ``path`` (``.keras``) and its metadata sidecar beside it. Each file is
    written under a temporary name and renamed into place, so an interrupted save leaves the
    previous model (or none), never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial-{secrets.token_hex(4)}.keras")
    try:
        model.save(partial)
        write_metadata(partial, metadata)
        os.replace(sidecar_path(partial), sidecar_path(path))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
        sidecar_path(partial).unlink(missing_ok=True)


def load_model(path: Path | str) -> LoadedModel:
    """Load a Keras 3 ``.keras`` file (safe mode) or a legacy ``.h5`` file, with its sidecar if any."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"Model file '{path}' does not exist. Give the path of a .keras or .h5 file.")
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise ModelError(
            f"'{path}' is not a Keras model file: expected a name ending in {', '.join(MODEL_SUFFIXES)}."
        )
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        raise ModelError(f"'{path}' is not a Keras model: a .keras file is a zip archive, this one is not.")
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for a broken or foreign file.
        raise ModelError(f"Could not load '{path}' as a Keras model: {error}") from error
    if not isinstance(model, keras.Model):
        raise ModelError(f"'{path}' holds a {type(model).__name__}, not a Keras model.")
    return LoadedModel(model, path, read_metadata(path))


def preprocessing_for(model: keras.Model, saved: Preprocessing | None) -> Preprocessing:
    """The preprocessing a model expects: the saved one, else derived from its input shape."""
    shape = _image_input_shape(model)
    if saved is not None:
        if (saved.height, saved.width, saved.channels) != shape:
            raise ModelError(
                f"The model's saved preprocessing ({saved.height}x{saved.width}x{saved.channels}) does not "
                f"match its input shape {shape}. The sidecar file does not belong to this model."
            )
        return saved
    log.info("no saved preprocessing: resizing images to the model's input %sx%sx%s", *shape)
    return Preprocessing(height=shape[0], width=shape[1], channels=shape[2])


def model_class_names(model: keras.Model, data_class_names: tuple[str, ...], metadata: ModelMetadata | None,
                      given_names: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The model's classes in output order: from its sidecar, else ``given_names``
    (``--class-names``), else the data's class folders when there are as many as outputs.

    Refuses a model with other than one class-probability output, ``given_names`` that disagree
    with the sidecar or with the number of outputs, and a model without names whose outputs the
    data's folders cannot name. Which folder holds which class is matched afterwards
    (:mod:`octreport.data.class_map`); evaluation data may hold some of the classes."""
    outputs = model.outputs if hasattr(model, "outputs") and model.outputs else []
    if len(outputs) != 1:
        raise ModelError(f"The model has {len(outputs)} outputs; octreport needs one (class probabilities).")
    output_shape = tuple(outputs[0].shape)
    expected = len(metadata.class_names) if metadata else len(given_names or data_class_names)
    headless = _feature_extractor_problem(model, output_shape, expected)
    if headless:
        raise ModelError(headless)
    n_outputs = output_shape[1] if len(output_shape) == 2 else None
    if metadata is not None:
        names = tuple(metadata.class_names)
        if given_names and [folder_key(n) for n in given_names] != [folder_key(n) for n in names]:
            raise ConfigError(f"--class-names {', '.join(given_names)} disagrees with the model's sidecar, which names "
                              f"its classes {', '.join(names)}. Leave --class-names out for a model with a sidecar.")
    elif given_names:
        names = tuple(given_names)
        if n_outputs != len(names):
            raise ConfigError(f"--class-names gives {len(names)} classes ({', '.join(names)}) but the model's output "
                              f"has shape {output_shape[1:]}. Name every output of the model, in output order.")
    elif not data_class_names:
        raise ModelError("The model has no sidecar naming its classes, and unlabelled scans have no class folders to "
                         "name them. Give the model's classes in output order with --class-names A,B,C,D.")
    else:
        names = tuple(data_class_names)
    if n_outputs != len(names):
        raise ModelError(
            f"The model's output has shape {output_shape[1:]} but the data has {len(names)} classes "
            f"({', '.join(names)}). Use a model trained on these classes; for data that holds some of the "
            f"model's classes, give the model's classes in output order with --class-names."
        )
    return names


_POOLING_TYPES = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D, keras.layers.Flatten)


def _feature_extractor_problem(model: keras.Model, output_shape: tuple, num_classes: int) -> str | None:
    """A plain-words refusal for a model without a classification head (a backbone built with
    ``include_top=False``): its output is a feature map, or a pooled feature vector of another
    size than the number of classes. None when the output looks like class scores."""
    advice = (f"Add a classification head and train it: e.g. keras.layers.GlobalAveragePooling2D() and "
              f"keras.layers.Dense({num_classes}, activation='softmax') on top, then save and report on that model.")
    if len(output_shape) > 2:
        size = "x".join("?" if s is None else str(s) for s in output_shape[1:])
        return (f"This looks like a feature extractor, not a classifier: the model's output is a {size} feature map "
                f"(a backbone built with include_top=False?), not {num_classes} class probabilities. {advice}")
    last = _last_layer(model)
    if len(output_shape) == 2 and output_shape[1] != num_classes and isinstance(last, _POOLING_TYPES):
        return (f"This looks like a feature extractor, not a classifier: the model ends in {type(last).__name__} "
                f"with {output_shape[1]} features (a backbone built with include_top=False and pooling?), not "
                f"{num_classes} class probabilities. {advice}")
    return None


def _last_layer(model: keras.Model):
    """The model's last layer, looking inside a nested model that ends it."""
    last = model
    while isinstance(last, keras.Model) and getattr(last, "layers", None):
        last = last.layers[-1]
    return None if last is model else last


def _image_input_shape(model: keras.Model) -> tuple[int, int, int]:
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ModelError("The model has no defined input; build it on a keras.Input before saving it.")
    if len(inputs) != 1:
        raise ModelError(f"The model has {len(inputs)} inputs; octreport needs one image input.")
    shape = tuple(inputs[0].shape)
    if len(shape) != 4:
        raise ModelError(
            f"The model's input has shape {shape}; octreport needs images (batch, height, width, channels)."
        )
    height, width, channels = shape[1:]
    if height is None or width is None:
        raise ModelError("The model's input size is not fixed (None); octreport needs a fixed height and width.")
    if channels not in (1, 3):
        raise ModelError(f"The model expects {channels} channels; octreport feeds 1 (grayscale) or 3 (RGB).")
    return int(height), int(width), int(channels)
