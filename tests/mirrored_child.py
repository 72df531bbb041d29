"""Run in a child process by test_distribute.py: TensorFlow must split the CPU into logical
devices before it starts, which a pytest process that already ran TensorFlow cannot do.

Usage: python mirrored_child.py UNEVEN_DATA_DIR OUT_DIR (a data set whose last test batch of 4 holds one
image). Prints one JSON line with what it measured."""

from __future__ import annotations

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from octreport.cli import main  # noqa: E402
from octreport.models.distribute import distributed  # noqa: E402
from octreport.engine.layer_health import predict_with_layer_health  # noqa: E402
from octreport.engine.layers import discover_conv_layers  # noqa: E402
from octreport.engine.top_activations import TopActivationsAccumulator  # noqa: E402
from octreport.models.replicated_fit import fit_replicated  # noqa: E402


def tiny_model() -> keras.Model:
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(6, 3, name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


def evaluate(model, layers, dataset):
    top = TopActivationsAccumulator(layers, 12)  # more than the 11 images: padding rows must not fill it
    streamed = predict_with_layer_health(model, layers, dataset, top=top)
    health = [(h.channel_max, h.channel_sparsity, h.images) for h in streamed.health]
    return streamed.probabilities, streamed.indices, health, top.result()


keras.utils.set_random_seed(0)
model = tiny_model()
layers = discover_conv_layers(model)
x = np.random.default_rng(0).normal(size=(11, 16, 16, 1)).astype("float32")
# Batches of 4, 4, 2 and 1 images: the last two split unevenly over two replicas (1+1, 1+0).
dataset = tf.data.Dataset.from_tensor_slices((x, np.arange(11) % 3, np.arange(11))).batch(4).take(2).concatenate(
    tf.data.Dataset.from_tensor_slices((x[8:], np.arange(8, 11) % 3, np.arange(8, 11))).batch(2)
)
alone = evaluate(model, layers, dataset)
with distributed("mirrored") as strategy:
    replicas = strategy.num_replicas_in_sync
    mirrored = evaluate(model, layers, dataset)


def fitted_history(use_loop: bool) -> dict:
    """Two epochs from the same initial weights: Model.fit, or octreport's multi-worker loop. The
    batches split evenly over the replicas: with uneven splits ``fit`` averages the replicas' own
    means, the loop takes the mean over the global batch, and the two differ slightly."""
    keras.utils.set_random_seed(1)
    with distributed("mirrored") as strategy:
        net = tiny_model()
        net.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        train = tf.data.Dataset.from_tensor_slices((x[:8], np.arange(8) % 3)).batch(4)
        val = tf.data.Dataset.from_tensor_slices((x[8:10], np.arange(2) % 3)).batch(2)
        weights = {0: 0.5, 1: 1.0, 2: 2.0}
        if use_loop:
            return fit_replicated(net, train, val, epochs=2, class_weight=weights, callbacks=[], strategy=strategy)
        fit = net.fit(train, validation_data=val, epochs=2, class_weight=weights, verbose=0, shuffle=False)
        return {key: fit.history[key] for key in ("loss", "accuracy", "val_loss", "val_accuracy")}


by_fit, by_loop = fitted_history(False), fitted_history(True)
same_training = all(np.allclose(by_fit[key], by_loop[key], rtol=1e-3, atol=1e-4) for key in by_fit)
order = np.argsort(mirrored[1])
same_probabilities = bool(np.allclose(alone[0], mirrored[0][order], atol=1e-6))
same_health = all(
    np.allclose(a_max, m_max, atol=1e-6) and np.allclose(a_sparse, m_sparse) and a_n == m_n
    for (a_max, a_sparse, a_n), (m_max, m_sparse, m_n) in zip(alone[2], mirrored[2])
)

same_top = all(
    np.allclose(a.values, m.values, atol=1e-6) and (a.images == m.images).all() and (a.positions == m.positions).all()
    and int((a.images >= 0).sum(axis=1).max()) == 11
    for a, m in zip(alone[3], mirrored[3])
)


def run_exit_code(data: str, batch_size: int) -> int:
    try:
        return main(["run", "--data", data, "--out", sys.argv[2], "--distribute", "mirrored", "--epochs", "1",
                     "--image-size", "32", "--batch-size", str(batch_size), "--images-per-class", "1",
                     "--maps-per-layer", "2", "--filters-per-layer", "2", "--errors-per-cell", "0", "--format", "html",
                     "--quiet"], standalone_mode=False)
    except SystemExit as exit:  # a gate failure after one epoch exits 5 with the complete report
        return exit.code


# Its last test batch holds one image: one replica gets only padding.
exit_code = run_exit_code(sys.argv[1], 4)
print(json.dumps({"replicas": replicas, "same_probabilities": same_probabilities, "same_health": same_health, "same_top": same_top,
                  "same_training": same_training, "by_fit": by_fit, "by_loop": by_loop,
                  "indices": sorted(mirrored[1].tolist()), "images": mirrored[2][0][2], "run_exit": exit_code}))
