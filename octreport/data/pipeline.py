"""Stream images from disk into model input with ``tf.data``: decode, convert, resize, batch, prefetch.

Nothing here holds a split in memory: only file names are listed up front, and images are decoded
in parallel a few batches ahead of the model. Training can instead cache the decoded, resized and
normalized images (before augmentation) in a file on disk, so each file is decoded once per run
rather than once per epoch (see ``cache_file`` in :func:`image_dataset`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tensorflow as tf

from octreport.data.augmentation import Augmentation
from octreport.data.augmentation_layers import augmentation_layers
from octreport.data.dicom_decode import decode_dicom_or
from octreport.data.files import FileDigest, FileReads, read_image_bytes, without_autotune
from octreport.data.image_facts import FactsCollector, ImageFacts, facts_of_bytes, frame_tensor
from octreport.data.layout import ImageItem
from octreport.data.preprocessing import PERCENTILE_RANGE, RETINA_ABOVE, RETINA_WINDOW, Preprocessing, to_model_input
from octreport.errors import DataError

log = logging.getLogger(__name__)

AUTOTUNE = tf.data.AUTOTUNE
as_graph = tf.autograph.experimental.do_not_convert
"""Marks a ``map`` function as graph code already (it uses ``tf.cond``, never a Python ``if`` on a
tensor), so tracing skips AutoGraph's rewrite of its source: 2.8 s of a report's tracing."""
CACHE_SHUFFLE_BUFFER = 2048
"""Images shuffled in memory when reading a disk cache: all of them up to this many (64 MB at
128x256 grayscale uint8), so memory stays bounded on large data sets."""


def decode_and_fit(path: tf.Tensor, preprocessing: Preprocessing, frame=-1) -> tf.Tensor:
    """One file to a float32 ``(height, width, channels)`` tensor with values in [0, 1], resized
    and intensity-normalized as ``preprocessing`` says: what the model is given."""
    return normalize_intensity(decode_and_resize(path, preprocessing, frame), preprocessing)


def decode_and_resize(path: tf.Tensor, preprocessing: Preprocessing, frame=-1) -> tf.Tensor:
    """One file to a float32 ``(height, width, channels)`` tensor in [0, 1], before normalization
    (the uncached stream's reader: TensorFlow reads the file; see :mod:`octreport.data.files`; ``frame``: one
    frame of a DICOM volume, which this reader reads again for each of its frames)."""
    return pixels_from_bytes(tf.io.read_file(path), path, preprocessing, frame)


def fit_bytes(raw: tf.Tensor, name: tf.Tensor, preprocessing: Preprocessing, frame=-1) -> tf.Tensor:
    """:func:`decode_and_fit` of a file already read: what the model is given."""
    return normalize_intensity(pixels_from_bytes(raw, name, preprocessing, frame), preprocessing)


def pixels_from_bytes(raw: tf.Tensor, name: tf.Tensor, preprocessing: Preprocessing, frame=-1) -> tf.Tensor:
    """Where a file's bytes become pixels, for every reader of a run: ``raw`` (a scalar string
    tensor, the whole file) of the file called ``name`` (a scalar string tensor; a new file format
    that needs it, such as DICOM, is told apart here) to a float32 ``(height, width, channels)``
    tensor in [0, 1], resized as ``preprocessing`` says, before intensity normalization.
    ``frame``: which frame of a DICOM volume (a scalar int tensor; negative: the central one)."""
    del name  # JPEG and PNG are told apart by their bytes
    image = _decode(raw, preprocessing.channels, preprocessing.height, preprocessing.width, frame)
    image = tf.image.convert_image_dtype(image, tf.float32)
    size = (preprocessing.height, preprocessing.width)
    if preprocessing.aspect == "pad":
        image = tf.image.resize_with_pad(image, *size, antialias=True)
    elif preprocessing.aspect == "crop":
        image = _centre_crop_to_aspect(image, preprocessing.height / preprocessing.width)
        image = tf.image.resize(image, size, antialias=True)
    elif preprocessing.aspect == "retina":
        image = tf.image.resize(retina_window(image), size, antialias=True)
    else:
        image = tf.image.resize(image, size, antialias=True)
    image = tf.clip_by_value(image, 0.0, 1.0)
    image.set_shape(preprocessing.input_shape)
    return image


def _decode(raw: tf.Tensor, channels: int, height: int, width: int, frame=-1) -> tf.Tensor:
    """Decode a JPEG already shrunk by 2, 4 or 8 in libjpeg's DCT where it stays at least
    ``height`` x ``width`` (a 1024x496 scan for a 128x128 input decodes at 1/2... 1/8 of the work);
    other formats decode at full size, a DICOM file through :mod:`octreport.data.dicom_decode`. The
    resize that follows does the rest with antialiasing."""

    def full() -> tf.Tensor:
        image = tf.io.decode_image(raw, channels=channels, expand_animations=False)
        image.set_shape([None, None, channels])
        return image

    def jpeg() -> tf.Tensor:
        shape = tf.image.extract_jpeg_shape(raw)
        factor = tf.minimum(shape[0] // height, shape[1] // width)

        def scaled(ratio: int):
            return lambda: tf.ensure_shape(tf.io.decode_jpeg(raw, channels=channels, ratio=ratio), [None, None, channels])

        return tf.case([(factor >= 8, scaled(8)), (factor >= 4, scaled(4)), (factor >= 2, scaled(2))], default=scaled(1))

    return decode_dicom_or(raw, channels, lambda: tf.cond(tf.io.is_jpeg(raw), jpeg, full), frame)


def normalize_intensity(image: tf.Tensor, preprocessing: Preprocessing) -> tf.Tensor:
    """Apply ``preprocessing.normalization`` to one ``(H, W, C)`` image in [0, 1]; the result stays
    in [0, 1]. ``percentile`` maps the image's 1st and 99th percentiles (all channels together)
    to 0 and 1; an image with no spread there is left as it is."""
    if preprocessing.normalization == "none":
        return image
    low, high = (order_statistic(tf.reshape(image, [-1]), q) for q in PERCENTILE_RANGE)
    spread = high - low
    scaled = tf.where(spread > 1e-6, (image - low) / tf.maximum(spread, 1e-6), image)
    return tf.clip_by_value(scaled, 0.0, 1.0)


def order_statistic(values: tf.Tensor, percentile: float) -> tf.Tensor:
    """``sort(values)[round((n - 1) * percentile / 100)]`` of a 1-D float tensor, found with
    ``top_k`` from the nearer end instead of a full sort (the same value; at 1 % of a 128x256
    image, 0.17 ms instead of 2.1 ms, the costliest step of a decode)."""
    n = tf.size(values)
    rank = tf.cast(tf.round(tf.cast(n - 1, tf.float32) * percentile / 100.0), tf.int32)  # 0-based, ascending
    from_top = n - rank  # the same value as the from_top-th largest
    return tf.cond(rank < from_top,
                   lambda: -tf.reduce_min(tf.math.top_k(-values, rank + 1, sorted=False).values),
                   lambda: tf.reduce_min(tf.math.top_k(values, from_top, sorted=False).values))


def retina_row(image: tf.Tensor) -> tf.Tensor:
    """The row of the brightest band of one ``(H, W, C)`` image: the row means (all columns and
    channels), averaged over ``max(1, H // 32)`` rows, at their maximum (the RPE of a B-scan)."""
    profile = tf.reduce_mean(image, axis=[1, 2])
    rows = tf.shape(profile)[0]
    span = tf.maximum(1, rows // 32)
    running = tf.cumsum(tf.concat([[0.0], profile], axis=0))
    means = (running[span:] - running[:-span]) / tf.cast(span, tf.float32)
    return tf.cast(tf.argmax(means), tf.int32) + span // 2


def retina_window(image: tf.Tensor) -> tf.Tensor:
    """The :data:`~octreport.data.preprocessing.RETINA_WINDOW` share of the height around the
    retina (its RPE at :data:`~octreport.data.preprocessing.RETINA_ABOVE` of the window, moved
    inside the image where it would leave it), at the full width."""
    rows = tf.shape(image)[0]
    window = tf.maximum(1, tf.cast(tf.round(RETINA_WINDOW * tf.cast(rows, tf.float32)), tf.int32))
    top = retina_row(image) - tf.cast(tf.round(RETINA_ABOVE * tf.cast(window, tf.float32)), tf.int32)
    top = tf.clip_by_value(top, 0, rows - window)
    return image[top:top + window]


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
    augment: Augmentation | None = None,
    seed: int = 0,
    with_index: bool = False,
    repeat: bool = False,
    cache_file: str | Path | None = None,
) -> tf.data.Dataset:
    """Batches of ``(images, labels)``, or ``(images, labels, indices)`` with ``with_index``;
    the images in the convention the model expects (``preprocessing.input_scale``).

    ``indices`` are positions in ``items``; a file that still fails to decode is dropped with a
    warning, and its index is missing from the stream (see :func:`missing_indices`).

    ``augment``: the training augmentation applied to every batch (None: none).

    ``cache_file``: decode each file once, on the first pass, and keep the fitted images as uint8
    in this file (the caller owns it and deletes it); later passes read the file instead of the
    JPEGs. Each pass must be read to the end (as ``Model.fit`` does). Augmentation is applied after
    the cache, so it still differs every epoch. Rounding to uint8 changes a pixel by at most 1/510.
    """
    if cache_file is not None:
        return _cached_image_dataset(
            items, preprocessing, batch_size, Path(cache_file),
            shuffle=shuffle, augment=augment, seed=seed, with_index=with_index, repeat=repeat,
        )
    paths = [str(item.path) for item in items]
    labels = np.array([item.label for item in items], dtype=np.int32)
    frames = frame_tensor([item.frame for item in items], len(items))
    dataset = tf.data.Dataset.from_tensor_slices((paths, labels, np.arange(len(items), dtype=np.int64)))
    if shuffle:
        dataset = dataset.shuffle(len(items), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.map(
        as_graph(lambda path, label, index: (decode_and_fit(path, preprocessing, tf.gather(frames, index)), label, index)),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    ).ignore_errors(log_warning=True)
    dataset = dataset.batch(batch_size)
    return _finish(dataset, augment, seed, with_index, preprocessing)


def _cached_image_dataset(
    items: Sequence[ImageItem],
    preprocessing: Preprocessing,
    batch_size: int,
    cache_file: Path,
    *,
    shuffle: bool,
    augment: Augmentation | None,
    seed: int,
    with_index: bool,
    repeat: bool,
) -> tf.data.Dataset:
    """Decode once into a uint8 disk cache (:func:`cached_decodes`), then shuffle (bounded buffer),
    batch and augment."""
    dataset = cached_decodes(items, preprocessing, cache_file, seed if shuffle else None)
    dataset = dataset.map(as_graph(lambda image, label, index, facts: (image, label, index)))
    if shuffle:
        dataset = dataset.shuffle(min(len(items), CACHE_SHUFFLE_BUFFER), seed=seed + 1, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size).map(
        as_graph(lambda images, label, index: (tf.cast(images, tf.float32) / 255.0, label, index)),
        num_parallel_calls=AUTOTUNE,
    )
    return _finish(dataset, augment, seed, with_index, preprocessing)


def cached_decodes(items: Sequence[ImageItem], preprocessing: Preprocessing, cache_file: Path,
                   shuffle_seed: int | None = None, reads: FileReads | None = None) -> tf.data.Dataset:
    """``(uint8 image, label, index, facts)`` of each of ``items`` (``index``: its position in
    ``items``; ``facts`` as :func:`read_once_dataset` carries them), every file read once (through
    ``reads``, made for the items in the cache's order, or made here) and decoded once, on the first
    pass, into ``cache_file``;
    later passes read the cache, never the files. ``shuffle_seed``: the order is shuffled once with
    it (so that a bounded shuffle buffer after the cache still mixes the classes). The cache keeps
    the facts too (their 64x64 thumbnail: 16 KB an image, half again a 128x256 image's 32 KB)."""
    order = cache_order(len(items), shuffle_seed)
    ordered = [items[i] for i in order]
    if reads is None:
        reads = FileReads([item.path for item in ordered])
    elif reads.paths != tuple(Path(item.path) for item in ordered):
        raise ValueError("reads must be made for the items in the cache's order (cache_order with the same seed)")
    labels = tf.constant(np.array([item.label for item in ordered], np.int32))
    positions = tf.constant(order)
    names = tf.constant([str(item.path) for item in ordered] or [""])
    frames = frame_tensor([item.frame for item in ordered], len(ordered))

    def decode(raw: tf.Tensor, read: tf.Tensor):
        frame = tf.gather(frames, read)
        shape, kind, small = facts_of_bytes(raw, frame)
        facts = dict(zip(FACTS, (shape, tf.cast(kind, tf.int32), small)))
        image = _to_uint8(fit_bytes(raw, tf.gather(names, read), preprocessing, frame))
        return image, tf.gather(labels, read), tf.gather(positions, read), facts

    dataset = reads.dataset().map(as_graph(decode), num_parallel_calls=AUTOTUNE, deterministic=True)
    return dataset.ignore_errors(log_warning=True).cache(str(cache_file))


def cache_order(count: int, shuffle_seed: int | None) -> np.ndarray:
    """The positions of the items in the order :func:`cached_decodes` stores them: as they are, or
    shuffled by ``tf.data``'s seeded shuffle (the order a shuffle of the items themselves gives)."""
    if shuffle_seed is None or count == 0:
        return np.arange(count, dtype=np.int64)
    shuffled = tf.data.Dataset.range(count).shuffle(count, seed=shuffle_seed, reshuffle_each_iteration=False)
    return shuffled.batch(count).get_single_element().numpy()


def fill_decode_cache(items: Sequence[ImageItem], preprocessing: Preprocessing, cache_file: Path,
                      shuffle_seed: int | None = None,
                      on_read: Callable[[Path, bytes], None] | None = None) -> tuple[ImageFacts, dict[Path, FileDigest]]:
    """Make the first pass of :func:`cached_decodes` now, reading each file once, and return what
    that read gives besides: the items' :class:`~octreport.data.image_facts.ImageFacts` (in the
    order of ``items``) and each file's size and SHA-256. ``on_read(path, bytes)``: as for
    :class:`~octreport.data.files.FileReads`."""
    order = cache_order(len(items), shuffle_seed)
    reads = FileReads([items[i].path for i in order], on_read)
    collector = FactsCollector(len(items))
    dataset = without_autotune(cached_decodes(items, preprocessing, cache_file, shuffle_seed, reads).batch(256))
    for _, _, index, facts in dataset.as_numpy_iterator():
        collector.add(index, *(facts[name] for name in FACTS))
    sizes = np.zeros(len(items), np.int64)
    sizes[order] = reads.sizes()
    return collector.facts(sizes), reads.digests()


def _to_uint8(image: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.round(image * 255.0), tf.uint8)


def _finish(
    dataset: tf.data.Dataset, augment: Augmentation | None, seed: int, with_index: bool, preprocessing: Preprocessing
) -> tf.data.Dataset:
    """Augment batches (training only; on images in [0, 1]), bring them to the model's input
    convention, drop the indices unless asked for, prefetch."""
    if augment is not None:
        augmenter = augmentation_layers(seed, augment)
        dataset = dataset.map(
            as_graph(lambda images, label, index: (augmenter(images, training=True), label, index)),
            num_parallel_calls=AUTOTUNE,
        )
    if preprocessing.input_scale != "unit":
        dataset = dataset.map(
            as_graph(lambda images, label, index: (to_model_input(images, preprocessing), label, index)),
            num_parallel_calls=AUTOTUNE,
        )
    if not with_index:
        dataset = dataset.map(as_graph(lambda images, label, index: (images, label)))
    return without_autotune(dataset.prefetch(AUTOTUNE))


def load_images(items: Sequence[ImageItem], preprocessing: Preprocessing) -> np.ndarray:
    """The few images shown in a report, as one ``(N, H, W, C)`` float32 array in [0, 1] (as
    they are drawn; :func:`model_input` gives what the model is fed): each file read whole and
    decoded by one function traced once per preprocessing, not by a ``tf.data`` pipeline built
    for each handful of images (a report asks for them a dozen times); several at once on a
    thread per core (TensorFlow runs the decode without holding the GIL)."""
    fit = _fitter(preprocessing)

    def load(item: ImageItem) -> np.ndarray:
        try:
            raw = read_image_bytes(item.path)
        except OSError as error:
            raise DataError(f"cannot read {item.path}; was the data folder changed during the run?") from error
        try:
            with tf.device("/CPU:0"):  # where the evaluation pass's tf.data decode runs: the same pixels
                return fit(raw, str(item.path), np.int64(-1 if item.frame is None else item.frame)).numpy()
        except tf.errors.OpError as error:
            raise DataError(f"cannot decode {item.path} ({error.message}); was it changed during the run?") from error

    with ThreadPoolExecutor(max_workers=max(1, min(len(items), os.cpu_count() or 1))) as pool:
        images = list(pool.map(load, items))
    return np.stack(images) if images else np.zeros((0, *preprocessing.input_shape), np.float32)


_FITTERS: dict[Preprocessing, Callable[..., tf.Tensor]] = {}


def _fitter(preprocessing: Preprocessing) -> Callable[..., tf.Tensor]:
    """:func:`fit_bytes` for ``preprocessing`` as a compiled function of (bytes, name, frame)."""
    if preprocessing not in _FITTERS:
        scalar = tf.TensorSpec([], tf.string)
        _FITTERS[preprocessing] = tf.function(
            lambda raw, name, frame: fit_bytes(raw, name, preprocessing, frame),
            input_signature=(scalar, scalar, tf.TensorSpec([], tf.int64)), autograph=False,
        )
    return _FITTERS[preprocessing]


FACTS = ("fact_shape", "fact_kind", "fact_small")
"""The keys of the image facts a :func:`read_once_dataset` carries with each image."""


def read_once_dataset(items: Sequence[ImageItem], preprocessing: Preprocessing, reads: FileReads,
                      batch_size: int = 32) -> tf.data.Dataset:
    """Batches of ``(images, labels, indices, facts)`` where each file of ``items`` is read once
    (``reads``, made for the items' paths, notes each file's size and SHA-256) and its bytes give
    both the model's input (as :func:`image_dataset` with ``with_index``) and its image facts
    (:func:`~octreport.data.image_facts.facts_of_bytes`, a dict keyed by :data:`FACTS`). A file
    that cannot be read or decoded is dropped with a warning (see :func:`missing_indices`)."""
    labels = tf.constant(np.array([item.label for item in items], dtype=np.int32))
    names = tf.constant([str(item.path) for item in items] or [""])
    frames = frame_tensor([item.frame for item in items], len(items))  # -1: the file as a whole

    def decode(raw: tf.Tensor, index: tf.Tensor):
        frame = tf.gather(frames, index)
        shape, kind, small = facts_of_bytes(raw, frame)
        facts = dict(zip(FACTS, (shape, tf.cast(kind, tf.int32), small)))  # int32: replicas gather no int8
        return fit_bytes(raw, tf.gather(names, index), preprocessing, frame), tf.gather(labels, index), index, facts

    dataset = reads.dataset().map(as_graph(decode), num_parallel_calls=AUTOTUNE, deterministic=True)
    dataset = dataset.ignore_errors(log_warning=True).batch(batch_size)
    if preprocessing.input_scale != "unit":
        dataset = dataset.map(as_graph(lambda images, label, index, facts: (to_model_input(images, preprocessing), label,
                                                                             index, facts)),
                              num_parallel_calls=AUTOTUNE)
    return without_autotune(dataset.prefetch(AUTOTUNE))


def model_input(images: np.ndarray, preprocessing: Preprocessing) -> np.ndarray:
    """Images from :func:`load_images` in the convention the model expects, float32."""
    return np.asarray(to_model_input(images, preprocessing), np.float32)


def missing_indices(expected: int, seen: Sequence[int]) -> list[int]:
    """Positions of ``items`` that never came out of the stream (failed to decode)."""
    return sorted(set(range(expected)) - set(int(i) for i in seen))
