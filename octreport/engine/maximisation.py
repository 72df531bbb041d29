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
  top-activating patches; a one-channel model gives grayscale images;
* the work is done on a window of the input, not the whole image (:func:`working_canvas`): the
  receptive field of the target plus a margin, aligned to the layer's stride, run through the same
  layers built for that size. Pixels outside the field cannot change the target, so the window
  gives the same activations (checked on a random image before use; else the whole image is the
  window) at a fraction of the cost for all but the deepest layers. The penalties and the gradient's
  normalisation are scaled as if taken over the whole image, so the objective and the step size
  are those of optimising the whole image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from octreport.engine.activations import cached_extractor_model
from octreport.engine.layers import ConvLayerInfo
from octreport.engine.receptive_field import ReceptiveField, crop_field
from octreport.errors import ConfigError

# Part of the weights cache's key: a change to how the inputs are optimised invalidates old entries.
METHOD_VERSION = 2  # 2: optimised on a window around the receptive field (1: on the whole image)


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
    window: bool = True,
) -> MaximisedInputs:
    """Optimise one input per channel of ``channels`` (see the module docstring) for a 2D layer.
    ``input_shape`` (H, W, C): the image size to optimise, needed where the model accepts any
    size; by default the model's own input shape. ``window=False`` optimises the whole image (the
    method before the window; ``benchmarks/bench_maximisation.py`` compares the two).

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
    canvas = working_canvas(extractor, info, field if window else None, (height, width, depth), centre, jitter)
    if not window:
        canvas = replace(canvas, field=field)
    net, (canvas_h, canvas_w) = canvas.extractor, canvas.size
    n = len(channels)
    start = rng.uniform(-0.5, 0.5, (n, canvas_h, canvas_w, depth)).astype(np.float32)  # logits: pixels 0.38-0.62
    # A plain tensor, not a tf.Variable: under a tf.distribute scope a variable becomes a mirrored
    # one, which cannot be differentiated outside a replica context.
    param = tf.constant(start)
    # The penalties and the gradient's normalisation are taken over the whole image, as if the
    # pixels outside the window were there (they do not reach the target): the same objective and
    # step size as optimising the whole image, on the pixels that matter.
    share = canvas_h * canvas_w / (height * width)
    full_size = float(height * width * depth)

    def maps(images: Any) -> Any:
        output = net(images, training=False)
        return tf.cast(output if info.channels_last else tf.transpose(output, [0, 2, 3, 1]), tf.float32)

    def strongest(images: Any) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Each row's largest activation of its own channel over the window's valid positions and
        where it lies (first in row order)."""
        output = np.asarray(maps(images), np.float64)[np.arange(n), :, :, channels]  # (n, h, w)
        output = np.where(canvas.valid[None], output, -np.inf)
        flat = output.reshape(n, -1).argmax(axis=1)
        return output.reshape(n, -1).max(axis=1), [tuple(int(v) for v in np.unravel_index(f, output.shape[1:])) for f in flat]

    def values_at(images: Any, places: Sequence[tuple[int, int]]) -> np.ndarray:
        output = np.asarray(maps(images), np.float64)
        return np.array([output[r, y, x, c] for r, ((y, x), c) in enumerate(zip(places, channels))])

    @tf.function(reduce_retracing=True, autograph=False)
    def step(param: Any, shift: Any, factor: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(param)
            image = tf.sigmoid(param)
            size = tf.cast(tf.round(tf.constant([canvas_h, canvas_w], tf.float32) * factor), tf.int32)
            seen = tf.image.resize_with_crop_or_pad(tf.image.resize(image, size), canvas_h, canvas_w)
            seen = tf.roll(seen, shift, axis=[1, 2])
            score = tf.gather_nd(maps(seen), target)
            tv = (tf.reduce_mean(tf.abs(image[:, 1:] - image[:, :-1]), axis=[1, 2, 3])
                  + tf.reduce_mean(tf.abs(image[:, :, 1:] - image[:, :, :-1]), axis=[1, 2, 3]))
            grey = tf.reduce_mean(tf.square(image - 0.5), axis=[1, 2, 3])
            scale = tf.stop_gradient(tf.abs(score) + 1e-3)  # penalties relative to the activation's size
            loss = -tf.reduce_sum(score) + settings.smoothness * share * tf.reduce_sum(scale * (tv + 0.1 * grey))
        grad = tape.gradient(loss, param)
        mean = tf.reduce_sum(grad, axis=[1, 2, 3], keepdims=True) / full_size
        spread = tf.sqrt(tf.maximum(tf.reduce_sum(tf.square(grad), axis=[1, 2, 3], keepdims=True) / full_size
                                    - tf.square(mean), 0.0))
        return param - settings.learning_rate * grad / (spread + 1e-8)

    before, start_places = strongest(tf.sigmoid(param))
    # The target: the centre where the filter responds there at the start, else its strongest place
    # (a filter off at the target gets no gradient through a ReLU and would never move).
    centre_on = values_at(tf.sigmoid(param), [canvas.target] * n) > 0
    places = [canvas.target if on else place for on, place in zip(centre_on, start_places)]
    target = tf.constant([[r, y, x, int(c)] for r, ((y, x), c) in enumerate(zip(places, channels))])
    for _ in range(settings.steps):
        shift = rng.integers(-jitter, jitter + 1, size=2).astype(np.int32)
        factor = np.float32(1 + rng.uniform(-settings.scale, settings.scale))
        param = step(param, tf.constant(shift), tf.constant(factor))
    images = tf.sigmoid(param)
    after = values_at(images, places)
    images = images.numpy()
    crops = (np.stack([crop_field(im, canvas.field, p) for im, p in zip(images, places)]) if canvas.field is not None
             else images)
    colour = "grayscale, the model reads one channel" if depth == 1 else f"{depth} input channels"
    caption = (
        f"input each filter responds to most at one position of its map: {settings.steps} normalised gradient-ascent "
        f"steps from noisy mid-grey, all shown filters as one batch, jitter {jitter} px, scaling +-{settings.scale:.0%}, "
        f"total-variation smoothness penalty {settings.smoothness:g}, seed {settings.seed}; {colour}; cropped to the "
        "receptive field of the position optimised (the centre of the map, or the filter's strongest position near it "
        "in the start image where it was off at the centre)"
    )
    if canvas.size != (height, width):
        caption += f"; optimised on the {canvas_h}x{canvas_w} window around that field (the same activations)"
    flat = int((after <= 0).sum())
    if flat:
        caption += f"; {flat} of {n} filters never responded (output 0 throughout), their tiles show where the search started"
    return MaximisedInputs(info, channels, crops.astype(np.float32), after, before, caption)


@dataclass(frozen=True, eq=False)
class Canvas:
    """Where one layer's maximisation works: a window of the input around the target position.

    Attributes:
        extractor: the layer's feature map model for inputs of the window's size (the layer's own
            extractor where the window is the whole image).
        size: (h, w) of the window in input pixels.
        offset: (top, left) of the window in the whole image.
        target: the target position (the centre of the whole image's map) in the window's map.
        valid: bool (h', w') over the window's map: the positions whose activation is the whole
            image's at the same place (their receptive field lies within the window or meets the
            image's own border).
        field: the layer's receptive field in the window's coordinates, or ``None`` if unknown.
    """

    extractor: Any
    size: tuple[int, int]
    offset: tuple[int, int]
    target: tuple[int, int]
    valid: np.ndarray
    field: ReceptiveField | None


def working_canvas(extractor: Any, info: ConvLayerInfo, field: ReceptiveField | None, shape: Sequence[int],
                   centre: tuple[int, int], jitter: int) -> Canvas:
    """The smallest window of the input (``shape``: H, W, C) that holds the receptive field of the
    ``centre`` output position with ``jitter`` + 2 pixels to spare, its sides and offset multiples
    of the field's jump (so the window's map is the whole map's, cut). The window is used only where
    it gives the whole image's activations, checked on one random image; otherwise (an unknown field,
    a layer that does not accept another size, a padding that differs) the whole image is the canvas."""
    import keras

    height, width, depth = (int(s) for s in shape)
    full_map = np.asarray(extractor(np.zeros((1, height, width, depth), np.float32), training=False))
    whole = Canvas(extractor, (height, width), (0, 0), centre,
                   np.ones(full_map.shape[1:3] if info.channels_last else full_map.shape[2:4], bool), field)
    if field is None:
        return whole
    spans = []
    for (first, last), jump, n in zip(field.window(centre), field.jump, (height, width)):
        margin = jitter + 2
        low = max((first - margin) // jump * jump, 0)
        high = min(low + -(-(last + margin - low) // jump) * jump, n)
        spans.append((low, high))
    (top, bottom), (left, right) = spans
    if (bottom - top) * (right - left) >= height * width:
        return whole
    try:
        window = keras.models.clone_model(extractor, input_tensors=keras.Input((bottom - top, right - left, depth)),
                                          clone_function=lambda layer: layer)  # the same layers and weights
    except (ValueError, TypeError):
        return whole
    sample = np.random.default_rng(0).uniform(0, 1, (1, height, width, depth)).astype(np.float32)
    full_map, cut_map = (np.asarray(m(x, training=False), np.float64) for m, x in (
        (extractor, sample), (window, sample[:, top:bottom, left:right])))
    if not info.channels_last:
        full_map, cut_map = full_map.transpose(0, 2, 3, 1), cut_map.transpose(0, 2, 3, 1)
    jump_h, jump_w = field.jump
    row, col = top // jump_h, left // jump_w
    rows, cols = cut_map.shape[1:3]
    target = (centre[0] - row, centre[1] - col)
    inside = 0 <= target[0] < rows and 0 <= target[1] < cols
    if row + rows > full_map.shape[1] or col + cols > full_map.shape[2] or not inside:
        return whole
    same = full_map[0, row:row + rows, col:col + cols]
    tolerance = 1e-4 * (np.abs(same).max() + 1e-6)
    valid = (np.abs(same - cut_map[0]) <= tolerance).all(axis=-1)
    if not valid[target]:
        return whole
    # Window position q is the whole map's q + (row, col): its centre lies at start + (q + row) * jump
    # in the image, start + q * jump + (row * jump - top) in the window (top is a multiple of jump).
    moved = ReceptiveField(field.size, field.jump,
                           (field.start[0] + row * jump_h - top, field.start[1] + col * jump_w - left))
    return Canvas(window, (bottom - top, right - left), (top, left), target, valid, moved)
