"""Cheap facts about every image of a data set, from one downscaled decode: size, channel count,
file type, file size, mean intensity, intensity percentiles and a perceptual hash.

The data audit (:mod:`octreport.data.data_audit`) and the acquisition profile
(:mod:`octreport.data.acquisition_profile`) need these for *every* split, including the training
images of a loaded model, which no other pass of a run decodes. They therefore come from one cheap
pass of their own, made once per run (:func:`collect_split_facts`): a JPEG is decoded already
shrunk by 8 inside libjpeg's DCT (``ratio=8``: only the DC coefficients of each 8x8 block, about a
tenth of a full decode), its width, height and channel count are read from the header, and the
small grayscale image gives the mean intensity, the intensity percentiles and the hash. A PNG
decodes at full size (libpng has no shrinking decode); its channel count comes from its header's
colour type. The cost is measured in ``benchmarks/bench_data_audit.py``.

The intensity percentiles are those of the 64x64 area-averaged grayscale image, whatever the stored
size: each of its pixels covers the same share of the scan's field, so a scan exported at 512 or at
1024 px wide gives about the same percentiles, and a change in them means a change in brightness or
contrast, not in resolution. (Averaging narrows the extremes: a 1st percentile here is the darkest
1% of 1/4096ths of the scan, not of single pixels.)

The perceptual hash is a DCT hash (pHash): the grayscale image area-averaged to 32x32, its 2-D DCT,
the 8x8 lowest frequencies, each bit set where a coefficient is above their median (DC left out of
the median). 64 bits, one ``uint64`` per image, so a Hamming distance is one XOR and one popcount and
100,000 hashes are searched in about a second (:mod:`octreport.data.near_duplicates`).

Measured on the 1,000 real scans of ``../shared/oct-real`` and on constructed copies (numbers in
``benchmarks/README.md``): pHash puts a JPEG-70, 3-pixel-shifted copy 2 bits from its original and
distinct scans 28+ bits apart; a difference hash (dHash, 9x8 neighbours) put the same copy 7 bits
away, inside the range of distinct real scans (6+). Why not the ``imagehash`` library: it decodes
every image again through PIL at full size (the second read this design exists to avoid), it is a
new dependency that cannot be installed here (no downloads), and its pHash is these same few lines
(resize, DCT, median); here the hash comes out of a decode done once, in TensorFlow's parallel input
pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path

import numpy as np

from octreport.data.dicom_decode import decode_dicom_or, is_dicom
from octreport.data.files import FileDigest, FileReads, read_image_bytes, without_autotune
from octreport.data.layout import FRAME_MARK, ImageItem, item_name, relative_name

log = logging.getLogger(__name__)

HASH_SIZE = 8
"""pHash: the HASH_SIZE x HASH_SIZE lowest DCT frequencies, 64 bits in all."""
_DCT_SIZE = 32
_SMALL = 64  # side of the small image the hash and mean come from, after the DCT-scaled decode
INTENSITY_PERCENTILES = (1, 50, 99)
"""The percentiles of each image's grayscale values kept in :attr:`ImageFacts.intensity_percentiles`."""
# Channels by PNG colour type (byte 25 of the file): gray, RGB, palette (decoded as RGB), gray+alpha, RGBA.
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


@dataclass(frozen=True)
class ImageFacts:
    """Per-image facts, each array of shape ``(N,)`` in the order of the paths given.

    ``width``/``height``: pixels of the stored image (0 where it could not be decoded);
    ``file_type``: ``jpeg``, ``png`` or ``other`` by content; ``file_size``: bytes;
    ``mean_intensity``: mean grayscale value in [0, 1]; ``phash``: uint64 perceptual (DCT) hash;
    ``decoded``: False where the file failed to decode (its other facts are then meaningless);
    ``channels``: colour channels as stored (JPEG and PNG headers; 0 where unknown);
    ``intensity_percentiles``: ``(N, 3)`` float32, the :data:`INTENSITY_PERCENTILES` of the small
    grayscale image in [0, 1].
    """

    width: np.ndarray
    height: np.ndarray
    file_type: np.ndarray
    file_size: np.ndarray
    mean_intensity: np.ndarray
    phash: np.ndarray
    decoded: np.ndarray
    channels: np.ndarray | None = None
    intensity_percentiles: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.width.shape[0])

    def take(self, index: np.ndarray | Sequence[int]) -> "ImageFacts":
        """The facts of the images at ``index`` (an integer array), in that order."""
        index = np.asarray(index, dtype=np.int64)
        return ImageFacts(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[index]
                             for f in fields(self)})


