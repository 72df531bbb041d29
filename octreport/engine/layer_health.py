"""Layer health audit: filters that never fire, how sparse each layer's output is, and how
unequal its filters' weight norms are, measured during the evaluation pass itself.

Definitions, per convolutional layer, over every evaluated image and every output position:

* a filter (output channel) is **dead** when its output is never above ``epsilon`` (default
  ``1e-6``, so that values a ReLU left as float rounding dust still count as "off");
  ``dead_strict`` counts the filters whose output is never above exactly 0;
* **sparsity** is the share of all output values that are ``<= epsilon``;
* the filters' L2 weight norms (:func:`~octreport.engine.filters.filter_norm_summary`):
  min / median / max and the coefficient of variation (population std / mean; 0 when all norms
  are 0).

What is measured is the convolution layer's own output. ``basis`` says what that is:

* ``"post-activation"``: the layer has a non-linear activation (``Conv2D(activation="relu")``),
  so a dead filter is one that is off for every image;
* ``"pre-activation"``: the layer is linear (a convolution followed by a separate
  BatchNormalization / ReLU). "Never above epsilon" then means "never positive", which is what a
  ReLU applied directly to it would turn into a dead unit; a normalisation layer in between
  shifts and rescales the values first, so for such layers the count is a hint, not a verdict.

A layer is **flagged** when its dead share is at least ``dead_threshold`` (default 0.5: half of
its filters add nothing for any image, a sign of dying ReLUs, a too high learning rate or an
oversized layer; single dead filters are common and harmless).

Memory: :class:`LayerHealthAccumulator` keeps per channel a running maximum and a count, O(channels)
per layer, whatever the number of images. :func:`predict_with_layer_health` runs one compiled step
per batch that computes the conv outputs *and* the model's prediction and reduces the outputs
in the same graph, so the audit costs no second pass over the data and no copy of the maps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf

from octreport.engine.activations import cached_extractor_model
from octreport.engine.filters import FilterNormSummary, filter_norm_summary
from octreport.engine.layers import ConvLayerInfo
from octreport.engine.streaming import Step, cached_runner, concatenated
from octreport.engine.top_activations import TopActivationsAccumulator, step_slots, step_top_k
from octreport.errors import ConfigError
from octreport.progress import Progress

logger = logging.getLogger(__name__)

DEFAULT_EPSILON = 1e-6
DEFAULT_DEAD_THRESHOLD = 0.5
POST_ACTIVATION = "post-activation"
PRE_ACTIVATION = "pre-activation"


@dataclass(frozen=True, eq=False)
class LayerHealth:
    """The health of one convolutional layer over the evaluated images.

    Attributes:
        layer: the layer.
        images: number of images measured.
        channel_max: float64 (C,), each filter's largest output value over all images and
            positions.
        channel_sparsity: float64 (C,), each filter's share of outputs ``<= epsilon``.
        dead_channels: int64 (d,), the filters whose output is never above ``epsilon``.
        dead_strict_channels: int64 (s,), the filters whose output is never above 0.
        dead_share: ``len(dead_channels) / C``.
        dead_strict_share: ``len(dead_strict_channels) / C``.
        sparsity: share of all output values ``<= epsilon``.
        norms: the filters' L2 weight norms.
        norm_cv: coefficient of variation of the norms (std / mean; 0 when all are 0).
        basis: ``"post-activation"`` or ``"pre-activation"`` (see the module docstring).
        activation: the layer's activation function name (``"linear"`` for pre-activation).
        epsilon: the "off" threshold used.
        dead_threshold: the dead share from which a layer is flagged.
        flagged: ``dead_share >= dead_threshold``.
        caption: one sentence for the report.
    """

    layer: ConvLayerInfo
    images: int
    channel_max: np.ndarray
    channel_sparsity: np.ndarray
    dead_channels: np.ndarray
    dead_strict_channels: np.ndarray
    dead_share: float
    dead_strict_share: float
    sparsity: float
    norms: FilterNormSummary
    norm_cv: float
    basis: str
    activation: str
    epsilon: float
    dead_threshold: float
    flagged: bool
    caption: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary for metrics.json."""
        return {
            "layer": self.layer.path,
            "dead_share": self.dead_share,
            "dead_strict_share": self.dead_strict_share,
            "sparsity": self.sparsity,
            "norm_min": self.norms.minimum,
            "norm_median": self.norms.median,
            "norm_max": self.norms.maximum,
            "norm_cv": self.norm_cv,
            "basis": self.basis,
            "flagged": self.flagged,
            "filters": int(self.channel_max.shape[0]),
            "dead_filters": int(self.dead_channels.shape[0]),
            "dead_strict_filters": int(self.dead_strict_channels.shape[0]),
            "images": self.images,
            "epsilon": self.epsilon,
        }


