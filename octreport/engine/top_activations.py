"""The images and positions where each filter responds most, kept while the evaluation pass runs.

Zeiler and Fergus (2014) show, for a filter, the input patches behind its strongest activations
over a data set. octreport keeps them for free during the evaluation pass: inside the compiled
step (:func:`octreport.engine.layer_health._health_step`) every layer's output is reduced per
image and channel to its spatial maximum and where it lies, and the ``k`` images with the largest
maxima per channel leave the graph as ``(C, k)`` arrays; :class:`TopActivationsAccumulator` merges
them batch by batch into a running top-k, so memory is ``O(channels x k)`` whatever the data set.

One patch per image: each of a channel's top ``k`` comes from a different image (its strongest
position in that image). Without this, the top ``k`` of a filter are mostly neighbouring
positions of one image, which shows one patch ``k`` times over. Rows that only pad a batch under
``tf.distribute`` (``valid`` False) are set to ``-inf`` before the top-k and never enter it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from octreport.engine.layers import ConvLayerInfo
from octreport.errors import ConfigError

SLOT_STRIDE = 1 << 20  # slot = replica * SLOT_STRIDE + row within the replica's batch
DEFAULT_TOP_K = 6


@dataclass(frozen=True, eq=False)
class TopActivations:
    """The strongest responses of every channel of one layer over the evaluated images.

    Attributes:
        layer: the layer.
        values: float32 (C, k), the activation values, largest first; ``-inf`` where fewer than
            ``k`` images were seen.
        images: int64 (C, k), the data set index of each value's image (-1 where none).
        positions: int64 (C, k, rank), the spatial output position of each value, in the
            layer's output (height, width for 2D layers).
    """

    layer: ConvLayerInfo
    values: np.ndarray
    images: np.ndarray
    positions: np.ndarray

    @property
    def k(self) -> int:
        return int(self.values.shape[1])


def step_top_k(output: Any, valid: Any, info: ConvLayerInfo, k: int) -> tuple[Any, Any, Any]:
    """Inside the compiled step: per channel, the ``k`` valid images of the batch with the
    largest spatial maximum. Returns ``(per_image_max (B, C), values (C, k), rows (C, k) int64,
    positions (C, k, rank) int64)``; rows are slots (see :data:`SLOT_STRIDE`) and
    -1 where the batch had fewer than ``k`` valid rows."""
    import tensorflow as tf

    rank = info.spatial_rank
    if not info.channels_last:
        output = tf.transpose(output, [0, *range(2, rank + 2), 1])
    channels = info.filters
    spatial = tf.shape(output, out_type=tf.int64)[1:rank + 1]  # known at run time, also for variable sizes
    output = tf.cast(output, tf.float32)
    batch = tf.shape(output)[0]
    if rank == 2:
        # Row maxima (one reduction over the map, about what the layer audit's maximum cost before),
        # then the position only for the top k: the first row holding the image's maximum, and the
        # first column of that row holding it; the same place as an argmax over the flattened map,
        # at a fraction of its cost (an argmax over the spatial axis costs ~4x a max on the CPU).
        row_max = tf.reduce_max(output, axis=2)  # (B, H, C)
        per_image = tf.reduce_max(row_max, axis=1)  # (B, C)
        first_row = tf.argmax(row_max, axis=1, output_type=tf.int32)  # (B, C)
    else:
        flat = tf.reshape(output, [batch, -1, channels])  # (B, S, C)
        per_image = tf.reduce_max(flat, axis=1)
        where = tf.argmax(flat, axis=1, output_type=tf.int32)
    masked = tf.where(valid[:, None], per_image, tf.constant(-np.inf, tf.float32))
    # k columns of -inf so that top_k has k columns to choose from in any batch
    values = tf.concat([tf.transpose(masked), tf.fill([channels, k], tf.constant(-np.inf, tf.float32))], axis=1)
    top_values, top_rows = tf.math.top_k(values, k=k, sorted=True)  # (C, k)
    real = top_rows < batch
    safe_rows = tf.where(real, top_rows, 0)
    channel = tf.broadcast_to(tf.range(channels)[:, None], [channels, k])
    if rank == 2:
        y = tf.gather_nd(first_row, tf.stack([safe_rows, channel], -1))  # (C, k)
        width = tf.shape(output)[2]
        cols = tf.broadcast_to(tf.range(width)[None, None, :], [channels, k, width])
        def spread(t):
            return tf.broadcast_to(t[:, :, None], [channels, k, width])
        row = tf.gather_nd(output, tf.stack([spread(safe_rows), spread(y), cols, spread(channel)], -1))  # (C, k, W)
        x = tf.argmax(row, axis=2, output_type=tf.int32)
        positions = tf.cast(tf.stack([y, x], -1), tf.int64)
    else:
        flat_positions = tf.gather_nd(where, tf.stack([safe_rows, channel], -1))
        positions = tf.transpose(tf.reshape(tf.unravel_index(tf.reshape(tf.cast(flat_positions, tf.int64), [-1]), spatial),
                                            [rank, channels, k]), [1, 2, 0])
    replica = tf.distribute.get_replica_context()
    replica_id = tf.cast(replica.replica_id_in_sync_group if replica is not None else 0, tf.int64)
    slots = tf.where(real & tf.math.is_finite(top_values), replica_id * SLOT_STRIDE + tf.cast(safe_rows, tf.int64), -1)
    return per_image, top_values, slots, positions


def step_slots(batch_rows: Any) -> Any:
    """Inside the compiled step: the slot of each row of the replica's batch (a row key)."""
    import tensorflow as tf

    replica = tf.distribute.get_replica_context()
    replica_id = tf.cast(replica.replica_id_in_sync_group if replica is not None else 0, tf.int64)
    return replica_id * SLOT_STRIDE + tf.range(tf.cast(batch_rows, tf.int64))


