"""Stream images from disk into model input with ``tf.data``: decode, convert, resize, batch, prefetch.

Nothing here holds a split in memory: only file names are listed up front, and images are decoded
in parallel a few batches ahead of the model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from octreport.data.augmentation import augmentation_layers
from octreport.data.layout import ImageItem
from octreport.data.preprocessing import Preprocessing

log = logging.getLogger(__name__)

AUTOTUNE = tf.data.AUTOTUNE


def decode_and_fit(path: tf.Tensor, preprocessing: Preprocessing) -> tf.Tensor:
    """One file to a float32 ``(height, width, channels)`` tensor with values in [0, 1]."""
    raw = tf.io.read_file(path)
    image = tf.io.decode_image(raw, channels=preprocessing.channels, expand_animations=False)
    image = tf.image.convert_image_dtype(image, tf.float32)
    size = (preprocessing.height, preprocessing.width)
    if preprocessing.aspect == "pad":
        image = tf.image.resize_with_pad(image, *size, antialias=True)
    elif preprocessing.aspect == "crop":
        image = _centre_crop_to_aspect(image, preprocessing.height / preprocessing.width)
        image = tf.image.resize(image, size, antialias=True)
    else:
        image = tf.image.resize(image, size, antialias=True)
    image = tf.clip_by_value(image, 0.0, 1.0)
    image.set_shape(preprocessing.input_shape)
    return image


def _centre_crop_to_aspect(image: tf.Tensor, aspect: float) -> tf.Tensor:
    """Cut the centre of the wider side so that height / width == ``aspect``."""
    shape = tf.shape(image)
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    new_width = tf.minimum(width, height / aspect)
    new_height = tf.minimum(height, width * aspect)
    top = tf.cast((height - new_height) / 2, tf.int32)
    left = tf.cast((width - new_width) / 2, tf.int32)
    return tf.image.crop_to_bounding_box(image, top, left, tf.cast(new_height, tf.int32), tf.cast(new_width, tf.int32))


def image_dataset(
    items: Sequence[ImageItem],
    preprocessing: Preprocessing,
    batch_size: int = 32,
    *,
    shuffle: bool = False,
    augment: bool = False,
    seed: int = 0,
    with_index: bool = False,
    repeat: bool = False,
) -> tf.data.Dataset:
    """Batches of ``(images, labels)``, or ``(images, labels, indices)`` with ``with_index``.

    ``indices`` are positions in ``items``; a file that still fails to decode is dropped with a
    warning, and its index is missing from the stream (see :func:`missing_indices`).
    """
    paths = [str(item.path) for item in items]
    labels = np.array([item.label for item in items], dtype=np.int32)
    dataset = tf.data.Dataset.from_tensor_slices((paths, labels, np.arange(len(items), dtype=np.int64)))
    if shuffle:
        dataset = dataset.shuffle(len(items), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.map(
        lambda path, label, index: (decode_and_fit(path, preprocessing), label, index),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    ).ignore_errors(log_warning=True)
    dataset = dataset.batch(batch_size)
    if augment:
        augmenter = augmentation_layers(seed)
        dataset = dataset.map(
            lambda images, label, index: (augmenter(images, training=True), label, index),
            num_parallel_calls=AUTOTUNE,
        )
    if not with_index:
        dataset = dataset.map(lambda images, label, index: (images, label))
    return dataset.prefetch(AUTOTUNE)


def load_images(items: Sequence[ImageItem], preprocessing: Preprocessing) -> np.ndarray:
    """The few images shown in a report, as one ``(N, H, W, C)`` float32 array."""
    return np.stack([decode_and_fit(tf.constant(str(item.path)), preprocessing).numpy() for item in items])


def missing_indices(expected: int, seen: Sequence[int]) -> list[int]:
    """Positions of ``items`` that never came out of the stream (failed to decode)."""
    return sorted(set(range(expected)) - set(int(i) for i in seen))
