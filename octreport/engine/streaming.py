"""Run one compiled step per batch of a stream, on one device or over the replicas of a
``tf.distribute`` strategy, and hand back NumPy results batch by batch.

Evaluation and the layer audit are a forward pass plus a few reductions per batch. Called eagerly,
every Keras layer call goes through Python; traced once into a ``tf.function`` the batch runs as
one graph (0.66-0.85x the time of eager calls across benchmark runs, identical probabilities:
``benchmarks/README.md``). Reductions run inside the same graph, so only per-batch
vectors leave it.

Under a strategy (octreport enters ``strategy.scope()`` for ``--distribute``), each batch is split
over the replicas (``experimental_distribute_dataset``), the step runs on every replica
(``strategy.run``), and the replicas' rows are gathered back (``strategy.gather``), in the order
of the replicas, so each result still carries its own rows' labels and indices. Outputs of a step
therefore all have a leading axis to concatenate over: per-image rows ``(B, ...)``, and per-batch
reductions with a leading axis of 1 (one row per replica once gathered).

A batch that does not divide evenly over the replicas (the last one, or a data set smaller than
the replicas) would leave some replica fewer rows or none; a convolution on an empty batch fails
under oneDNN ("input depth must be evenly divisible by filter depth"). So under a strategy every
batch is padded to a multiple of the replicas with copies of its own rows, marked invalid (index
-1): the step gets a ``valid`` mask for its reductions, and the runner drops the padded rows of
the per-image outputs.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import tensorflow as tf

# step(images, valid): ``valid`` is a bool (B,) mask, False for the rows that only pad a batch.
Step = Callable[[tf.Tensor, tf.Tensor], dict[str, tf.Tensor]]

PADDING_INDEX = -1
PASSED = "passed/"
"""Prefix of the per-image values a batch carries past the step (``(images, labels, indices,
{name: (B, ...)})`` batches): they come out beside the step's outputs as ``passed/NAME``."""


def active_strategy() -> tf.distribute.Strategy | None:
    """The strategy whose scope the caller is in, or None outside any (the default strategy)."""
    return tf.distribute.get_strategy() if tf.distribute.has_strategy() else None


class BatchRunner:
    """``runner(dataset)`` runs ``step(images, valid)`` on each ``(images, labels, indices)`` batch
    and yields ``step``'s outputs as NumPy arrays, with ``"labels"`` and ``"indices"`` added.
    ``row_keys`` names the step's per-image outputs (the others are per-batch reductions): their
    padded rows are dropped before they are yielded. A batch may carry a fourth element, a dict of
    per-image values the step does not read (the image facts of the same decode); they are
    yielded as ``passed/NAME`` (:data:`PASSED`).

    The step is traced once per input signature (``reduce_retracing``: the last, shorter batch
    does not add a second trace for every length). A runner is bound to the strategy active when
    it was made; build runners inside the scope they will run in.
    """

    def __init__(self, step: Step, row_keys: tuple[str, ...] = ("probabilities",)) -> None:
        self.strategy = active_strategy()
        self.row_keys = (*row_keys, "labels", "indices")

        def step_with_keys(images: tf.Tensor, labels: tf.Tensor, indices: tf.Tensor, *passed: Any) -> dict[str, tf.Tensor]:
            indices = tf.reshape(indices, [-1])
            outputs = dict(step(images, indices != PADDING_INDEX))
            outputs["labels"] = tf.cast(tf.reshape(labels, [-1]), tf.int64)
            outputs["indices"] = tf.cast(indices, tf.int64)
            for name, value in (passed[0] if passed else {}).items():
                outputs[PASSED + name] = value
            return outputs

        strategy = self.strategy

        def replicated(*batch: Any) -> dict[str, tf.Tensor]:
            per_replica = strategy.run(step_with_keys, args=batch)
            return tf.nest.map_structure(lambda value: strategy.gather(value, axis=0), per_replica)

        self._step = step_with_keys if strategy is None else replicated
        self._traced: dict[tuple[int, str], Any] = {}  # one tf.function per batch arity and signature

    def _run(self, *batch: Any, signature: Any = None) -> dict[str, tf.Tensor]:
        key = (len(batch), repr(signature))  # a dict of specs (the passed facts) is not hashable
        if key not in self._traced:
            self._traced[key] = tf.function(self._step, reduce_retracing=True, autograph=False,
                                            input_signature=signature)
        return self._traced[key](*batch)

    def __call__(self, dataset: Iterable[tuple[Any, ...]]) -> Iterator[dict[str, np.ndarray]]:
        if self.strategy is None:
            # A dataset's batches are traced once for any batch length (its element_spec leaves the
            # batch axis open), so the last, shorter batch adds no second trace (0.4 s a pass).
            signature = _batch_signature(dataset.element_spec) if isinstance(dataset, tf.data.Dataset) else None
            for batch in dataset:
                yield {key: value.numpy() for key, value in self._run(*batch, signature=signature).items()}
            return
        if not isinstance(dataset, tf.data.Dataset):
            raise TypeError("under a tf.distribute strategy the batches must come as a tf.data.Dataset")
        padded = _padded_to_multiple(dataset, self.strategy.num_replicas_in_sync)
        for batch in self.strategy.experimental_distribute_dataset(_shard_by_data(padded)):
            outputs = {key: value.numpy() for key, value in self._run(*batch).items()}
            kept = outputs["indices"] != PADDING_INDEX
            yield {key: value[kept] if key in self.row_keys or key.startswith(PASSED) else value
                   for key, value in outputs.items()}