class TopActivationsAccumulator:
    """Running top-``k`` per channel of each layer, merged from the compiled step's batches."""

    def __init__(self, layers: Sequence[ConvLayerInfo], k: int = DEFAULT_TOP_K) -> None:
        if k < 1:
            raise ConfigError(f"The number of top activations to keep must be at least 1, got {k}.")
        self.layers = tuple(layers)
        self.k = int(k)
        self._values = [np.full((info.filters, k), -np.inf, np.float32) for info in self.layers]
        self._images = [np.full((info.filters, k), -1, np.int64) for info in self.layers]
        self._positions = [np.full((info.filters, k, info.spatial_rank), -1, np.int64) for info in self.layers]

    def add(self, layer: int, values: np.ndarray, slots: np.ndarray, positions: np.ndarray,
            batch_slots: np.ndarray, batch_indices: np.ndarray) -> None:
        """Merge one batch of one layer: ``values``/``slots``/``positions`` as the step returns
        them, ``(C, k)`` (positions ``(C, k, rank)``) or with a leading replicas axis; ``batch_slots`` and ``batch_indices`` (the
        batch's kept rows) map slots to data set indices."""
        values, slots, positions = (np.asarray(a) for a in (values, slots, positions))
        if values.ndim == 3:  # one (C, k) block per replica, side by side
            values, slots, positions = (np.concatenate(list(a), axis=1) for a in (values, slots, positions))
        images = _slots_to_indices(slots, np.asarray(batch_slots), np.asarray(batch_indices))
        values = np.where(images >= 0, values, -np.inf).astype(np.float32)
        all_values = np.concatenate([self._values[layer], values], axis=1)
        order = np.argsort(-all_values, axis=1, kind="stable")[:, : self.k]
        self._values[layer] = np.take_along_axis(all_values, order, axis=1)
        self._images[layer] = np.take_along_axis(np.concatenate([self._images[layer], images], axis=1), order, axis=1)
        self._positions[layer] = np.take_along_axis(
            np.concatenate([self._positions[layer], positions.astype(np.int64)], axis=1), order[..., None], axis=1)

    def result(self) -> tuple[TopActivations, ...]:
        out = []
        for info, values, images, positions in zip(self.layers, self._values, self._images, self._positions):
            images = np.where(np.isfinite(values), images, -1)
            positions = positions.copy()
            positions[images < 0] = -1
            out.append(TopActivations(info, values.copy(), images, positions))
        return tuple(out)


def _slots_to_indices(slots: np.ndarray, batch_slots: np.ndarray, batch_indices: np.ndarray) -> np.ndarray:
    """Data set index of each slot; -1 for slots of no kept row (padding) or -1."""
    order = np.argsort(batch_slots)
    sorted_slots = batch_slots[order]
    where = np.clip(np.searchsorted(sorted_slots, slots), 0, max(len(sorted_slots) - 1, 0))
    if len(sorted_slots) == 0:
        return np.full(slots.shape, -1, np.int64)
    found = (sorted_slots[where] == slots) & (slots >= 0)
    return np.where(found, batch_indices[order][where], -1).astype(np.int64)

