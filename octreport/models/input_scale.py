"""Which input convention a model expects (0-1, 0-255, -1..1, caffe, torch), and why octreport
thinks so.

In order: the convention saved beside a model octreport trained (its sidecar); the one the user
states (``--input-scale``, ``input_scale=``); the one a ``Rescaling`` or ``Normalization`` layer
among the model's first layers implies; else 0-1 (``unit``), assumed, with a warning. The layers
are found by type (also inside a nested backbone), never by name.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np

from octreport.data.preprocessing import INPUT_SCALE_TEXT, INPUT_SCALES, Preprocessing
from octreport.engine.layers import CONV_LAYER_TYPES, walk_layers
from octreport.errors import ConfigError
from octreport.evaluation.prediction_spread import PredictionSpread

AUTO = "auto"
FIRST_LAYERS = 4
"""How many layers after the input are searched for a Rescaling or Normalization layer (the
search also stops at the first convolution or dense layer)."""
_CANDIDATES = (("unit", 0.0, 1.0), ("byte", 0.0, 255.0), ("symmetric", -1.0, 1.0))
_NORMALISED = ((0.0, 1.0), (-1.0, 1.0))  # what a preprocessing layer maps its input to
_TOLERANCE = 0.05

SIDECAR, OPTION, DETECTED, ASSUMED = "sidecar", "option", "detected", "assumed"


@dataclass(frozen=True)
class InputScaleChoice:
    """The input convention used (``scale``, one of :data:`INPUT_SCALES`), where it came from
    (``source``: sidecar, option, detected or assumed), ``reason`` in plain words, and a warning
    for the report's summary when octreport had to assume it or the user's choice contradicts
    the model's own preprocessing layer."""

    scale: str
    source: str
    reason: str
    warning: str | None = None

    @property
    def text(self) -> str:
        return f"{INPUT_SCALE_TEXT[self.scale]} ({self.scale})"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DetectedScale:
    """What a preprocessing layer near the input implies: ``scale`` (None when it tells nothing),
    the layer's ``path`` and what it does (``detail``)."""

    scale: str | None
    path: str
    detail: str


def choose_input_scale(model: keras.Model, requested: str = AUTO, saved: Preprocessing | None = None) -> InputScaleChoice:
    """The convention ``model`` is fed in; see the module docstring for the order.

    Raises:
        ConfigError: ``requested`` is not a known convention, or contradicts the sidecar of a
            model octreport trained.
    """
    if requested != AUTO and requested not in INPUT_SCALES:
        raise ConfigError(f"input scale must be one of {AUTO}, {', '.join(INPUT_SCALES)}, got '{requested}'.")
    if saved is not None:
        if requested not in (AUTO, saved.input_scale):
            raise ConfigError(
                f"--input-scale {requested} contradicts the model's sidecar (.octreport.json), which says it was "
                f"trained on {saved.input_scale_text} input. Leave --input-scale out for a model octreport trained, "
                "or delete the sidecar if it does not belong to this model."
            )
        return InputScaleChoice(saved.input_scale, SIDECAR,
                                f"{saved.input_scale_text}, as saved with the model by octreport (its .octreport.json)")
    found = detect_input_scale(model)
    if requested != AUTO:
        warning = None
        if found is not None and found.scale not in (None, requested):
            warning = (f"Input convention: {_text(requested)} was stated, but the model's {found.detail} "
                       f"({found.path}) implies {_text(found.scale)} input. Check which the model was trained on.")
        return InputScaleChoice(requested, OPTION, f"{_text(requested)}, as stated (--input-scale)", warning)
    if found is not None and found.scale is not None:
        return InputScaleChoice(
            found.scale, DETECTED,
            f"{_text(found.scale)}, detected: the model's {found.detail} ({found.path}) expects it",
        )
    why = (f"its {found.detail} ({found.path}) does not tell" if found is not None
           else f"it has no Rescaling or Normalization layer among its first {FIRST_LAYERS} layers")
    return InputScaleChoice(
        "unit", ASSUMED, f"{_text('unit')}, assumed: {why}",
        warning=(f"Input convention assumed: octreport cannot tell which input this model expects ({why}), so it fed "
                 f"{_text('unit')}. A model trained on 0-255, -1 to 1 or ImageNet (caffe, torch) input gets a wrong, "
                 "low accuracy that way: state its convention with --input-scale byte|symmetric|caffe|torch."),
    )