def _batch_signature(element_spec: Any) -> tuple[Any, ...] | None:
    """The input signature of a step called with a dataset's batches (a tuple of its element's
    parts); None when a part is not a plain tensor."""
    parts = tuple(element_spec) if isinstance(element_spec, tuple) else (element_spec,)
    return parts if all(isinstance(spec, tf.TensorSpec) for spec in tf.nest.flatten(parts)) else None


def _padded_to_multiple(dataset: tf.data.Dataset, replicas: int) -> tf.data.Dataset:
    """Each batch padded to a multiple of ``replicas`` rows (at least ``replicas``) with copies of
    its own rows, whose index is :data:`PADDING_INDEX`; an empty batch is left empty."""
    if replicas <= 1:
        return dataset

    def pad(images: tf.Tensor, labels: tf.Tensor, indices: tf.Tensor, *passed: Any) -> tuple[Any, ...]:
        rows = tf.shape(images)[0]
        target = tf.maximum(replicas, (rows + replicas - 1) // replicas * replicas)
        extra = tf.where(rows > 0, target - rows, 0)
        copies = tf.range(extra) % tf.maximum(rows, 1)
        fill = tf.fill([extra], tf.cast(PADDING_INDEX, indices.dtype))
        copied = lambda value: tf.concat([value, tf.gather(value, copies)], 0)  # noqa: E731
        return (copied(images), copied(labels), tf.concat([indices, fill], 0), *tf.nest.map_structure(copied, passed))

    return dataset.map(tf.autograph.experimental.do_not_convert(pad))


def _shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Multi-worker sharding by element: the stream reads file paths from memory, not files, so
    sharding by file (the default's first try) does not apply and would log a warning."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


# Runners per owner object (a model), weakly held; a step must not refer to its owner strongly,
# or the entry would keep it alive.
_RUNNERS: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], BatchRunner]] = weakref.WeakKeyDictionary()


def cached_runner(
    owner: Any, key: tuple[Any, ...], make_step: Callable[[], Step], row_keys: tuple[str, ...] = ("probabilities",)
) -> BatchRunner:
    """One :class:`BatchRunner` per ``(owner, key, active strategy)``, so that repeated passes
    over the same model reuse its trace. The runner keeps its strategy, so the strategy's ``id``
    in the key cannot be reused while the entry lives."""
    per_owner = _RUNNERS.setdefault(owner, {})
    full_key = (*key, id(active_strategy()))
    if full_key not in per_owner:
        per_owner[full_key] = BatchRunner(make_step(), row_keys)
    return per_owner[full_key]


_FORWARDS: weakref.WeakKeyDictionary[Any, Callable[[Any], tf.Tensor]] = weakref.WeakKeyDictionary()


def compiled_forward(model: Any) -> Callable[[Any], tf.Tensor]:
    """``model(images, training=False)`` traced once per model (cached, the model held weakly):
    for code that calls a model on many in-memory batches, such as occlusion maps."""
    if model not in _FORWARDS:
        model_ref = weakref.ref(model)
        _FORWARDS[model] = tf.function(lambda images: model_ref()(images, training=False), reduce_retracing=True,
                                       autograph=False)
    return _FORWARDS[model]


def concatenated(batches: list[np.ndarray], empty_shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """The rows of all batches as one array; ``empty_shape`` when there were none."""
    return np.concatenate(batches).astype(dtype) if batches else np.zeros(empty_shape, dtype)