def layer_health_to_dict(health: Sequence[LayerHealth]) -> list[dict[str, Any]]:
    """The ``layer_health`` list of metrics.json, in forward layer order."""
    return [item.to_dict() for item in health]


def activation_basis(info: ConvLayerInfo) -> tuple[str, str]:
    """(basis, activation name) of a layer: see the module docstring."""
    function = getattr(info.layer, "activation", None)
    name = getattr(function, "__name__", "linear") if function is not None else "linear"
    if function is None or function is keras.activations.linear:
        return PRE_ACTIVATION, "linear"
    return POST_ACTIVATION, name


class _Running:
    """Per-channel running maximum and count of values <= epsilon for one layer."""

    def __init__(self, channels: int) -> None:
        self.maximum = np.full(channels, -np.inf)
        self.off = np.zeros(channels, np.int64)
        self.per_channel = 0  # values seen per channel
        self.images = 0

    def add(self, images: int, maximum: np.ndarray, off: np.ndarray, values_per_channel: int) -> None:
        np.maximum(self.maximum, maximum, out=self.maximum)
        self.off += off
        self.per_channel += values_per_channel
        self.images += images


def _channel_axis(info: ConvLayerInfo) -> int:
    """The channel axis of the layer's output: last, or 1 for ``channels_first`` layers."""
    return info.spatial_rank + 1 if info.channels_last else 1


def _reduction_axes(info: ConvLayerInfo) -> tuple[int, ...]:
    """Every axis of the layer's output but the channels: what the per-filter statistics reduce."""
    channel = _channel_axis(info)
    return tuple(a for a in range(info.spatial_rank + 2) if a != channel)


