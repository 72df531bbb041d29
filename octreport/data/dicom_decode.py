"""The one place where a file's bytes become pixels for DICOM: a TensorFlow branch that hands a
DICOM file's bytes to :func:`octreport.data.dicom.frame_pixels` and any other file to the
decoder the caller gives. The stream (:mod:`octreport.data.pipeline`), the image facts and the
thumbnails (:mod:`octreport.data.image_facts`) all decode through it. TensorFlow is imported
lazily, as in image_facts.
"""

from __future__ import annotations

from collections.abc import Callable

from octreport.data.dicom import frame_pixels


def is_dicom(raw):
    """A scalar bool tensor: ``raw`` (a string tensor) holds a DICOM Part 10 file."""
    import tensorflow as tf

    long_enough = tf.strings.length(raw) >= 132
    return tf.cond(long_enough, lambda: tf.equal(tf.strings.substr(raw, 128, 4), b"DICM"), lambda: tf.constant(False))


def decode_dicom_or(raw, channels: int, other: Callable, frame=-1):
    """``(H, W, channels)`` uint8 pixels of ``raw``: a DICOM file's B-scan (frame ``frame``, a
    scalar int tensor or int; negative: the central frame), or ``other()`` for any other file. A
    DICOM file that cannot give one raises in the stream, which drops it and names it like any
    undecodable file (the damaged-file check has named it first)."""
    import tensorflow as tf

    def dicom():
        image = tf.numpy_function(lambda data, index: frame_pixels(_as_bytes(data), channels, int(index)),
                                  [raw, tf.cast(frame, tf.int64)], tf.uint8, stateful=False)
        image.set_shape([None, None, channels])
        return image

    return tf.cond(is_dicom(raw), dicom, other)


def _as_bytes(data) -> bytes:
    """numpy_function hands a string tensor over as ``bytes`` in a graph, as a 0-d array eagerly."""
    return data.item() if hasattr(data, "item") else bytes(data)
