"""SHA-256 of a file (streamed) and of a model's weights (independent of how the file was zipped).

A ``.keras`` file is a zip archive: saving the same weights twice gives two files whose bytes, and
so their hashes, differ by the zip timestamps. :func:`sha256_weights` hashes what the model
computes with instead: every weight array in ``model.weights`` order, each as its dtype, shape and
raw little-endian bytes. Layer and variable names are left out on purpose (Keras numbers them per
session, ``conv2d`` vs ``conv2d_1``), so two models with the same architecture and the same
numbers hash the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

CHUNK_BYTES = 1 << 20  # 1 MiB


def sha256_file(path: Path | str, chunk: int = CHUNK_BYTES) -> str:
    """Hex SHA-256 of the file at ``path``, read ``chunk`` bytes at a time (memory stays flat)."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1 byte, got {chunk}")
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_arrays(arrays: Iterable[np.ndarray]) -> str:
    """Hex SHA-256 of a sequence of arrays: for each, a header line then its raw bytes.

    The header ``"<index>:<dtype name>:<shape>:<byte count>\\n"`` frames each array, so moving a
    value from one array to the next, reshaping, or changing a dtype all change the hash. Bytes
    are taken in C order and little-endian, whatever the machine.
    """
    digest = hashlib.sha256()
    for index, array in enumerate(arrays):
        values = np.asarray(array)
        if values.dtype.byteorder == ">":
            values = values.astype(values.dtype.newbyteorder("<"))
        values = np.ascontiguousarray(values)
        shape = "x".join(str(n) for n in values.shape) or "scalar"
        digest.update(f"{index}:{values.dtype.name}:{shape}:{values.nbytes}\n".encode("ascii"))
        digest.update(memoryview(values).cast("B") if values.nbytes else b"")
    return digest.hexdigest()


def weight_arrays(model: keras.Model) -> list[np.ndarray]:
    """The model's weights as NumPy arrays, in ``model.weights`` order (trainable or not)."""
    import keras

    return [np.asarray(keras.ops.convert_to_numpy(weight)) for weight in model.weights]


def sha256_weights(model: keras.Model) -> str:
    """Hex SHA-256 of the model's weight arrays (see :func:`sha256_arrays`); the model is not changed."""
    return sha256_arrays(weight_arrays(model))
