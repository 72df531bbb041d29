"""A training loop for ``MultiWorkerMirroredStrategy``, where Keras 3's ``Model.fit`` fails.

With workers on several hosts, ``Model.fit`` (Keras 3.15, TensorFlow 2.21) stops before the first
step: to build the model it reduces the first batch across workers, which the collective strategy
cannot do with per-replica inputs ("Attempt to convert a value (PerReplica...) ... to a Tensor";
keras-team/keras#20585, tensorflow/tensorflow#72388). This loop does what ``fit`` does for
octreport's training, and no more:

* per replica: forward pass in training mode, sparse categorical cross-entropy weighted by class
  (the mean over the global batch, as ``fit`` computes it), gradients, and the model's optimizer,
  which sums the gradients over all replicas before it applies them;
* per epoch: the mean training loss and accuracy, then the validation loss and accuracy
  (unweighted, as ``fit`` reports them), summed over all replicas;
* the same Keras callbacks (early stopping with restored weights, the epoch logger) driven
  through ``keras.callbacks.CallbackList``.

Every worker runs every step, so every worker ends with the same weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf


def fit_replicated(
    model: keras.Model,
    train: tf.data.Dataset,
    val: tf.data.Dataset,
    *,
    epochs: int,
    class_weight: dict[int, float] | None,
    callbacks: Sequence[keras.callbacks.Callback],
    strategy: tf.distribute.Strategy,
) -> dict[str, list[float]]:
    """Train ``model`` (compiled, inside ``strategy.scope()``) and return its history, keyed like
    ``Model.fit``'s: ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``."""
    num_classes = int(model.outputs[0].shape[-1])
    weights = np.ones(num_classes, np.float32)
    for label, weight in (class_weight or {}).items():
        weights[label] = weight
    class_weights = tf.constant(weights)
    model.optimizer.build(model.trainable_variables)  # slot variables now, not inside a replica

    def train_step(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        labels = tf.cast(labels, tf.int32)
        count = tf.cast(tf.shape(labels)[0], tf.float32)
        global_count = tf.distribute.get_replica_context().all_reduce("sum", count)
        with tf.GradientTape() as tape:
            probabilities = model(images, training=True)
            per_image = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
            loss = tf.reduce_sum(per_image * tf.gather(class_weights, labels)) / tf.maximum(global_count, 1.0)
            if model.losses:
                loss += tf.add_n(model.losses) / strategy.num_replicas_in_sync
        gradients = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss * global_count, _correct(labels, probabilities), count

    def val_step(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        labels = tf.cast(labels, tf.int32)
        probabilities = model(images, training=False)
        per_image = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
        return tf.reduce_sum(per_image), _correct(labels, probabilities), tf.cast(tf.shape(labels)[0], tf.float32)

    run_train, run_val = _summed(strategy, train_step), _summed(strategy, val_step)
    train_batches = strategy.experimental_distribute_dataset(train)
    val_batches = strategy.experimental_distribute_dataset(val)
    callback_list = keras.callbacks.CallbackList(list(callbacks), model=model)
    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(epochs):
        callback_list.on_epoch_begin(epoch)
        loss, accuracy = _epoch(run_train, train_batches)
        val_loss, val_accuracy = _epoch(run_val, val_batches)
        logs = {"loss": loss, "accuracy": accuracy, "val_loss": val_loss, "val_accuracy": val_accuracy}
        for key, value in logs.items():
            history[key].append(value)
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end()
    return history


def _correct(labels: tf.Tensor, probabilities: tf.Tensor) -> tf.Tensor:
    predicted = tf.cast(tf.argmax(probabilities, axis=-1), tf.int32)
    return tf.reduce_sum(tf.cast(tf.equal(predicted, labels), tf.float32))


def _summed(strategy: tf.distribute.Strategy, step: Any) -> Any:
    """``step`` on every replica, its three sums added over all replicas."""

    @tf.function(autograph=False)
    def run(images: Any, labels: Any) -> tuple[tf.Tensor, ...]:
        per_replica = strategy.run(step, args=(images, labels))
        return tuple(strategy.reduce("SUM", value, axis=None) for value in per_replica)

    return run


def _epoch(run: Any, batches: Any) -> tuple[float, float]:
    """Mean loss and accuracy over one pass of ``batches``."""
    loss_sum = correct = seen = 0.0
    for images, labels in batches:
        batch_loss, batch_correct, batch_count = (float(value) for value in run(images, labels))
        loss_sum, correct, seen = loss_sum + batch_loss, correct + batch_correct, seen + batch_count
    seen = max(seen, 1.0)
    return loss_sum / seen, correct / seen
