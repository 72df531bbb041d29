"""The reads of image files: every whole read of an image by octreport's own code goes through
:func:`read_image_bytes`, and the bytes of that one read give everything a run needs of the file.

A run reads each image once (``benchmarks/bench_one_read.py`` measures it; ``tests/test_one_read.py``
counts it): :class:`FileReads` streams the files of a split into ``tf.data`` one read each, and
keeps each file's size and SHA-256 (the data fingerprint) on the way; the same bytes are then
decoded for the model (:func:`octreport.data.pipeline.pixels_from_bytes`) and for the image facts
(:func:`octreport.data.image_facts.facts_of_bytes`), in the one streaming pass.

Readers that stay apart, on purpose, and read less than a whole image or read it elsewhere:

* the check that a file is whole, before the run folder exists, so that a damaged file is skipped
  before the splits are cut: :func:`peek_image_file` (a JPEG's or PNG's first 16 and last 4,096
  bytes) and, for a DICOM file, :func:`octreport.data.dicom.dicom_problem` (its header up to the
  pixel data, parsed by pydicom from the open file; the pixel data is not read);
* DICOM headers where a run needs them before its streaming pass: the patient keys that keep a
  patient on one side of a split octreport cuts and the frame count of ``--dicom-frames all``
  (:mod:`octreport.data.dicom_headers`, :mod:`octreport.data.dicom_frames`: a header-only parse
  through pydicom each). The patients and devices a run audits come from the bytes of the one read
  (``on_read`` below);
* the uncached stream of :func:`octreport.data.pipeline.image_dataset` (TensorFlow's file reader,
  ``tf.io.read_file``), for predictions that audit nothing: ``octreport train``'s test split,
  ``verify``'s rerun of a past run's probabilities. Training reads its images through
  :class:`FileReads` into its decode cache (:func:`octreport.data.pipeline.fill_decode_cache`),
  and their facts and digests come from that read;
* the model and the run's own files, hashed by :func:`octreport.hashing.sha256_file`.

How many opens each file gets, by kind and run, is in ``docs/performance.md``. Every ``tf.data``
stream of a run, these reads' and TensorFlow's own, runs without ``tf.data``'s autotuning model
(:func:`without_autotune`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

TAIL_BYTES = 4096


def read_image_bytes(path: Path | str) -> bytes:
    """The whole file at ``path``: the one read of an image file (raises OSError)."""
    with open(path, "rb") as handle:
        return handle.read()


def peek_image_file(path: Path | str) -> tuple[int, bytes, bytes]:
    """The file's size, its first 16 bytes and its last :data:`TAIL_BYTES` (raises OSError)."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(0)
        head = handle.read(16)
        handle.seek(max(0, size - TAIL_BYTES))
        return size, head, handle.read()


@dataclass(frozen=True)
class FileDigest:
    """Bytes and hex SHA-256 of one file, as it was read."""

    size: int
    sha256: str


class FileReads:
    """Reads ``paths`` one at a time, each once, noting each file's :class:`FileDigest` as it goes.

    :meth:`dataset` is a ``tf.data`` stream of ``(bytes, index)``; a file that cannot be read is
    left out of it with a warning (and has no digest). After the stream has been read to its end,
    :meth:`digests` holds every file read. ``on_read(path, bytes)`` is called once per file read,
    for what else the same bytes give (a DICOM file's header facts).
    """

    def __init__(self, paths: Sequence[Path | str], on_read: Callable[[Path, bytes], None] | None = None) -> None:
        self.paths = tuple(Path(p) for p in paths)
        self._on_read = on_read
        self._digests: dict[Path, FileDigest] = {}
        self._last: tuple[Path, bytes] | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, index: int) -> bytes | None:
        """The bytes of ``paths[index]``; the same path twice in a row (the frames of one DICOM
        volume, ``--dicom-frames all``) is read once and its bytes handed out again."""
        path = self.paths[index]
        if self._last is not None and self._last[0] == path:
            return self._last[1]
        try:
            raw = read_image_bytes(path)
        except OSError as error:
            log.warning("skipped %s: cannot be read (%s)", path, error.strerror or error)
            return None
        self._digests[path] = FileDigest(len(raw), hashlib.sha256(raw).hexdigest())
        self._last = (path, raw)
        if self._on_read is not None:
            try:
                self._on_read(path, raw)
            except Exception as error:  # raised into tf.data it would end the stream: every later file lost
                log.warning("%s: what else its bytes give (its header facts) could not be taken (%s); the image is "
                            "still used", path, error)
        return raw

    def sizes(self) -> np.ndarray:
        """Bytes of each file read, in the order of ``paths`` (0 for one not read)."""
        return np.array([self._digests[p].size if p in self._digests else 0 for p in self.paths], np.int64)

    def digests(self) -> dict[Path, FileDigest]:
        return dict(self._digests)

    def dataset(self):
        """``tf.data.Dataset`` of ``(raw bytes, index)`` scalars, in the order of ``paths``."""
        import tensorflow as tf

        def generate():
            for index in range(len(self.paths)):
                raw = self.read(index)
                if raw is not None:
                    yield raw, index

        return tf.data.Dataset.from_generator(generate, output_signature=(
            tf.TensorSpec((), tf.string), tf.TensorSpec((), tf.int64)))


def without_autotune(dataset):
    """``dataset`` with ``tf.data``'s autotuning model off (the model that starts every ``AUTOTUNE``
    map at 16 calls in flight and tunes them while the stream runs). With it on, about half of the
    evaluation passes over 1,000 scans took 2 s longer (5.3 s against 3.2 s on 2 cores), most of it
    in the stream's teardown after the last batch; with it off, 3.1-3.6 s every time, and training
    (a stream per epoch) half as long, with the same weights (``docs/performance.md``)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)
