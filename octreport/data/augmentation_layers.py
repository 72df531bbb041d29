"""The Keras layers of the training augmentation (:mod:`octreport.data.augmentation` says what
each part is for)."""

from __future__ import annotations

import math

import keras
import numpy as np

from octreport.data.augmentation import Augmentation


class RandomGamma(keras.layers.Layer):
    """``x ** gamma`` per image, ``ln(gamma)`` uniform in ``[-max_log_gamma, max_log_gamma]``; for
    images in [0, 1] (the result stays there; 0 and 1 stay put). Identity outside training."""

    def __init__(self, max_log_gamma: float, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_log_gamma = float(max_log_gamma)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training: bool = True):
        if not training or not self.max_log_gamma:
            return images
        batch = keras.ops.shape(images)[0]
        log_gamma = keras.random.uniform((batch, 1, 1, 1), -self.max_log_gamma, self.max_log_gamma, seed=self.seed_generator)
        return keras.ops.power(keras.ops.maximum(images, 1e-6), keras.ops.exp(log_gamma))

    def compute_output_shape(self, input_shape):
        return input_shape


BACKGROUND_ROWS = 8
"""The top rows of a B-scan (the vitreous above the retina) set the level of the speckle background."""


def speckle_background(images, seed_generator):
    """Speckle like the background of each image: its top rows' mean level times ``1 + N(0, 1)``,
    clipped to [0, 1]; same shape as ``images``."""
    level = keras.ops.mean(images[:, :BACKGROUND_ROWS], axis=(1, 2, 3), keepdims=True)
    noise = keras.random.normal(keras.ops.shape(images), seed=seed_generator)
    return keras.ops.clip(level * (1.0 + noise), 0.0, 1.0)


class RandomDeviceGeometry(keras.layers.Layer):
    """Where another device puts the retina in the frame, per image: horizontal factor
    ``f = exp(U(-field_of_view, field_of_view))`` about the centre (``f < 1``: narrower, in a wider
    frame; ``f > 1``: the centre cropped), a vertical shift of up to ``vertical_shift * H`` and a tilt
    (columns sheared so the edges differ by up to ``tilt * H``). Pixels the scan does not cover
    become speckle background (:func:`speckle_background`). Images in [0, 1]; identity outside training."""

    def __init__(self, field_of_view: float, vertical_shift: float, tilt: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.field_of_view, self.vertical_shift, self.tilt = float(field_of_view), float(vertical_shift), float(tilt)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _uniform(self, batch, largest: float):
        return keras.random.uniform((batch,), -largest, largest, seed=self.seed_generator)

    def call(self, images, training: bool = True):
        if not training or not (self.field_of_view or self.vertical_shift or self.tilt):
            return images
        shape = keras.ops.shape(images)
        batch = shape[0]
        height, width = keras.ops.cast(shape[1], "float32"), keras.ops.cast(shape[2], "float32")
        factor = keras.ops.exp(self._uniform(batch, self.field_of_view))
        shift = self._uniform(batch, self.vertical_shift) * height
        slope = self._uniform(batch, self.tilt) * height / width
        centre_x = (width - 1.0) / 2.0
        zero, one = keras.ops.zeros((batch,)), keras.ops.ones((batch,))
        # Output (x, y) reads the input at (centre + (x - centre) / f, y - shift + slope (x - centre)).
        transform = keras.ops.stack([
            1.0 / factor, zero, centre_x - centre_x / factor,
            slope, one, -shift - slope * centre_x,
            zero, zero,
        ], axis=1)
        moved = keras.ops.image.affine_transform(images, transform, fill_mode="constant", fill_value=0.0)
        covered = keras.ops.image.affine_transform(keras.ops.ones_like(images), transform, fill_mode="constant",
                                                   fill_value=0.0)
        background = speckle_background(images, self.seed_generator)
        return keras.ops.clip(moved + (1.0 - covered) * background, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape


def gaussian_kernel(sigma: float, channels: int):
    """A ``(k, k, channels, 1)`` depthwise Gaussian kernel, ``k = 2 ceil(2 sigma) + 1``."""
    radius = max(1, math.ceil(2 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    line = np.exp(-0.5 * (x / sigma) ** 2)
    kernel = np.outer(line, line) / np.outer(line, line).sum()
    return np.tile(kernel[:, :, None, None], (1, 1, channels, 1)).astype(np.float32)


class RandomSpeckleBlur(keras.layers.Layer):
    """Another device's noise and optics, per image: ``x * (1 + s * N(0, 1))`` with ``s`` uniform in
    ``[0, speckle]``, then a random share ``w`` in [0, 1] of a Gaussian blur of sigma ``blur`` px
    (``(1 - w) x + w blur(x)``). Images in [0, 1], clipped back to it; identity outside training."""

    def __init__(self, speckle: float, blur: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.speckle, self.blur = float(speckle), float(blur)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training: bool = True):
        if not training or not (self.speckle or self.blur):
            return images
        batch = keras.ops.shape(images)[0]
        if self.speckle:
            strength = keras.random.uniform((batch, 1, 1, 1), 0.0, self.speckle, seed=self.seed_generator)
            noise = keras.random.normal(keras.ops.shape(images), seed=self.seed_generator)
            images = keras.ops.clip(images * (1.0 + strength * noise), 0.0, 1.0)
        if self.blur:
            kernel = gaussian_kernel(self.blur, int(images.shape[-1]))
            blurred = keras.ops.depthwise_conv(images, kernel, padding="same")
            share = keras.random.uniform((batch, 1, 1, 1), 0.0, 1.0, seed=self.seed_generator)
            images = keras.ops.clip((1.0 - share) * images + share * blurred, 0.0, 1.0)
        return images

    def compute_output_shape(self, input_shape):
        return input_shape


def augmentation_layers(seed: int, augmentation: Augmentation = Augmentation()) -> keras.Sequential:
    """A stateless-in-graph stack of Keras preprocessing layers, seeded for repeatable runs."""
    layers = [
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomTranslation(0.05, 0.05, fill_mode="constant", seed=seed + 1),
        keras.layers.RandomZoom(0.1, fill_mode="constant", seed=seed + 2),
        keras.layers.RandomBrightness(0.1, value_range=(0.0, 1.0), seed=seed + 3),
        keras.layers.RandomContrast(0.2, seed=seed + 4),
    ]
    if augmentation.width_scale:
        # height_factor 0: only the width changes (positive factors zoom out, i.e. narrow the retina).
        scale = augmentation.width_scale
        layers.append(keras.layers.RandomZoom(height_factor=(0.0, 0.0), width_factor=(-scale, scale),
                                              fill_mode="constant", seed=seed + 5))
    if augmentation.gamma:
        layers.append(RandomGamma(augmentation.gamma, seed=seed + 6))
    if augmentation.geometry:
        layers.append(RandomDeviceGeometry(augmentation.field_of_view, augmentation.vertical_shift, augmentation.tilt,
                                           seed=seed + 7))
    if augmentation.speckle or augmentation.blur:
        layers.append(RandomSpeckleBlur(augmentation.speckle, augmentation.blur, seed=seed + 8))
    return keras.Sequential(layers, name="oct_augmentation")