@dataclass(frozen=True)
class SplitFacts:
    """The :class:`ImageFacts` of every image of a run, collected in one pass and looked up by split
    and path: ``keys`` are ``(split, path relative to the data root)`` pairs aligned with ``facts``;
    ``digests``: the size and SHA-256 of each file, from the same read (for the data fingerprint)."""

    keys: tuple[tuple[str, str], ...]
    facts: ImageFacts
    digests: Mapping[Path, FileDigest] = field(default_factory=dict)

    def merged(self, other: "SplitFacts") -> "SplitFacts":
        """These facts and ``other``'s (of other images) together."""
        joined = ImageFacts(**{f.name: _joined(getattr(self.facts, f.name), getattr(other.facts, f.name), len(self), len(other))
                               for f in fields(ImageFacts)})
        return SplitFacts(self.keys + other.keys, joined, {**self.digests, **other.digests})

    def __len__(self) -> int:
        return len(self.keys)

    def lookup(self, keys: Sequence[tuple[str, str]]) -> ImageFacts:
        """The facts of the images ``keys`` (``(split, path relative to the data root)``), in their
        order; KeyError for an image not collected."""
        return self.facts.take([self._positions[key] for key in keys])

    def split(self, split: str) -> ImageFacts:
        """The facts of every collected image of ``split``."""
        return self.facts.take([n for n, (s, _) in enumerate(self.keys) if s == split])

    def lookup_files(self, keys: Sequence[tuple[str, str]]) -> ImageFacts:
        """As :meth:`lookup`, for files (``(split, path)``, as the fingerprint lists them): a DICOM
        volume whose frames were collected one by one (``--dicom-frames all``, keys ``PATH#FRAME``)
        gives the facts of its central collected frame, the one a whole-file read shows."""
        return self.facts.take([self._positions[key] if key in self._positions else self._central_frame(key)
                                for key in keys])

    def _central_frame(self, key: tuple[str, str]) -> int:
        frames = self._frames.get(key)
        if not frames:
            raise KeyError(key)
        return frames[len(frames) // 2]

    @cached_property
    def _positions(self) -> Mapping[tuple[str, str], int]:
        return {key: n for n, key in enumerate(self.keys)}

    @cached_property
    def _frames(self) -> Mapping[tuple[str, str], list[int]]:
        """``(split, file)`` -> positions of its frames' keys, in frame order."""
        found: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for n, (split, name) in enumerate(self.keys):
            file, mark, frame = name.rpartition(FRAME_MARK)
            if mark and frame.isdigit():
                found.setdefault((split, file), []).append((int(frame), n))
        return {key: [n for _, n in sorted(pairs)] for key, pairs in found.items()}


def _joined(a: np.ndarray | None, b: np.ndarray | None, n_a: int, n_b: int) -> np.ndarray | None:
    if a is None and b is None:
        return None
    if a is None or b is None:  # facts of an older kind lack an optional field: zeros there
        present = a if a is not None else b
        a = np.zeros((n_a, *present.shape[1:]), present.dtype) if a is None else a
        b = np.zeros((n_b, *present.shape[1:]), present.dtype) if b is None else b
    return np.concatenate([a, b])


def split_keys(root: Path, splits: Mapping[str, Sequence[Path | ImageItem]]) -> tuple[tuple[str, str], ...]:
    """``(split, name)`` of every image of ``splits``, in order: a path relative to root, or an
    item's :func:`~octreport.data.layout.item_name` (``PATH#FRAME`` for a DICOM volume's frame)."""
    return tuple((split, item_name(image, root) if isinstance(image, ImageItem) else relative_name(Path(image), root))
                 for split, images in splits.items() for image in images)


def collect_split_facts(root: Path, splits: Mapping[str, Sequence[Path | ImageItem]],
                        parallel: int | None = None,
                        on_read: Callable[[Path, bytes], None] | None = None) -> SplitFacts:
    """The facts of every image of ``splits`` (``{split: paths or items}``, images under ``root``),
    from one read and one cheap decode of each, with each file's size and SHA-256 (the frames of
    one DICOM volume, adjacent, share one read: :class:`~octreport.data.files.FileReads`, whose
    ``on_read`` is called with each file's bytes)."""
    images = [image for images in splits.values() for image in images]
    reads = FileReads([image.path if isinstance(image, ImageItem) else Path(image) for image in images], on_read)
    frames = [image.frame if isinstance(image, ImageItem) else None for image in images]
    return SplitFacts(split_keys(root, splits), _collect(reads, parallel, frames), reads.digests())


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix: ``M @ x`` is the DCT of the column vector ``x``."""
    k, i = np.arange(n)[:, None], np.arange(n)[None, :]
    matrix = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    matrix[0] /= np.sqrt(2.0)
    return matrix


_DCT = _dct_matrix(_DCT_SIZE)
_BIT_WEIGHTS = np.left_shift(np.uint64(1), np.arange(HASH_SIZE * HASH_SIZE, dtype=np.uint64))


def phash_bits(gray: np.ndarray) -> np.ndarray:
    """The pHash of a stack of grayscale images ``(N, H, W)`` (any size: area-averaged to 32x32
    first), as ``(N,)`` uint64. Bit ``r * HASH_SIZE + c`` is 1 when DCT coefficient ``(r, c)`` is
    above the median of the 63 low-frequency AC coefficients."""
    small = _area_resize(np.asarray(gray, dtype=np.float64), _DCT_SIZE, _DCT_SIZE)
    low = (_DCT[:HASH_SIZE] @ small @ _DCT[:HASH_SIZE].T).reshape(len(small), -1)  # two matrix products, not a 5-index einsum
    median = np.median(low[:, 1:], axis=1, keepdims=True)
    return ((low > median).astype(np.uint64) * _BIT_WEIGHTS).sum(axis=1, dtype=np.uint64)


def hamming(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Bitwise Hamming distance between uint64 hashes (broadcast)."""
    return np.bitwise_count(np.bitwise_xor(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64)))


