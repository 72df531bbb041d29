"""What depends only on a model's weights, read from the weights cache (:mod:`octreport.cache`) or
computed and stored there: the activation maximisation of each layer's shown filters (the costly
part of a report on a model that was already reported on).

The key of an entry is the model's fingerprint (:func:`model_fingerprint`: its weights and its
layers' settings, names left out) and every setting that shapes the result; the arrays read back
are checked against the shapes the request implies before they are used.

Not cached, measured cheap: the filter grids and norms (a few NumPy operations on the kernels),
layer discovery (it returns the live Keras layers, which a file cannot hold) and the receptive
fields (arithmetic on the layers' settings).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from octreport.cache import FROM_CACHE, ArrayCache
from octreport.engine.layers import ConvLayerInfo
from octreport.engine.maximisation import METHOD_VERSION, MaximisationSettings, MaximisedInputs, maximise_channels
from octreport.engine.receptive_field import ReceptiveField
from octreport.hashing import sha256_arrays, sha256_weights

MAXIMISATION = "maximisation"


def model_fingerprint(model: Any) -> str:
    """Hex SHA-256 of the model's weights (:func:`octreport.hashing.sha256_weights`) and of every
    layer's class and settings in order, nested models included, layer names left out (Keras
    numbers them per session): two models that compute the same give the same fingerprint."""
    text = json.dumps([sha256_weights(model), _architecture(model)], sort_keys=True, default=str)
    return sha256_arrays([np.frombuffer(text.encode("utf-8"), np.uint8)])


def _architecture(model: Any) -> list:
    described = []
    for layer in model.layers:
        if hasattr(layer, "layers"):
            described.append([type(layer).__name__, _architecture(layer)])
            continue
        config = dict(layer.get_config())
        config.pop("name", None)
        described.append([type(layer).__name__, config])
    return described


def cached_maximisation(
    model: Any, info: ConvLayerInfo, channels: np.ndarray, field: ReceptiveField | None,
    settings: MaximisationSettings, input_shape: Sequence[int], cache: ArrayCache | None, fingerprint: str,
) -> MaximisedInputs:
    """:func:`~octreport.engine.maximisation.maximise_channels`, read from ``cache`` when it holds a
    sound entry for this model and these settings (``source="cache"``), else computed and stored.
    ``cache=None``: always computed, nothing stored."""
    if cache is None:
        return maximise_channels(model, info, channels, field, settings, input_shape)
    fields = {"model": fingerprint, "method": METHOD_VERSION, "layer": info.index, "kind": info.kind,
              "channels": [int(c) for c in channels],
              "settings": asdict(settings), "input_shape": [int(s) for s in input_shape],
              "field": None if field is None else [field.size, field.jump, field.start]}
    expected = _expected_shapes(len(channels), field, input_shape)
    arrays = cache.load(MAXIMISATION, fields, lambda found: _shape_problem(found, channels, expected))
    if arrays is not None:
        return MaximisedInputs(info, arrays["channels"].astype(np.int64), arrays["images"].astype(np.float32),
                               arrays["activation"].astype(np.float64), arrays["start_activation"].astype(np.float64),
                               bytes(arrays["caption"]).decode("utf-8"), source=FROM_CACHE)
    result = maximise_channels(model, info, channels, field, settings, input_shape)
    cache.store(MAXIMISATION, fields, {
        "channels": result.channels, "images": result.images, "activation": result.activation,
        "start_activation": result.start_activation,
        "caption": np.frombuffer(result.caption.encode("utf-8"), np.uint8),
    })
    return result


def _expected_shapes(n: int, field: ReceptiveField | None, input_shape: Sequence[int]) -> dict[str, tuple[int, ...]]:
    height, width, depth = (int(s) for s in input_shape)
    size = tuple(field.size) if field is not None else (height, width)
    return {"channels": (n,), "images": (n, *size, depth), "activation": (n,), "start_activation": (n,)}


def _shape_problem(arrays: Mapping[str, np.ndarray], channels: np.ndarray,
                   expected: Mapping[str, tuple[int, ...]]) -> str:
    """What in a maximisation entry does not fit the request ("" when it all fits)."""
    for name, shape in expected.items():
        if name not in arrays:
            return f"no '{name}' array"
        if tuple(arrays[name].shape) != shape:
            return f"'{name}' has shape {tuple(arrays[name].shape)}, expected {shape}"
        if arrays[name].dtype.kind not in "fiu":
            return f"'{name}' is not numeric"
    if "caption" not in arrays or arrays["caption"].dtype != np.uint8:
        return "no caption"
    if not np.array_equal(arrays["channels"], channels):
        return "other channels"
    return ""
