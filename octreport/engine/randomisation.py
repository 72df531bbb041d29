"""Cascading weight randomisation (Adebayo et al. 2018, "Sanity Checks for Saliency Maps").

A heat map that explains the model should change when what the model learned is destroyed.
On a **copy** of the model (``keras.models.clone_model`` with the trained weights copied; the
user's model is never touched) the layers with trainable weights are re-initialised one after
another from the top (the output layer first, then the layer below it, and so on, each step
keeping the earlier ones random), and after each step the heat maps of the same images for the
same classes are computed again.

Re-initialised: every trainable weight of the layer, drawn from the layer's own initializer for
it (``kernel_initializer`` for ``kernel``, ``depthwise_initializer`` for ``depthwise_kernel``,
``gamma_initializer`` for a batch normalisation's ``gamma`` ...), seeded; a weight with no such
initializer gets Glorot-uniform when it is a matrix or a kernel and is kept otherwise.
Non-trainable state (a batch normalisation's moving mean and variance) is kept, as by Adebayo et al.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from octreport.engine.layers import _path, _walk
from octreport.errors import ModelError

logger = logging.getLogger(__name__)

# model, images (N, H, W, C), classes (N,) -> heat maps (N, H, W)
Saliency = Callable[[Any, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)
class RandomisedMaps:
    """Heat maps of N images after each step of the cascade.

    Attributes:
        layers: the path of the layer re-initialised at each step (each step keeps the earlier
            ones random), top down.
        heatmaps: float32 (steps, N, H, W).
    """

    layers: tuple[str, ...]
    heatmaps: np.ndarray


def weighted_layers(model: Any) -> list[tuple[str, Any]]:
    """``(path, layer)`` of every layer with trainable weights, in forward order, nested models
    searched in place."""
    found, seen = [], set()
    for layer, parents in _walk(model, (model,)):
        if id(layer) in seen or not layer.trainable_weights:
            continue
        seen.add(id(layer))
        found.append((_path(layer, parents), layer))
    return found


def copy_model(model: Any) -> Any:
    """A new model with the same architecture and weights; ``model`` is not modified.

    Raises:
        ModelError: Keras cannot clone it (a subclassed model without a config).
    """
    try:
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
    except (ValueError, TypeError, NotImplementedError, AttributeError) as error:
        raise ModelError(f"Model {model.name!r} cannot be copied for the randomisation check: {error}") from error
    return copy


def _initializer(layer: Any, variable: Any, seed: int) -> Any | None:
    name = variable.name.split("/")[-1].split(":")[0]
    candidates = (f"{name}_initializer", f"{name.removesuffix('_kernel')}_initializer")
    found = next((getattr(layer, c) for c in candidates if getattr(layer, c, None) is not None), None)
    if found is None:
        return keras.initializers.GlorotUniform(seed=seed) if len(variable.shape) >= 2 else None
    found = keras.initializers.get(found)
    config = found.get_config()
    if "seed" in config:
        found = type(found).from_config({**config, "seed": seed})
    return found


def reinitialise(layer: Any, seed: int) -> None:
    """Draw every trainable weight of ``layer`` anew (see the module docstring)."""
    for k, variable in enumerate(layer.trainable_weights):
        initializer = _initializer(layer, variable, seed * 1000 + k)
        if initializer is None:
            continue
        variable.assign(keras.ops.cast(initializer(tuple(variable.shape)), variable.dtype))


def cascading_randomisation(
    model: Any,
    images: np.ndarray,
    class_indices: np.ndarray,
    saliency: Saliency,
    *,
    layers: int = 3,
    seed: int = 0,
) -> RandomisedMaps:
    """The heat maps of ``images`` for ``class_indices`` on a copy of ``model`` after each of the
    top ``layers`` weighted layers is re-initialised, cumulatively, top down.

    Raises:
        ModelError: the model has no trainable layer, or cannot be copied.
    """
    if layers < 1:
        raise ModelError(f"The randomisation check needs at least one layer, got {layers}.")
    copy = copy_model(model)
    stack = weighted_layers(copy)
    if not stack:
        raise ModelError(f"Model {model.name!r} has no layer with trainable weights to randomise.")
    chosen = stack[::-1][:layers]
    maps = []
    for step, (path, layer) in enumerate(chosen):
        reinitialise(layer, seed + step)
        maps.append(np.asarray(saliency(copy, images, class_indices), np.float32))
        logger.debug("randomisation step %d: %s re-initialised", step + 1, path)
    return RandomisedMaps(tuple(path for path, _ in chosen), np.stack(maps))