def collect_image_facts(paths: Sequence[Path | str], parallel: int | None = None) -> ImageFacts:
    """Read and decode each file once, shrunk, and return its :class:`ImageFacts`. A file that fails
    to decode is marked ``decoded=False`` (the damaged-file check has normally dropped it already)."""
    return _collect(FileReads(paths), parallel)


def _collect(reads: FileReads, parallel: int | None, frames: Sequence[int | None] = ()) -> ImageFacts:
    import tensorflow as tf  # lazily: the data audit's pure parts need no TensorFlow

    collector = FactsCollector(len(reads))
    if len(reads):
        frame_of = frame_tensor(frames, len(reads))
        read = tf.autograph.experimental.do_not_convert(lambda raw, index: (facts_of_bytes(raw, tf.gather(frame_of, index)),
                                                                             index))
        dataset = reads.dataset().map(read, num_parallel_calls=parallel or tf.data.AUTOTUNE, deterministic=False)
        dataset = without_autotune(dataset.ignore_errors(log_warning=True).batch(256).prefetch(2))
        for (shape, file_kind, small), index in dataset.as_numpy_iterator():
            collector.add(index, shape, file_kind, small)
    return collector.facts(reads.sizes())


class FactsCollector:
    """Gathers the per-batch output of :func:`facts_of_bytes` into :class:`ImageFacts` for ``n``
    images (those never added are marked ``decoded=False``)."""

    def __init__(self, n: int) -> None:
        self.width = np.zeros(n, np.int32)
        self.height = np.zeros(n, np.int32)
        self.kind = np.zeros(n, np.int8)
        self.mean = np.zeros(n, np.float32)
        self.percentiles = np.zeros((n, len(INTENSITY_PERCENTILES)), np.float32)
        self.channels = np.zeros(n, np.int8)
        self.hashes = np.zeros(n, np.uint64)
        self.decoded = np.zeros(n, bool)

    def add(self, index: np.ndarray, shape: np.ndarray, kind: np.ndarray, small: np.ndarray) -> None:
        """One batch: positions ``index`` (B,), ``shape`` (B, 3), ``kind`` (B,), ``small`` (B, 64, 64)."""
        if len(index) == 0:
            return
        self.height[index], self.width[index], self.channels[index] = shape[:, 0], shape[:, 1], shape[:, 2]
        self.kind[index] = kind
        self.mean[index] = small.mean(axis=(1, 2))
        self.percentiles[index] = np.percentile(small.reshape(len(index), -1), INTENSITY_PERCENTILES, axis=1).T
        self.hashes[index] = phash_bits(small)
        self.decoded[index] = True

    def facts(self, sizes: np.ndarray) -> ImageFacts:
        """The facts; ``sizes``: bytes of each file."""
        file_type = np.array(["other", "jpeg", "png", "dicom"], dtype=object)[self.kind]
        if not self.decoded.all():
            log.warning("data audit: %d image(s) could not be decoded for their facts", int((~self.decoded).sum()))
        return ImageFacts(self.width, self.height, file_type, np.asarray(sizes, np.int64), self.mean, self.hashes,
                          self.decoded, self.channels, self.percentiles)


