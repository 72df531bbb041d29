"""Receptive fields of convolutional layers: which input pixels one output position sees.

Per spatial axis, an output position ``p`` of a layer depends on the input pixels whose centres
lie within ``(size - 1) / 2`` of ``start + p * jump`` (Araujo, Norris and Sim, "Computing
receptive fields of convolutional neural networks", Distill 2019). The input has ``size 1,
jump 1, start 0`` (pixel ``i`` is centred at ``i``); a convolution or pooling window with kernel
``k``, dilation ``d`` (effective kernel ``k' = d (k - 1) + 1``), stride ``s`` and ``pad`` pixels
of padding before the first input pixel gives::

    size_out  = size_in + (k' - 1) * jump_in
    jump_out  = jump_in * s
    start_out = start_in + ((k' - 1) / 2 - pad) * jump_in

``"same"`` padding is TensorFlow's: ``pad = max((ceil(n / s) - 1) s + k' - n, 0) // 2`` for an
input of ``n`` pixels; ``"valid"`` pads nothing; ``"causal"`` pads ``k' - 1``. ZeroPadding and
Cropping move ``start``; element-wise layers (activations, normalisation, dropout, rescaling)
change nothing; where branches merge (Add, Concatenate, ...), the field is the union of the
branches' fields. Nested Sequential/Functional models are followed where they are called.

The walk follows the model's graph by its layers' input and output tensors (public
``layer.input`` / ``layer.output``). A layer that changes the spatial size in a way not listed
here (transposed convolutions, upsampling, resizing) makes the fields after it unknown: those
layers get ``None`` and no patches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from octreport.engine.layers import ConvLayerInfo, is_graph_model

METHOD = (
    "receptive field computed from the layer graph: through every convolution and pooling layer "
    "size += (dilated kernel - 1) x jump, jump x= stride, offset moved by the padding (TensorFlow's "
    "'same' rule), branches merged as the union of their fields, nested models followed"
)

_WINDOWED = (
    keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
    keras.layers.SeparableConv1D, keras.layers.SeparableConv2D,
    keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D,
    keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D, keras.layers.AveragePooling2D, keras.layers.AveragePooling3D,
)
_UNSUPPORTED = (
    keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose,
    keras.layers.UpSampling1D, keras.layers.UpSampling2D, keras.layers.UpSampling3D,
)


@dataclass(frozen=True)
class ReceptiveField:
    """The receptive field of one layer's output positions, one entry per spatial axis.

    Attributes:
        size: input pixels one output position sees along each axis.
        jump: input pixels between neighbouring output positions (the product of strides).
        start: input coordinate of the centre of output position 0 (pixel ``i`` is centred at
            ``i``; may be a half-integer or negative).
    """

    size: tuple[int, ...]
    jump: tuple[int, ...]
    start: tuple[float, ...]

    def window(self, position: Sequence[int]) -> tuple[tuple[int, int], ...]:
        """``(first, last + 1)`` input pixel along each axis for an output ``position``; may
        reach outside the image (where padding was)."""
        spans = []
        for p, size, jump, start in zip(position, self.size, self.jump, self.start):
            first = int(math.floor(start + p * jump - (size - 1) / 2 + 1e-9))
            spans.append((first, first + size))
        return tuple(spans)


def _input_field(rank: int) -> ReceptiveField:
    return ReceptiveField((1,) * rank, (1,) * rank, (0.0,) * rank)


def _tuple(value: Any, rank: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * rank
    return tuple(int(v) for v in value)


def _spatial(shape: Sequence[int | None], channels_last: bool, rank: int) -> tuple[int | None, ...]:
    return tuple(shape[1:1 + rank]) if channels_last else tuple(shape[2:2 + rank])


def _pad_before(padding: str, n: int | None, kernel: int, stride: int) -> int:
    if padding == "valid":
        return 0
    if padding == "causal":
        return kernel - 1
    if n is None:  # unknown input size: assume it divides by the stride
        return max(kernel - stride, 0) // 2
    out = math.ceil(n / stride)
    return max((out - 1) * stride + kernel - n, 0) // 2


def _windowed(layer: Any, field: ReceptiveField) -> ReceptiveField:
    rank = len(field.size)
    kernels = _tuple(getattr(layer, "kernel_size", None) or layer.pool_size, rank)
    strides = _tuple(layer.strides, rank)
    dilations = _tuple(getattr(layer, "dilation_rate", 1), rank)
    channels_last = getattr(layer, "data_format", "channels_last") != "channels_first"
    inputs = _spatial(tuple(layer.input.shape), channels_last, rank)
    size, jump, start = [], [], []
    for k, s, d, n, r, j, st in zip(kernels, strides, dilations, inputs, field.size, field.jump, field.start):
        effective = d * (k - 1) + 1
        pad = _pad_before(str(layer.padding).lower(), n, effective, s)
        size.append(r + (effective - 1) * j)
        jump.append(j * s)
        start.append(st + ((effective - 1) / 2 - pad) * j)
    return ReceptiveField(tuple(size), tuple(jump), tuple(start))


def _shifted(field: ReceptiveField, before: Sequence[int], sign: int) -> ReceptiveField:
    start = tuple(st + sign * b * j for st, b, j in zip(field.start, before, field.jump))
    return ReceptiveField(field.size, field.jump, start)


def _before(value: Any, rank: int) -> tuple[int, ...]:
    """The leading amounts of a ZeroPadding/Cropping ``padding``/``cropping`` attribute."""
    if isinstance(value, int):
        return (value,) * rank
    out = []
    for item in value:
        out.append(int(item) if isinstance(item, int) else int(item[0]))
    return tuple(out) if len(out) == rank else (out[0],) * rank


def _union(fields: Sequence[ReceptiveField]) -> ReceptiveField:
    if len(fields) == 1:
        return fields[0]
    size, jump, start = [], [], []
    for axis in range(len(fields[0].size)):
        lows = [f.start[axis] - (f.size[axis] - 1) / 2 for f in fields]
        highs = [f.start[axis] + (f.size[axis] - 1) / 2 for f in fields]
        low, high = min(lows), max(highs)
        size.append(int(round(high - low)) + 1)
        jump.append(max(f.jump[axis] for f in fields))
        start.append((low + high) / 2)
    return ReceptiveField(tuple(size), tuple(jump), tuple(start))


def _propagate(layer: Any, fields: Sequence[ReceptiveField | None]) -> ReceptiveField | None:
    if any(f is None for f in fields) or not fields:
        return None
    field = _union([f for f in fields if f is not None])
    rank = len(field.size)
    if isinstance(layer, _WINDOWED):
        return _windowed(layer, field)
    if isinstance(layer, _UNSUPPORTED):
        return None
    name = type(layer).__name__
    if name.startswith("ZeroPadding"):
        return _shifted(field, _before(layer.padding, rank), -1)
    if name.startswith("Cropping"):
        return _shifted(field, _before(layer.cropping, rank), +1)
    return field


def _tensors(value: Any) -> list[Any]:
    return keras.tree.flatten(value)


def _walk(model: Any, fields: dict[int, ReceptiveField | None], by_layer: dict[int, ReceptiveField | None]) -> None:
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            inputs = _tensors(layer.input)
            outputs = _tensors(layer.output)
        except (AttributeError, ValueError):
            continue
        incoming = [fields.get(id(t)) for t in inputs]
        if is_graph_model(layer):
            for inner, field in zip(_tensors(layer.inputs), incoming):
                fields[id(inner)] = field
            _walk(layer, fields, by_layer)
            result = [fields.get(id(t)) for t in _tensors(layer.outputs)]
            for tensor, field in zip(outputs, result):
                fields[id(tensor)] = field
            continue
        field = _propagate(layer, incoming)
        by_layer[id(layer)] = field
        for tensor in outputs:
            fields[id(tensor)] = field


def receptive_fields(model: Any, layers: Sequence[ConvLayerInfo]) -> tuple[ReceptiveField | None, ...]:
    """The receptive field of each layer's output (in the order of ``layers``), or ``None`` where
    the walk cannot tell it (see the module docstring)."""
    fields: dict[int, ReceptiveField | None] = {}
    for tensor in _tensors(model.inputs):
        shape = tuple(tensor.shape)
        fields[id(tensor)] = _input_field(max(len(shape) - 2, 1))
    by_layer: dict[int, ReceptiveField | None] = {}
    _walk(model, fields, by_layer)
    return tuple(by_layer.get(id(info.layer)) for info in layers)


def crop_field(pixels: np.ndarray, field: ReceptiveField, position: Sequence[int]) -> np.ndarray:
    """The input pixels (H, W, C) one output ``position`` of a 2D layer sees, as a
    ``(size_h, size_w, C)`` float32 crop; where the field reaches outside the image (the layers'
    padding) the crop holds NaN."""
    (top, bottom), (left, right) = field.window(position)
    height, width = pixels.shape[:2]
    crop = np.full((bottom - top, right - left, pixels.shape[2]), np.nan, np.float32)
    r0, r1, c0, c1 = max(top, 0), min(bottom, height), max(left, 0), min(right, width)
    if r0 < r1 and c0 < c1:
        crop[r0 - top:r1 - top, c0 - left:c1 - left] = pixels[r0:r1, c0:c1]
    return crop
