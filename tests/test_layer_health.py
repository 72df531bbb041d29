"""Layer health: dead filters by construction, batch-wise equals all-at-once, one shared pass."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from octreport.engine.activations import extract_activations
from octreport.engine.layer_health import (
    LayerHealthAccumulator,
    layer_health_to_dict,
    predict_with_layer_health,
)
from octreport.engine.layers import discover_conv_layers
from octreport.errors import ConfigError

KEYS = {"layer", "dead_share", "dead_strict_share", "sparsity", "norm_min", "norm_median",
        "norm_max", "norm_cv", "basis", "flagged"}


def images(n: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 8, 8, 1), dtype=np.float32) + 0.01


def constructed_model() -> keras.Model:
    """conv_relu: filter 0 alive; 1 always negative before ReLU; 2 exactly 0; 3 always 1e-7.
    conv_linear (no activation): filter 0 positive, filter 1 never positive."""
    inputs = keras.Input((8, 8, 1))
    relu = layers.Conv2D(4, 3, activation="relu", name="conv_relu")
    linear = layers.Conv2D(2, 1, name="conv_linear")
    x = relu(inputs)
    model = keras.Model(inputs, layers.Dense(2, activation="softmax")(
        layers.GlobalAveragePooling2D()(linear(x))))
    kernel = np.zeros((3, 3, 1, 4), np.float32)
    kernel[..., 0], kernel[..., 1] = 1.0, -1.0
    relu.set_weights([kernel, np.array([0.0, -0.1, 0.0, 1e-7], np.float32)])
    linear.set_weights([np.array([[[[1, -1], [0, 0], [0, 0], [0, 0]]]], np.float32),
                        np.zeros(2, np.float32)])
    return model


def test_dead_filters_by_construction():
    model = constructed_model()
    acc = LayerHealthAccumulator(discover_conv_layers(model))
    acc.update([a.maps for a in extract_activations(model, discover_conv_layers(model), images())])
    relu, linear = acc.result()
    assert relu.dead_channels.tolist() == [1, 2, 3] and relu.dead_share == 0.75
    assert relu.dead_strict_channels.tolist() == [1, 2] and relu.dead_strict_share == 0.5
    assert relu.sparsity == 0.75 and relu.channel_sparsity.tolist() == [0, 1, 1, 1]
    assert relu.flagged and relu.basis == "post-activation" and relu.activation == "relu"
    assert relu.images == 6 and relu.channel_max[3] == pytest.approx(1e-7)
    assert linear.dead_channels.tolist() == [1] and linear.dead_share == 0.5
    assert linear.basis == "pre-activation" and linear.flagged  # 0.5 >= default threshold 0.5
    assert "never positive here would be dead behind a ReLU" in linear.caption
    assert "3 of 4 filters (75.0 %) never above 1e-06 over 6 images (2 never above 0)" in relu.caption
    norms = relu.norms.norms
    assert (relu.norms.minimum, relu.norms.maximum) == (0.0, 3.0)
    assert relu.norm_cv == pytest.approx(norms.std() / norms.mean())
    strict = LayerHealthAccumulator(discover_conv_layers(model), epsilon=0.0, dead_threshold=0.8)
    strict.update([a.maps for a in extract_activations(model, discover_conv_layers(model), images())])
    assert strict.result()[0].dead_channels.tolist() == [1, 2] and not strict.result()[0].flagged


def random_activations(seed: int):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(10, 5, 5, 4)).astype(np.float32),
            np.maximum(rng.normal(-1.0, 1.0, size=(10, 3, 3, 6)), 0).astype(np.float32)]


def two_layer_model() -> keras.Model:
    inputs = keras.Input((8, 8, 1))
    x = layers.Conv2D(4, 4, name="c1")(inputs)  # -> 5x5x4
    x = layers.Conv2D(6, 3, activation="relu", name="c2")(x)  # -> 3x3x6
    return keras.Model(inputs, layers.Dense(3, activation="softmax")(layers.Flatten()(x)))


def assert_same_health(a, b):
    for x, y in zip(a, b):
        assert x.to_dict() == y.to_dict()
        np.testing.assert_array_equal(x.channel_max, y.channel_max)
        np.testing.assert_array_equal(x.channel_sparsity, y.channel_sparsity)
        np.testing.assert_array_equal(x.dead_channels, y.dead_channels)


def test_batches_equal_the_concatenation_numpy_and_tensors():
    layer_infos = discover_conv_layers(two_layer_model())
    whole, batched, tensors = (LayerHealthAccumulator(layer_infos) for _ in range(3))
    acts = random_activations(1)
    whole.update(acts)
    for start, stop in ((0, 3), (3, 4), (4, 10)):
        batched.update([a[start:stop] for a in acts])
        tensors.update([tf.constant(a[start:stop]) for a in acts])
    assert batched.images == 10
    assert_same_health(whole.result(), batched.result())
    assert_same_health(whole.result(), tensors.result())
    with pytest.raises(ValueError, match="does not fit layer"):
        whole.update(acts[::-1])


def test_combined_pass_matches_predict_and_a_separate_audit():
    keras.utils.set_random_seed(0)
    model = two_layer_model()
    layer_infos = discover_conv_layers(model)
    x = images(11, seed=3) - 0.5
    labels = np.arange(11) % 3
    dataset = tf.data.Dataset.from_tensor_slices((x, labels, np.arange(11) + 100)).batch(4)
    probabilities, got_labels, indices, health = predict_with_layer_health(model, layer_infos, dataset)
    np.testing.assert_allclose(probabilities, model.predict(x, verbose=0), atol=1e-6)
    assert probabilities.dtype == np.float64
    assert got_labels.tolist() == labels.tolist() and indices.tolist() == list(range(100, 111))
    separate = LayerHealthAccumulator(layer_infos)
    separate.update([a.maps for a in extract_activations(model, layer_infos, x)])
    assert_same_health(health, separate.result())
    records = layer_health_to_dict(health)
    assert [r["layer"] for r in records] == ["c1", "c2"]
    assert KEYS <= set(records[0]) and json.loads(json.dumps(records)) == records
    empty = predict_with_layer_health(model, layer_infos, dataset.take(0))
    assert empty.probabilities.shape == (0, 3) and empty.health == ()


def test_bad_arguments_are_refused():
    layer_infos = discover_conv_layers(two_layer_model())
    with pytest.raises(ConfigError, match="No layers"):
        LayerHealthAccumulator([])
    with pytest.raises(ConfigError, match="dead_threshold"):
        LayerHealthAccumulator(layer_infos, dead_threshold=0.0)
    with pytest.raises(ConfigError, match="No images"):
        LayerHealthAccumulator(layer_infos).result()
    with pytest.raises(ValueError, match="Expected 2 layer outputs"):
        LayerHealthAccumulator(layer_infos).update(random_activations(0)[:1])
