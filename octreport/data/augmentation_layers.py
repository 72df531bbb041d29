"""The Keras layers of the training augmentation (:mod:`octreport.data.augmentation` says what
each part is for)."""

from __future__ import annotations

import keras

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
    return keras.Sequential(layers, name="oct_augmentation")
