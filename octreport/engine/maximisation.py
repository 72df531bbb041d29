"""Activation maximisation: the input a filter responds to most, found by gradient ascent.

Erhan et al. (2009); Olah, Mordvintsev and Schubert, "Feature Visualization" (Distill 2017).
All shown channels of one layer are optimised at once, one image per channel, as one batch:

* start: mid-grey with seeded noise (pixels within 0.38-0.62): a flat grey start leaves a filter
  behind a ReLU that is off on grey with no gradient at all, so it would never move;
* objective: the channel's activation at one output position, the centre of the map, or, for a
  filter that is off at the centre of the start image (no gradient reaches it through a ReLU), its
  strongest position there; minus a total variation penalty (smoothness) and a small pull towards
  grey; the image stays in [0, 1] (the model's input range) through a sigmoid parametrisation;
* robustness: each step sees the image jittered (rolled by up to ``jitter`` pixels, at most an
  eighth of the receptive field, beyond which a small field's pattern is blurred away) and scaled
  (by a factor within ``1 +- scale``), so the result does not rely on one exact pixel grid;
* a fixed number of steps, normalised gradient steps; every random draw comes from ``seed``;
* the result is cropped to the receptive field of that position, the same framing as the
  top-activating patches; a one-channel model gives grayscale images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from octreport.engine.activations import cached_extractor_model
from octreport.engine.layers import ConvLayerInfo
from octreport.engine.receptive_field import ReceptiveField, crop_field
from octreport.errors import ConfigError


@dataclass(frozen=True)
class MaximisationSettings:
    steps: int = 48
    learning_rate: float = 0.08
    jitter: int = 2
    scale: float = 0.05
    smoothness: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.learning_rate <= 0 or self.jitter < 0 or not 0 <= self.scale < 0.5 or self.smoothness < 0:
            raise ConfigError(f"Invalid activation maximisation settings: {self}.")


@dataclass(frozen=True, eq=False)
class MaximisedInputs:
    """The input each shown channel of one layer responds to most.

    Attributes:
        layer: the layer.
        channels: int64 (n,), the channels optimised.
        images: float32 (n, h, w, C) in [0, 1]: the optimised inputs cropped to the receptive
            field of the channel's strongest output position (NaN where it reaches outside the image).
        activation: float64 (n,), each channel's activation at the position optimised, for its
            optimised image.
        start_activation: float64 (n,), each channel's largest activation in the start image.
        caption: how the images were made.
        source: ``"computed"`` in this run, or ``"cache"``: read from the weights cache
            (:mod:`octreport.engine.weights_cache`).
    """

    layer: ConvLayerInfo
    channels: np.ndarray
    images: np.ndarray
    activation: np.ndarray
    start_activation: np.ndarray
    caption: str
    source: str = "computed"


def maximise_channels(
    model: Any, info: ConvLayerInfo, channels: Sequence[int], field: ReceptiveField | None,
    settings: MaximisationSettings = MaximisationSettings(), input_shape: Sequence[int] | None = None,
) -> MaximisedInputs:
    """Optimise one input per channel of ``channels`` (see the module docstring) for a 2D layer.
    ``input_shape`` (H, W, C): the image size to optimise, needed where the model accepts any
    size; by default the model's own input shape.

    Raises:
        ConfigError: the layer is not 2D, or no channel is given.
    """
    import tensorflow as tf

    if info.spatial_rank != 2:
        raise ConfigError(f"Activation maximisation is drawn for 2D layers only; {info.path} is {info.spatial_rank}D.")
    channels = np.asarray(channels, np.int64)
    if channels.size == 0:
        raise ConfigError("No channel to maximise.")
    extractor = cached_extractor_model(model, [info])
    shape = tuple(input_shape) if input_shape is not None else tuple(model.inputs[0].shape[1:4])
    if None in shape:
        raise ConfigError(f"The model accepts images of any size; give the input shape to optimise, not {shape}.")
    height, width, depth = (int(s) for s in shape)
    probe = extractor(np.full((1, height, width, depth), 0.5, np.float32), training=False)
    out_h, out_w = (probe.shape[1:3] if info.channels_last else probe.shape[2:4])
    centre = (int(out_h) // 2, int(out_w) // 2)
    rng = np.random.default_rng(settings.seed)
    # Jitter beyond an eighth of the field blurs the pattern of a small field away: capped there.
    jitter = settings.jitter if field is None else min(settings.jitter, max(field.size) // 8)
    n = len(channels)
    start = rng.uniform(-0.5, 0.5, (n, height, width, depth)).astype(np.float32)  # logits: pixels 0.38-0.62
    # A plain tensor, not a tf.Variable: under a tf.distribute scope a variable becomes a mirrored
    # one, which cannot be differentiated outside a replica context.
    param = tf.constant(start)

    def activations(images: Any) -> Any:
        """Each row's own channel at its own target position."""
        output = extractor(images, training=False)
        output = tf.cast(output if info.channels_last else tf.transpose(output, [0, 2, 3, 1]), tf.float32)
        return tf.gather_nd(output, target)

    def strongest(images: Any) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Each row's largest activation of its own channel and where it lies (first in row order)."""
        output = extractor(images, training=False)
        output = np.asarray(output if info.channels_last else tf.transpose(output, [0, 2, 3, 1]), np.float64)
        maps = output[np.arange(n), :, :, channels]  # (n, h, w)
        flat = maps.reshape(n, -1).argmax(axis=1)
        return maps.reshape(n, -1).max(axis=1), [tuple(int(v) for v in np.unravel_index(f, maps.shape[1:])) for f in flat]

    @tf.function(reduce_retracing=True)
    def step(param: Any, shift: Any, factor: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(param)
            image = tf.sigmoid(param)
            size = tf.cast(tf.round(tf.constant([height, width], tf.float32) * factor), tf.int32)
            seen = tf.image.resize_with_crop_or_pad(tf.image.resize(image, size), height, width)
            seen = tf.roll(seen, shift, axis=[1, 2])
            score = activations(seen)
            tv = (tf.reduce_mean(tf.abs(image[:, 1:] - image[:, :-1]), axis=[1, 2, 3])
                  + tf.reduce_mean(tf.abs(image[:, :, 1:] - image[:, :, :-1]), axis=[1, 2, 3]))
            grey = tf.reduce_mean(tf.square(image - 0.5), axis=[1, 2, 3])
            scale = tf.stop_gradient(tf.abs(score) + 1e-3)  # penalties relative to the activation's size
            loss = -tf.reduce_sum(score) + settings.smoothness * tf.reduce_sum(scale * (tv + 0.1 * grey))
        grad = tape.gradient(loss, param)
        grad /= tf.math.reduce_std(grad, axis=[1, 2, 3], keepdims=True) + 1e-8
        return param - settings.learning_rate * grad

    before, start_places = strongest(tf.sigmoid(param))
    # The target: the centre where the filter responds there at the start, else its strongest place
    # (a filter off at the target gets no gradient through a ReLU and would never move).
    centre_on = _values_at(extractor, tf.sigmoid(param), info, channels, [centre] * n) > 0
    places0 = [centre if on else place for on, place in zip(centre_on, start_places)]
    target = tf.constant([[r, y, x, int(c)] for r, ((y, x), c) in enumerate(zip(places0, channels))])
    for _ in range(settings.steps):
        shift = rng.integers(-jitter, jitter + 1, size=2).astype(np.int32)
        factor = np.float32(1 + rng.uniform(-settings.scale, settings.scale))
        param = step(param, tf.constant(shift), tf.constant(factor))
    images = tf.sigmoid(param)
    after = _values_at(extractor, images, info, channels, places0)
    places = places0
    images = images.numpy()
    crops = np.stack([crop_field(im, field, p) for im, p in zip(images, places)]) if field is not None else images
    colour = "grayscale, the model reads one channel" if depth == 1 else f"{depth} input channels"
    caption = (
        f"input each filter responds to most at one position of its map: {settings.steps} normalised gradient-ascent "
        f"steps from noisy mid-grey, all shown filters as one batch, jitter {jitter} px, scaling +-{settings.scale:.0%}, "
        f"total-variation smoothness penalty {settings.smoothness:g}, seed {settings.seed}; {colour}; cropped to the "
        "receptive field of the position optimised (the centre of the map, or the filter's strongest position in the "
        "start image where it was off at the centre)"
    )
    flat = int((after <= 0).sum())
    if flat:
        caption += f"; {flat} of {n} filters never responded (output 0 throughout), their tiles show where the search started"
    return MaximisedInputs(info, channels, crops.astype(np.float32), after, before, caption)


def _values_at(extractor: Any, images: Any, info: ConvLayerInfo, channels: np.ndarray,
               places: Sequence[tuple[int, int]]) -> np.ndarray:
    """Each row's own channel's activation at its place, float64 (n,)."""
    import tensorflow as tf

    output = extractor(images, training=False)
    output = np.asarray(output if info.channels_last else tf.transpose(output, [0, 2, 3, 1]), np.float64)
    return np.array([output[r, y, x, c] for r, ((y, x), c) in enumerate(zip(places, channels))])