def detect_input_scale(model: keras.Model) -> DetectedScale | None:
    """The first ``Rescaling`` or ``Normalization`` layer among the model's first layers (before
    any convolution or dense layer), and the input range it implies; None when there is none."""
    looked = 0
    for path, layer in walk_layers(model):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, CONV_LAYER_TYPES + (keras.layers.Dense,)) or looked >= FIRST_LAYERS:
            return None
        looked += 1
        if isinstance(layer, keras.layers.Rescaling):
            return _from_rescaling(path, layer)
        if isinstance(layer, keras.layers.Normalization):
            return _from_normalization(path, layer)
    return None


def implied_by_rescaling(scale: float, offset: float) -> str | None:
    """The input convention that ``x * scale + offset`` maps onto 0-1 or -1..1; None when none or
    several do (``Rescaling(1)`` tells nothing)."""
    matches = []
    for name, low, high in _CANDIDATES:
        ends = sorted((low * scale + offset, high * scale + offset))
        if any(max(abs(ends[0] - a), abs(ends[1] - b)) <= _TOLERANCE * (b - a) for a, b in _NORMALISED):
            matches.append(name)
    return matches[0] if len(matches) == 1 else None


def implied_by_normalization(mean: float, std: float) -> str | None:
    """The input convention of a ``Normalization(mean, variance)`` layer (per-channel values
    averaged): a mean above 1.5 can only come from 0-255 input; a mean within 0-1 and a standard
    deviation below 1 from 0-1 input; mean 0 and deviation 1 (not adapted) tell nothing."""
    if not (math.isfinite(mean) and math.isfinite(std)):
        return None
    if mean > 1.5:
        return "byte"
    if 0 < mean <= 1 and 0 < std < 0.99:
        return "unit"
    return None


def _from_rescaling(path: str, layer: Any) -> DetectedScale:
    scale, offset = float(np.mean(layer.scale)), float(np.mean(layer.offset))
    detail = f"Rescaling layer (x * {scale:.4g} + {offset:g})"
    return DetectedScale(implied_by_rescaling(scale, offset), path, detail)


def _from_normalization(path: str, layer: Any) -> DetectedScale:
    mean, variance = getattr(layer, "mean", None), getattr(layer, "variance", None)
    if mean is None or variance is None or getattr(layer, "invert", False):
        return DetectedScale(None, path, "Normalization layer")
    mean = float(np.mean(keras.ops.convert_to_numpy(mean)))
    std = float(np.sqrt(np.mean(keras.ops.convert_to_numpy(variance))))
    return DetectedScale(implied_by_normalization(mean, std), path, f"Normalization layer (mean {mean:.4g}, sd {std:.4g})")


def _text(scale: str) -> str:
    return f"{INPUT_SCALE_TEXT[scale]} ({scale})"


def input_warnings(choice: InputScaleChoice | None, spread: PredictionSpread | None) -> tuple[str, ...]:
    """Problems with how the model was fed, a reader should know about: an input convention
    octreport had to assume, or one the user stated against the model's own preprocessing layer;
    and predictions that collapse to one answer on a model octreport did not train, what a wrong
    input convention typically gives. Empty when there are none."""
    if choice is None:
        return ()
    warnings = [choice.warning] if choice.warning else []
    if spread is not None and spread.collapsed and choice.source not in ("trained", "sidecar"):
        warnings.append(
            f"The predictions look like a wrong input convention: {spread.describe()}. The model was fed "
            f"{choice.text} ({choice.source}). If it was trained on another convention, give --input-scale "
            "(unit 0-1, byte 0-255, symmetric -1..1, caffe or torch)."
        )
    return tuple(warnings)