def frame_tensor(frames: Sequence[int | None], n: int):
    """An int64 tensor of ``n`` DICOM frame indices (-1: the file as a whole, its central frame);
    ``frames`` empty: all -1."""
    import tensorflow as tf

    values = [-1 if f is None else int(f) for f in frames] if frames else [-1] * n
    return tf.constant(np.array(values or [-1], np.int64))


def facts_of_bytes(raw, frame=-1):
    """From a file's bytes (a scalar string tensor): (height, width, channels) of the stored image,
    its kind (1 JPEG, 2 PNG, 3 DICOM, 0 other) and a ``(_SMALL, _SMALL)`` grayscale float32 image in
    [0, 1]; ``frame``: the frame of a DICOM volume (negative: its central frame)."""
    import tensorflow as tf


    def jpeg():
        shape = tf.image.extract_jpeg_shape(raw)
        image = tf.io.decode_jpeg(raw, channels=1, ratio=8)
        return shape, tf.constant(1, tf.int8), image

    def other():
        image = tf.io.decode_image(raw, channels=1, expand_animations=False)
        image.set_shape([None, None, 1])
        png = tf.strings.substr(raw, 0, 4) == b"\x89PNG"
        kind = tf.where(png, tf.constant(2, tf.int8), tf.constant(0, tf.int8))
        channels = tf.cond(png, lambda: _png_channels(tf, raw), lambda: tf.constant(0, tf.int32))
        return tf.concat([tf.shape(image)[:2], [channels]], axis=0), kind, image

    def dicom():
        image = decode_dicom_or(raw, 1, lambda: tf.zeros([1, 1, 1], tf.uint8), frame)
        return tf.concat([tf.shape(image)[:2], [1]], axis=0), tf.constant(3, tf.int8), image

    shape, kind, image = tf.cond(is_dicom(raw), dicom, lambda: tf.cond(tf.io.is_jpeg(raw), jpeg, other))
    small = tf.image.resize(tf.image.convert_image_dtype(image, tf.float32), (_SMALL, _SMALL), method="area")
    return tf.cast(shape, tf.int32), kind, small[:, :, 0]


def _png_channels(tf, raw):
    """Channels of a PNG by the colour type in its header (byte 25); 0 for a type PNG does not define."""
    table = np.zeros(256, np.int32)
    for code, count in _PNG_CHANNELS.items():
        table[code] = count
    colour_type = tf.io.decode_raw(tf.strings.substr(raw, 25, 1), tf.uint8)[0]
    return tf.gather(tf.constant(table), tf.cast(colour_type, tf.int32))


def _area_resize(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Area-average ``(N, H, W)`` images to ``(N, rows, cols)`` (exact box filter, any ratio)."""
    n, h, w = images.shape
    row_weights = _box_weights(h, rows)
    col_weights = _box_weights(w, cols)
    return row_weights @ images.astype(np.float64) @ col_weights.T


def _box_weights(size: int, out: int) -> np.ndarray:
    """``(out, size)`` matrix averaging ``size`` samples into ``out`` equal, overlapping-at-edges boxes."""
    edges = np.linspace(0.0, size, out + 1)
    positions = np.arange(size)
    overlap = np.clip(np.minimum(positions[None, :] + 1, edges[1:, None]) - np.maximum(positions[None, :], edges[:-1, None]), 0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def load_thumbnails(paths: Sequence[Path | str], height: int = 124) -> list[np.ndarray]:
    """The few images a report shows side by side, as grayscale uint8 ``(height, W)`` arrays
    (aspect kept), each decoded shrunk in libjpeg's DCT where it can be."""
    import tensorflow as tf

    thumbnails = []
    for path in paths:
        raw = tf.constant(read_image_bytes(path))
        if bool(is_dicom(raw)):
            image = decode_dicom_or(raw, 1, lambda: tf.zeros([1, 1, 1], tf.uint8))
        elif bool(tf.io.is_jpeg(raw)):
            rows = int(tf.image.extract_jpeg_shape(raw)[0])
            ratio = max((r for r in (8, 4, 2, 1) if rows // r >= height), default=1)
            image = tf.io.decode_jpeg(raw, channels=1, ratio=ratio)
        else:
            image = tf.io.decode_image(raw, channels=1, expand_animations=False)
        rows, cols = int(image.shape[0]), int(image.shape[1])
        size = (height, max(1, round(cols * height / rows)))
        resized = tf.image.resize(tf.cast(image, tf.float32), size, antialias=True)
        thumbnails.append(np.clip(np.round(resized.numpy()[:, :, 0]), 0, 255).astype(np.uint8))
    return thumbnails
