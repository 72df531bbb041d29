"""Occlusion sensitivity: how much the class probability drops when a part of the image is hidden.

A square box filled with a constant slides over the image; for each position the model sees the
image with the box, and the drop ``P(c | image) - P(c | image with box)`` is spread over the
box's pixels. Each pixel's value is the mean drop over all boxes that covered it (positive: hiding
that place lowers the class probability; negative: hiding it raises it).

Patch size on the original scale (Kermany et al., 2018, used a 20 x 20 blank box on the scans):
the caller passes ``original_scale`` = model input size / original image size (for example
``150 / 512``), and the box is ``max(2, round(patch * original_scale))`` model-input pixels,
the stride ``max(1, round(stride * original_scale))``. Positions run from the top-left corner in
steps of the stride; one more row or column of positions is added where needed so that the
boxes reach the bottom and right edges, so every pixel is covered at least once. A box larger
than the image is cut to the image size.

The occluded copies are made one batch at a time and go through the model in batches of
``batch_size`` (the unoccluded image rides along in the first batch), so an image needs
``ceil((positions + 1) / batch_size)`` forward calls and memory for one batch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from octreport.engine.streaming import compiled_forward
from octreport.errors import ConfigError, ModelError

logger = logging.getLogger(__name__)

KERMANY_PATCH = 20
KERMANY_STRIDE = 10


@dataclass(frozen=True, eq=False)
class OcclusionResult:
    """The occlusion sensitivity map of one image for one class.

    Attributes:
        heatmap: float32 (H, W) at the model input size: mean drop in the class probability
            over the boxes covering each pixel (can be negative).
        class_index: the class.
        base_probability: the model's output for the class on the unoccluded image.
        patch: box side in model-input pixels.
        stride: step between box positions in model-input pixels.
        fill: the value(s) the box is filled with, one per channel.
        positions: number of box positions (occluded copies).
        forward_calls: number of model calls made.
        caption: what the map shows, for the report.
    """

    heatmap: np.ndarray
    class_index: int
    base_probability: float
    patch: int
    stride: int
    fill: tuple[float, ...]
    positions: int
    forward_calls: int
    caption: str


def scaled_patch(patch: int, stride: int, original_scale: float) -> tuple[int, int]:
    """(box side, stride) in model-input pixels for sizes given on the original image scale."""
    if patch < 1 or stride < 1:
        raise ConfigError(f"Occlusion patch and stride must be at least 1, got {patch}, {stride}.")
    if not (original_scale > 0 and math.isfinite(original_scale)):
        raise ConfigError(
            f"original_scale must be a positive number (model input size / original image "
            f"size), got {original_scale}."
        )
    return max(2, round(patch * original_scale)), max(1, round(stride * original_scale))


def box_starts(size: int, patch: int, stride: int) -> list[int]:
    """Top (or left) coordinates of the boxes along one axis of ``size`` pixels."""
    patch = min(patch, size)
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] + patch < size:
        starts.append(size - patch)
    return starts


def _fill_values(image: np.ndarray, fill: float | str | Sequence[float]) -> np.ndarray:
    if isinstance(fill, str):
        if fill != "mean":
            raise ConfigError(f"Occlusion fill must be a number or 'mean', got {fill!r}.")
        return image.mean(axis=(0, 1), dtype=np.float64).astype(np.float32)
    if np.ndim(fill) == 1:
        values = np.asarray(fill, np.float32)
        if values.shape != (image.shape[-1],):
            raise ConfigError(f"Occlusion fill needs one value per channel ({image.shape[-1]}), got {len(values)}.")
        return values
    return np.full(image.shape[-1], float(fill), np.float32)


def _occluded_batches(
    image: np.ndarray, boxes: list[tuple[int, int]], patch: int, fill: np.ndarray, batch_size: int
) -> Iterator[np.ndarray]:
    """Batches of the unoccluded image followed by one copy per box, in order."""
    items: list[tuple[int, int] | None] = [None, *boxes]
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        batch = np.repeat(image[np.newaxis], len(chunk), axis=0)
        for k, box in enumerate(chunk):
            if box is not None:
                y, x = box
                batch[k, y : y + patch, x : x + patch] = fill
        yield batch


def _check_image(model: Any, image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float32)
    inputs = getattr(model, "inputs", None)
    expected = tuple(inputs[0].shape[1:]) if inputs else None
    if image.ndim != 3 or (expected is not None and any(
        e is not None and e != got for e, got in zip(expected, image.shape)
    )):
        wanted = "(H, W, C)" if expected is None else "x".join(
            "?" if e is None else str(e) for e in expected)
        raise ModelError(f"Expected one image of shape {wanted}, got an array of shape {image.shape}.")
    return image


def occlusion_map(
    model: Any,
    image: np.ndarray,
    class_index: int,
    patch: int = KERMANY_PATCH,
    stride: int = KERMANY_STRIDE,
    fill: float | str | Sequence[float] = 0.0,
    original_scale: float = 1.0,
    batch_size: int = 64,
    class_name: str | None = None,
) -> OcclusionResult:
    """Occlusion sensitivity of ``image`` (H, W, C) for ``class_index``; see the module docstring.

    ``model`` is called as ``model(batch, training=False)`` and must return (B, K) class
    probabilities. ``fill`` is a number, one number per channel (black in the model's input
    convention, say), or ``"mean"`` for the image's per-channel mean.
    ``patch`` and ``stride`` are on the original image scale (see ``original_scale``).

    Raises:
        ModelError: the image does not fit the model.
        ConfigError: bad patch, stride, scale, fill, class index or batch size.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}.")
    image = _check_image(model, image)
    side, step = scaled_patch(patch, stride, original_scale)
    height, width = image.shape[:2]
    side = min(side, height, width)
    boxes = [(y, x) for y in box_starts(height, side, step) for x in box_starts(width, side, step)]
    values = _fill_values(image, fill)
    scores: list[np.ndarray] = []
    calls = 0
    # A Keras model runs compiled: 0.62x the time of eager calls (benchmarks/bench_occlusion.py).
    forward = compiled_forward(model) if isinstance(model, keras.Model) else lambda x: model(x, training=False)
    for batch in _occluded_batches(image, boxes, side, values, batch_size):
        output = keras.ops.convert_to_numpy(forward(batch))
        calls += 1
        if output.ndim != 2 or not 0 <= class_index < output.shape[1]:
            raise ConfigError(
                f"Class index {class_index} is out of range for a model output of shape "
                f"{output.shape}."
            )
        scores.append(output[:, class_index].astype(np.float64))
    probability = np.concatenate(scores)
    base, occluded = float(probability[0]), probability[1:]
    total = np.zeros((height, width), np.float64)
    count = np.zeros((height, width), np.int64)
    for (y, x), p in zip(boxes, occluded):
        total[y : y + side, x : x + side] += base - p
        count[y : y + side, x : x + side] += 1
    heatmap = (total / np.maximum(count, 1)).astype(np.float32)
    logger.debug("occlusion: %d boxes of %d px in %d model calls", len(boxes), side, calls)
    return OcclusionResult(
        heatmap=heatmap,
        class_index=int(class_index),
        base_probability=base,
        patch=side,
        stride=step,
        fill=tuple(float(v) for v in values),
        positions=len(boxes),
        forward_calls=calls,
        caption=_caption(class_name or f"class {class_index}", side, step, patch, stride,
                         original_scale, fill, len(boxes), base),
    )


def _caption(name: str, side: int, step: int, patch: int, stride: int, scale: float,
             fill: float | str | Sequence[float], positions: int, base: float) -> str:
    if isinstance(fill, str):
        filled = "the image's mean value"
    elif np.ndim(fill) == 1:
        filled = "the values " + ", ".join(f"{float(v):g}" for v in fill) + " (one per channel)"
    else:
        filled = f"the value {float(fill):g}"
    original = (f" ({patch} x {patch} px with stride {stride} on the original image scale)"
                if scale != 1.0 else "")
    return (
        f"Occlusion sensitivity for {name}: drop in its probability (base {base:.3f}) when a "
        f"{side} x {side}-pixel box filled with {filled} hides each place, stride {step} px"
        f"{original}; {positions} box positions, each pixel shows the mean drop over the boxes "
        "covering it (negative: hiding it raises the probability)."
    )
