"""Augmentation plausible for B-scans, applied to training batches only.

Horizontal flips (a B-scan's left/right depends on the eye and scan direction), small shifts and
zooms, brightness and contrast changes. Never a vertical flip: a retina is never upside down.
Training applies it to batches read from the disk cache of decoded images (after intensity
normalization), so every epoch sees new variants while each file is decoded only once.
"""

from __future__ import annotations

import keras


def augmentation_layers(seed: int) -> keras.Sequential:
    """A stateless-in-graph stack of Keras preprocessing layers, seeded for repeatable runs."""
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomTranslation(0.05, 0.05, fill_mode="constant", seed=seed + 1),
            keras.layers.RandomZoom(0.1, fill_mode="constant", seed=seed + 2),
            keras.layers.RandomBrightness(0.1, value_range=(0.0, 1.0), seed=seed + 3),
            keras.layers.RandomContrast(0.2, seed=seed + 4),
        ],
        name="oct_augmentation",
    )
