"""Grad-CAM: where in the image a convolutional layer found the evidence for a class.

For image ``n`` and class ``c`` at a layer with output ``A`` (h x w x C channels):

1. ``S`` = the class score (below), ``G = dS / dA`` with ``tf.GradientTape``;
2. channel weights ``w_k`` = spatial mean of ``G[..., k]``;
3. ``raw = ReLU(sum_k w_k * A[..., k])``, an (h, w) map at the layer's resolution;
4. bilinear upsampling (half-pixel centres) to the input size, then each map divided by its
   own maximum, so its hottest pixel is 1 (an all-zero map, where nothing speaks for the
   class, stays all zero rather than being blown up from rounding noise).

The class score, when the model ends in a softmax (a ``Dense`` with ``activation="softmax"``, or
a separate ``Softmax`` / ``Activation("softmax")`` layer; the logits ``z`` are then recomputed
from the head layer's own weights and checked against the model's probabilities):

* ``"contrast"`` (default): ``S = z_c - sum_{k != c} q_k z_k`` with ``q`` the softmax of the
  *other* classes' logits, held constant. Its gradient is ``d log P(c)`` divided by
  ``1 - P(c)``, so after the per-image scaling the maps are exactly those of the gradients of
  ``log P(c)`` or of ``P(c)``, without their float32 saturation (once ``P(c)`` rounds to 1 the
  probability's gradient loses the class's own term). A softmax does not change when the same
  function is added to every logit, so a single logit carries an arbitrary part that training
  never fixes (with two classes the head's weights of ``z_0 + z_1`` keep their random initial
  values, as their gradients cancel): the contrast is the part the prediction depends on.
  On the synthetic test of ``tests/test_gradcam.py`` (a bright square present or absent,
  20 seeds, 1971 images) the contrast put the peak inside the square for every image; the
  plain logit did so for 19 seeds and for no image of the 20th.
* ``"logit"``: ``S = z_c``, the pre-softmax class score of Selvaraju et al. (2017).
* ``"output"``: the model's output for the class as it is (for a probability: the same maps as
  ``"contrast"`` until it saturates). Used for ``"contrast"`` and ``"logit"`` too, with a log
  message, when no softmax head is found (a sigmoid, a head inside a nested model) or the
  recomputed logits do not reproduce the probabilities.

The layer defaults to the last 2D convolution :func:`~octreport.engine.layers.discover_conv_layers`
finds, also inside a nested backbone: the probe model is built by the same graph replay as the
feature map extractor (:func:`~octreport.engine.activations.replay_graph`), so the user's model is
not modified. Images are processed in batches; in inference mode (``training=False``) images do
not influence each other, so the gradient of the batch's summed scores is each image's own.

TensorFlow backend only (Keras 3 on TensorFlow).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from octreport.engine.activations import check_images, replay_graph, single_output
from octreport.engine.layers import ConvLayerInfo, discover_conv_layers
from octreport.errors import ConfigError, ModelError

logger = logging.getLogger(__name__)

SCORE_CONTRAST = "contrast"
SCORE_LOGIT = "logit"
SCORE_OUTPUT = "output"
SCORES = (SCORE_CONTRAST, SCORE_LOGIT, SCORE_OUTPUT)
_LOGIT_CHECK_ATOL = 1e-3  # softmax(recomputed logits) vs the model's probabilities


@dataclass(frozen=True, eq=False)
class GradCamResult:
    """Grad-CAM maps of N images at one layer.

    Attributes:
        layer: the layer the maps are computed at.
        heatmaps: float32 (N, H, W) in [0, 1], at the input image size: ``raw`` upsampled
            bilinearly, then divided by its maximum (1 at each map's hottest pixel); all zero
            where ``raw`` is all zero.
        raw: float32 (N, h, w), ``ReLU(sum_k w_k A_k)`` at the layer's resolution, not scaled.
        class_indices: int64 (N,), the class each map explains.
        probabilities: float32 (N, K), the model's output for the images.
        score: the class score whose gradients were used: ``"contrast"``, ``"logit"`` or
            ``"output"`` (see the module docstring).
        caption: how the maps were made, for the report.
    """

    layer: ConvLayerInfo
    heatmaps: np.ndarray
    raw: np.ndarray
    class_indices: np.ndarray
    probabilities: np.ndarray
    score: str
    caption: str

    def peaks(self) -> np.ndarray:
        """int64 (N, 2): (row, column) of each heat map's hottest pixel (first one on ties)."""
        n, _, width = self.heatmaps.shape
        flat = self.heatmaps.reshape(n, -1).argmax(axis=1)
        return np.stack([flat // width, flat % width], axis=1).astype(np.int64)


@dataclass(frozen=True, eq=False)
class _Probe:
    """input -> [layer output, head input (or the output again), model output]."""

    model: Any
    logits: Callable[[Any], Any] | None  # head input -> (B, K) logits; None: no softmax head
    n_classes: int


_PROBES: weakref.WeakKeyDictionary[Any, dict[int, _Probe]] = weakref.WeakKeyDictionary()


def default_gradcam_layer(model: Any) -> ConvLayerInfo:
    """The last 2D convolutional layer of ``model`` in forward order (nested ones included).

    Raises:
        ModelError: the model has no 2D convolutional layer.
    """
    found = [info for info in discover_conv_layers(model) if info.spatial_rank == 2]
    if not found:
        raise ModelError(
            f"Model {model.name!r} has no 2D convolutional layer, so Grad-CAM has no spatial "
            "map to show for its images."
        )
    return found[-1]


def _identity(x: Any) -> Any:
    return x


def _is_softmax(function: Any) -> bool:
    return function is keras.activations.softmax


def _head_logits(head: Any) -> Callable[[Any], Any] | None:
    """A function from the head layer's input to the class logits, or None if unknown."""
    if isinstance(head, keras.layers.Softmax) or (
        isinstance(head, keras.layers.Activation) and _is_softmax(head.activation)
    ):
        return _identity
    if isinstance(head, keras.layers.Dense) and _is_softmax(head.activation):
        if getattr(head, "quantization_mode", None) is not None:
            return None

        def logits(x: Any) -> Any:
            z = keras.ops.matmul(x, head.kernel)
            return keras.ops.add(z, head.bias) if head.use_bias else z

        return logits
    return None


def _build_probe(model: Any, info: ConvLayerInfo) -> _Probe:
    graph = replay_graph(model, [info])
    output = single_output(model, graph.output)
    if len(output.shape) != 2:
        raise ModelError(
            f"Model {model.name!r} outputs shape {tuple(output.shape)}; Grad-CAM needs a "
            "classifier with one (batch, classes) output."
        )
    logits = _head_logits(graph.head) if graph.head_input is not None else None
    second = output if logits is None else graph.head_input
    probe = keras.Model(graph.inputs, [graph.layer_outputs[0], second, output],
                        name=f"{model.name}_gradcam")
    return _Probe(probe, logits, int(output.shape[-1]))


def _cached_probe(model: Any, info: ConvLayerInfo) -> _Probe:
    per_model = _PROBES.setdefault(model, {})
    if id(info.layer) not in per_model:
        per_model[id(info.layer)] = _build_probe(model, info)
    return per_model[id(info.layer)]


def _check_classes(class_indices: Any, n_images: int, n_classes: int) -> np.ndarray:
    classes = np.asarray(class_indices)
    if classes.shape != (n_images,) or not np.issubdtype(classes.dtype, np.integer):
        raise ConfigError(
            f"Expected {n_images} integer class indices (one per image), got an array of "
            f"shape {classes.shape} and type {classes.dtype}."
        )
    if classes.min() < 0 or classes.max() >= n_classes:
        raise ConfigError(
            f"Class indices must lie in 0..{n_classes - 1} for this {n_classes}-class model, "
            f"got {classes.min()}..{classes.max()}."
        )
    return classes.astype(np.int64)


def _class_score(kind: str, logits: Any, output: Any, classes: Any) -> Any:
    """(B,) score of each image's class: see the module docstring."""
    import tensorflow as tf

    if kind == SCORE_OUTPUT:
        return tf.gather(output, classes, axis=1, batch_dims=1)
    own = tf.gather(logits, classes, axis=1, batch_dims=1)
    if kind == SCORE_LOGIT:
        return own
    is_own = tf.one_hot(classes, tf.shape(logits)[1], on_value=True, off_value=False)
    others = tf.where(is_own, tf.constant(-np.inf, logits.dtype), logits)
    weights = tf.stop_gradient(tf.nn.softmax(others, axis=1))  # 0 for the class itself
    return own - tf.reduce_sum(weights * tf.where(is_own, tf.zeros_like(logits), logits), axis=1)


def _batch_maps(probe: _Probe, info: ConvLayerInfo, batch: np.ndarray, classes: np.ndarray,
                kind: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """Raw (B, h, w) maps, model outputs (B, K), and whether the logits reproduced the outputs."""
    import tensorflow as tf

    x = tf.convert_to_tensor(batch)
    index = tf.constant(classes)
    with tf.GradientTape() as tape:
        tape.watch(x)  # records the whole forward pass, even for a frozen (non-trainable) model
        activations, head_input, output = probe.model(x, training=False)
        logits = probe.logits(head_input) if kind != SCORE_OUTPUT else None
        score = _class_score(kind, logits, output, index)
    gradients = tape.gradient(score, activations)
    if gradients is None:
        raise ModelError(f"The class score does not depend on layer {info.path!r}.")
    consistent = logits is None or bool(
        np.allclose(tf.nn.softmax(logits).numpy(), output.numpy(), atol=_LOGIT_CHECK_ATOL)
    )
    activations, gradients = activations.numpy(), gradients.numpy()
    if not info.channels_last:
        activations, gradients = np.moveaxis(activations, 1, -1), np.moveaxis(gradients, 1, -1)
    weights = gradients.mean(axis=(1, 2), keepdims=True)  # (B, 1, 1, C)
    raw = np.maximum((weights * activations).sum(axis=-1), 0.0)
    return raw.astype(np.float32), output.numpy(), consistent


def _all_maps(probe: _Probe, info: ConvLayerInfo, images: np.ndarray, classes: np.ndarray,
              kind: str, batch_size: int) -> tuple[np.ndarray, np.ndarray, bool]:
    raws, outputs, consistent = [], [], True
    for start in range(0, images.shape[0], batch_size):
        stop = start + batch_size
        raw, output, ok = _batch_maps(probe, info, images[start:stop], classes[start:stop], kind)
        raws.append(raw)
        outputs.append(output)
        consistent = consistent and ok
    return np.concatenate(raws), np.concatenate(outputs), consistent


def _upsample(raw: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear (half-pixel centres) resizing to ``size``, then each map divided by its maximum."""
    import tensorflow as tf

    resized = tf.image.resize(raw[..., np.newaxis], size, method="bilinear").numpy()[..., 0]
    peak = resized.max(axis=(1, 2), keepdims=True)
    unit = np.where(peak > 0, resized / np.where(peak > 0, peak, 1.0), 0.0)
    return np.clip(unit, 0.0, 1.0).astype(np.float32)


def _usable_kind(model: Any, probe: _Probe, score: str) -> str:
    if score == SCORE_OUTPUT:
        return score
    if probe.logits is None:
        logger.info("Grad-CAM on %r uses the model's output: no softmax head found.", model.name)
        return SCORE_OUTPUT
    if score == SCORE_CONTRAST and probe.n_classes < 2:
        return SCORE_LOGIT
    return score


def grad_cam(
    model: Any,
    images: np.ndarray,
    class_indices: Any,
    layer: ConvLayerInfo | None = None,
    *,
    score: str = SCORE_CONTRAST,
    batch_size: int = 32,
) -> GradCamResult:
    """Grad-CAM heat maps of ``images`` (N, H, W, C) for ``class_indices`` (N,) at ``layer``.

    ``layer`` defaults to :func:`default_gradcam_layer`; ``score`` is ``"contrast"``,
    ``"logit"`` or ``"output"`` (see the module docstring; the result says which was used).

    Raises:
        ModelError: not the TensorFlow backend, images that do not fit the model, a model
            that is not a single-output classifier, or a layer the score does not depend on.
        ConfigError: a layer that is not a 2D convolution, bad class indices or ``score``,
            no images, or a bad ``batch_size``.
    """
    if keras.backend.backend() != "tensorflow":
        raise ModelError(
            f"Grad-CAM needs the TensorFlow backend of Keras, got {keras.backend.backend()!r}. "
            "Set KERAS_BACKEND=tensorflow."
        )
    if score not in SCORES:
        raise ConfigError(f"Unknown Grad-CAM score {score!r}; expected one of {', '.join(SCORES)}.")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}.")
    info = default_gradcam_layer(model) if layer is None else layer
    if info.spatial_rank != 2:
        raise ConfigError(
            f"Grad-CAM needs a 2D convolutional layer; {info.path!r} is a {info.kind}."
        )
    images = check_images(model, images)
    probe = _cached_probe(model, info)
    classes = _check_classes(class_indices, images.shape[0], probe.n_classes)
    kind = _usable_kind(model, probe, score)
    raw, outputs, consistent = _all_maps(probe, info, images, classes, kind, batch_size)
    if not consistent:
        logger.warning(
            "The logits recomputed from the head of %r do not reproduce its probabilities; "
            "Grad-CAM uses the gradients of the model's output instead.", model.name,
        )
        kind = SCORE_OUTPUT
        raw, outputs, _ = _all_maps(probe, info, images, classes, kind, batch_size)
    heatmaps = _upsample(raw, (images.shape[1], images.shape[2]))
    return GradCamResult(
        layer=info,
        heatmaps=heatmaps,
        raw=raw,
        class_indices=classes,
        probabilities=outputs.astype(np.float32),
        score=kind,
        caption=_caption(info, raw.shape[1:], kind),
    )


_SCORE_WORDS = {
    SCORE_CONTRAST: "the class logit minus the softmax-weighted mean of the other classes' "
                    "logits (same maps as for the class probability, without saturation)",
    SCORE_LOGIT: "the class logit (the input of the final softmax)",
    SCORE_OUTPUT: "the model's output for the class",
}


def _caption(info: ConvLayerInfo, low_res: tuple[int, ...], kind: str) -> str:
    return (
        f"Grad-CAM at layer {info.path} ({low_res[0]} x {low_res[1]}): gradients of "
        f"{_SCORE_WORDS[kind]}, averaged per channel, weighted sum of the channels, negative "
        "values cut to 0; upsampled bilinearly to the image size and scaled by its own maximum "
        "(a map with no positive evidence stays 0)."
    )