def _batch_stats(output: Any, axes: tuple[int, ...], epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (max, count of values <= epsilon) of one batch, reduced where it lives."""
    if isinstance(output, np.ndarray):
        return output.max(axis=axes).astype(np.float64), (output <= epsilon).sum(axis=axes)
    ops = keras.ops
    maximum = ops.convert_to_numpy(ops.max(output, axis=axes)).astype(np.float64)
    off = ops.convert_to_numpy(ops.sum(ops.cast(output <= epsilon, "int32"), axis=axes))
    return maximum, off.astype(np.int64)


class LayerHealthAccumulator:
    """Collects layer health batch by batch; see the module docstring for the definitions.

    ``update`` takes one output per layer, in the order of ``layers``: the layer's output as
    the model produces it (NumPy arrays or backend tensors; channels last, or channels first
    for ``data_format="channels_first"`` layers; any spatial rank). Tensors are reduced on
    their device, so only (C,) vectors are copied.
    """

    def __init__(
        self,
        layers: Sequence[ConvLayerInfo],
        epsilon: float = DEFAULT_EPSILON,
        dead_threshold: float = DEFAULT_DEAD_THRESHOLD,
    ) -> None:
        if not layers:
            raise ConfigError("No layers chosen: pass at least one convolutional layer.")
        if not epsilon >= 0:
            raise ConfigError(f"epsilon must be 0 or more, got {epsilon}.")
        if not 0 < dead_threshold <= 1:
            raise ConfigError(f"dead_threshold must lie in (0, 1], got {dead_threshold}.")
        self.layers = tuple(layers)
        self.epsilon = float(epsilon)
        self.dead_threshold = float(dead_threshold)
        self._running = [_Running(info.filters) for info in self.layers]

    @property
    def images(self) -> int:
        """Images added so far."""
        return self._running[0].images

    def update(self, activations_per_layer: Sequence[Any]) -> None:
        """Add one batch: one (B, ..., C) output per layer, in the order of ``layers``."""
        if len(activations_per_layer) != len(self.layers):
            raise ValueError(
                f"Expected {len(self.layers)} layer outputs, got {len(activations_per_layer)}."
            )
        for info, running, output in zip(self.layers, self._running, activations_per_layer):
            shape = tuple(output.shape)
            if len(shape) != info.spatial_rank + 2 or shape[_channel_axis(info)] != info.filters:
                raise ValueError(
                    f"Output of shape {shape} does not fit layer {info.path!r} "
                    f"({info.filters} filters, {info.spatial_rank}D)."
                )
            maximum, off = _batch_stats(output, _reduction_axes(info), self.epsilon)
            running.add(int(shape[0]), maximum, off, int(np.prod(shape)) // info.filters)

    def add_reduced(self, images: int, maxima: Sequence[np.ndarray], off: Sequence[np.ndarray],
                    values_per_channel: Sequence[int]) -> None:
        """Add one batch already reduced per layer (what the compiled evaluation step returns):
        each filter's maximum, its count of values ``<= epsilon``, and how many values each
        filter produced for the batch. Rows of ``maxima``/``off`` with a leading axis (one per
        replica) are combined first."""
        for running, maximum, count, values in zip(self._running, maxima, off, values_per_channel):
            maximum, count = np.asarray(maximum), np.asarray(count)
            if maximum.ndim == 2:
                maximum, count = maximum.max(axis=0), count.sum(axis=0)
            running.add(images, maximum.astype(np.float64), count.astype(np.int64), int(values))

    def result(self) -> tuple[LayerHealth, ...]:
        """The health of every layer, in the order of ``layers``.

        Raises:
            ConfigError: no image was added.
        """
        if self.images == 0:
            raise ConfigError("No images were measured, so layer health is undefined.")
        return tuple(self._health(info, running) for info, running in zip(self.layers, self._running))

    def _health(self, info: ConvLayerInfo, running: _Running) -> LayerHealth:
        channels = info.filters
        dead = np.flatnonzero(running.maximum <= self.epsilon)
        strict = np.flatnonzero(running.maximum <= 0.0)
        norms = filter_norm_summary(info)
        mean = float(norms.norms.mean())
        cv = float(norms.norms.std() / mean) if mean > 0 else 0.0
        basis, activation = activation_basis(info)
        dead_share = len(dead) / channels
        health = dict(
            layer=info,
            images=running.images,
            channel_max=running.maximum.copy(),
            channel_sparsity=running.off / running.per_channel,
            dead_channels=dead.astype(np.int64),
            dead_strict_channels=strict.astype(np.int64),
            dead_share=dead_share,
            dead_strict_share=len(strict) / channels,
            sparsity=float(running.off.sum() / (running.per_channel * channels)),
            norms=norms,
            norm_cv=cv,
            basis=basis,
            activation=activation,
            epsilon=self.epsilon,
            dead_threshold=self.dead_threshold,
            flagged=dead_share >= self.dead_threshold,
        )
        return LayerHealth(**health, caption=_caption(health))


def _caption(h: dict[str, Any]) -> str:
    info: ConvLayerInfo = h["layer"]
    channels, eps = info.filters, h["epsilon"]
    dead, strict = len(h["dead_channels"]), len(h["dead_strict_channels"])
    if h["basis"] == POST_ACTIVATION:
        where = f"measured on its {h['activation']} output"
    else:
        where = ("measured on the convolution's linear output, before any later normalisation "
                 "or activation: a filter never positive here would be dead behind a ReLU "
                 "applied directly, a normalisation layer in between can revive it")
    norms: FilterNormSummary = h["norms"]
    text = (
        f"{info.path}: {dead} of {channels} filters ({100 * h['dead_share']:.1f} %) never above "
        f"{eps:g} over {h['images']} images ({strict} never above 0); "
        f"{100 * h['sparsity']:.1f} % of outputs <= {eps:g}; {where}. Filter L2 norms "
        f"{norms.minimum:.3g} / {norms.median:.3g} / {norms.maximum:.3g} (min / median / max), "
        f"coefficient of variation {h['norm_cv']:.2f}."
    )
    if h["flagged"]:
        text += (f" Flagged: at least {100 * h['dead_threshold']:.0f} % of its filters never "
                 "fire.")
    return text


class StreamedEvaluation(NamedTuple):
    """What :func:`predict_with_layer_health` returns (unpacks as a 4-tuple).

    Attributes:
        probabilities: float64 (N, K), the model's output; row i is the image ``indices[i]``.
        labels: int64 (N,), the labels the data set gave.
        indices: int64 (N,), the indices the data set gave (positions in the item list).
        health: one :class:`LayerHealth` per layer, in the order given; empty when the data
            set yielded no image.
    """

    probabilities: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    health: tuple[LayerHealth, ...]


def predict_with_layer_health(
    model: Any,
    layers: Sequence[ConvLayerInfo],
    dataset: Iterable[tuple[Any, Any, Any]],
    *,
    epsilon: float = DEFAULT_EPSILON,
    dead_threshold: float = DEFAULT_DEAD_THRESHOLD,
    progress: Progress | None = None,
    top: TopActivationsAccumulator | None = None,
    on_batch: Callable[[dict[str, np.ndarray]], None] | None = None,
) -> StreamedEvaluation:
    """Predict every batch of ``dataset`` (``(images, labels, indices)`` batches, as
    ``image_dataset(..., with_index=True)`` yields them) and audit ``layers`` in the same
    forward pass: one compiled step returns the prediction and, per layer, each filter's maximum
    and count of values ``<= epsilon`` (:mod:`octreport.engine.streaming`; split over the
    replicas inside a ``tf.distribute`` scope).

    ``top``: when given (for the same ``layers``), the same step also keeps each filter's
    strongest images and positions (:mod:`octreport.engine.top_activations`), merged into it.
    ``on_batch``: called with each batch's outputs (what the batches carried past the step too,
    :data:`~octreport.engine.streaming.PASSED`), after the batch is counted.
    """
    accumulator = LayerHealthAccumulator(layers, epsilon, dead_threshold)
    extractor = cached_extractor_model(model, layers, with_output=True)
    top_k = 0 if top is None else top.k
    if top is not None and tuple(id(i.layer) for i in top.layers) != tuple(id(i.layer) for i in layers):
        raise ValueError("The top-activations accumulator must be made for the same layers.")
    key = ("layer-health", tuple(id(info.layer) for info in layers), float(epsilon), top_k)
    runner = cached_runner(model, key, lambda: _health_step(extractor, accumulator.layers, accumulator.epsilon, top_k),
                           row_keys=("probabilities", "slot") if top_k else ("probabilities",))
    probabilities, labels, indices = [], [], []
    n = len(layers)
    for batch in runner(dataset):
        count = len(batch["indices"])
        accumulator.add_reduced(
            count, [batch[f"max{i}"] for i in range(n)], [batch[f"off{i}"] for i in range(n)],
            [int(batch[f"values{i}"].sum()) for i in range(n)],
        )
        if top is not None:
            for i in range(n):
                top.add(i, batch[f"topv{i}"], batch[f"tops{i}"], batch[f"topp{i}"], batch["slot"], batch["indices"])
        probabilities.append(batch["probabilities"])
        labels.append(batch["labels"])
        indices.append(batch["indices"])
        if on_batch is not None:
            on_batch(batch)
        if progress is not None:
            progress.advance(count)
    if not probabilities:
        logger.warning("The data set yielded no image: no predictions and no layer health.")
        n_classes = int(extractor.outputs[-1].shape[-1])
        empty = np.zeros(0, np.int64)
        return StreamedEvaluation(np.zeros((0, n_classes)), empty, empty.copy(), ())
    return StreamedEvaluation(
        concatenated(probabilities, (), np.float64), concatenated(labels, (), np.int64),
        concatenated(indices, (), np.int64), accumulator.result(),
    )


def _health_step(extractor: Any, layers: Sequence[ConvLayerInfo], epsilon: float, top_k: int = 0) -> Step:
    """The compiled per-batch step: prediction rows, and per layer (as ``(1, C)`` rows, see
    :mod:`octreport.engine.streaming`) each filter's maximum, its count of values <= epsilon, and
    the number of values each filter produced, over the batch's valid rows (padding rows are
    copies of valid ones, so they cannot change a maximum; they are left out of the counts).
    With ``top_k``, also each filter's ``top_k`` strongest valid images of the batch
    (:func:`octreport.engine.top_activations.step_top_k`; the maximum is then taken from the
    per-image maxima it computes anyway) and each row's slot."""
    def step(images: Any, valid: Any) -> dict[str, Any]:
        outputs = keras.tree.flatten(extractor(images, training=False))
        result = {"probabilities": outputs[-1]}
        valid_rows = tf.cast(valid, tf.int32)
        if top_k:
            result["slot"] = step_slots(tf.shape(images)[0])
        for i, (info, output) in enumerate(zip(layers, outputs[:-1])):
            axes = list(_reduction_axes(info))
            if top_k:
                per_image, values, slots, positions = step_top_k(output, valid, info, top_k)
                result[f"max{i}"] = tf.reduce_max(per_image, axis=0)[None]
                result[f"topv{i}"], result[f"tops{i}"], result[f"topp{i}"] = values[None], slots[None], positions[None]
            else:
                result[f"max{i}"] = tf.cast(tf.reduce_max(output, axis=axes), tf.float32)[None]
            # Counted per image first, then over the valid rows: the mask touches (B, C), not the
            # whole map. int32 while counting (half the memory traffic of int64; an image holds far
            # fewer than 2**31 values per filter), int64 once reduced.
            off_per_image = tf.reduce_sum(tf.cast(output <= epsilon, tf.int32), axis=axes[1:])  # (B, C)
            off = tf.reduce_sum(tf.cast(off_per_image, tf.int64) * tf.cast(valid_rows, tf.int64)[:, None], axis=0)
            result[f"off{i}"] = off[None]
            per_image = tf.reduce_prod(tf.shape(output, out_type=tf.int64)[1:]) // info.filters
            result[f"values{i}"] = (per_image * tf.reduce_sum(tf.cast(valid_rows, tf.int64)))[None]
        return result

    return step
