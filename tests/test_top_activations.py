"""The running top-k per filter kept in the evaluation pass: equal to a brute-force argsort,
the same over any batching, padding rows never in it, and a constructed detector finds its pattern."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from octreport.engine.activations import extract_activations
from octreport.engine.layer_health import predict_with_layer_health
from octreport.engine.layers import discover_conv_layers
from octreport.engine.top_activations import TopActivationsAccumulator
from octreport.errors import ConfigError


def brute_force(outputs: np.ndarray, k: int):
    """(values, image rows, flat positions), each (C, k): one position per image, full argsort."""
    n, channels = outputs.shape[0], outputs.shape[-1]
    flat = outputs.reshape(n, -1, channels)
    per_image, where = flat.max(axis=1).T, flat.argmax(axis=1).T  # (C, N)
    order = np.argsort(-per_image, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(per_image, order, 1), order, np.take_along_axis(where, order, 1)


def small_model() -> keras.Model:
    inputs = keras.Input((10, 12, 1))
    x = keras.layers.Conv2D(5, 3, activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


def run(model, layers, x, batch, k, offset=100):
    top = TopActivationsAccumulator(layers, k)
    data = tf.data.Dataset.from_tensor_slices((x, np.zeros(len(x), np.int64), np.arange(len(x)) + offset)).batch(batch)
    predict_with_layer_health(model, layers, data, top=top)
    return top.result()


def test_top_k_equals_brute_force_and_streaming_equals_one_batch():
    keras.utils.set_random_seed(0)
    model = small_model()
    layers = discover_conv_layers(model)
    x = np.random.default_rng(1).normal(size=(13, 10, 12, 1)).astype(np.float32)
    maps = [a.maps for a in extract_activations(model, layers, x)]
    whole = run(model, layers, x, 13, 4)
    for info, result, out in zip(layers, whole, maps):
        values, rows, flat = brute_force(out, 4)
        np.testing.assert_allclose(result.values, values, rtol=1e-5, atol=1e-6)
        assert (result.images == rows + 100).all()  # data set indices, not batch rows
        spatial = out.shape[1:-1]
        assert (result.positions == np.stack(np.unravel_index(flat, spatial), -1)).all()
        assert result.values.shape == (info.filters, 4) and (np.diff(result.values, axis=1) <= 0).all()
        # each of a filter's top images is a different image
        assert all(len(set(row)) == 4 for row in result.images)
    for batch in (1, 3, 5):
        streamed = run(model, layers, x, batch, 4)
        for a, b in zip(whole, streamed):
            np.testing.assert_allclose(a.values, b.values, rtol=1e-6)
            assert (a.images == b.images).all() and (a.positions == b.positions).all()


def test_more_places_than_images_leaves_empty_slots_marked():
    keras.utils.set_random_seed(0)
    model = small_model()
    layers = discover_conv_layers(model)
    x = np.random.default_rng(2).normal(size=(3, 10, 12, 1)).astype(np.float32)
    result = run(model, layers, x, 2, 5)[0]
    assert (result.images[:, :3] >= 0).all() and (result.images[:, 3:] == -1).all()
    assert np.isneginf(result.values[:, 3:]).all() and (result.positions[:, 3:] == -1).all()
    with pytest.raises(ConfigError, match="at least 1"):
        TopActivationsAccumulator(layers, 0)


def test_padding_rows_never_enter_the_top_k():
    """The step's ``valid`` mask: rows marked invalid (as under tf.distribute) are left out, even
    where they would be the strongest."""
    from octreport.engine.layer_health import _health_step
    from octreport.engine.activations import cached_extractor_model

    keras.utils.set_random_seed(0)
    model = small_model()
    layers = discover_conv_layers(model)
    x = np.random.default_rng(3).normal(size=(6, 10, 12, 1)).astype(np.float32)
    x[5] *= 50  # the padding row would win everywhere
    step = _health_step(cached_extractor_model(model, layers, with_output=True), layers, 0.0, top_k=6)
    valid = np.array([True] * 5 + [False])
    out = step(tf.constant(x), tf.constant(valid))
    slots = out["tops0"].numpy()[0]
    assert 5 not in slots and (slots[:, 5] == -1).all() and set(slots[:, :5].ravel()) == set(range(5))


def test_a_constructed_detector_finds_its_pattern_where_it_was_put():
    """A fixed kernel that detects a 3x3 cross; the cross is drawn at known places in noise."""
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.float32)
    inputs = keras.Input((16, 16, 1))
    conv = keras.layers.Conv2D(1, 3, activation="relu", name="detector")
    x = conv(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalMaxPooling2D()(x)))
    conv.kernel.assign((cross - cross.mean())[:, :, None, None])
    conv.bias.assign([0.0])
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 0.2, (8, 16, 16, 1)).astype(np.float32)
    places = [(2, 3), (10, 5), (7, 11), (4, 4), (12, 12), (1, 9), (8, 8), (5, 1)]
    for image, (r, c) in zip(images, places):
        image[r:r + 3, c:c + 3, 0] += cross
    layers = discover_conv_layers(model)
    result = run(model, layers, images, 3, 8, offset=0)[0]
    for image, position in zip(result.images[0], result.positions[0]):
        assert tuple(position) == places[image]  # valid conv: output (r, c) sees pixels r..r+2


def test_a_model_of_any_input_size_gets_positions_too():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(3, 3, name="c")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    layers = discover_conv_layers(model)
    x = np.random.default_rng(4).normal(size=(5, 9, 7, 1)).astype(np.float32)
    result = run(model, layers, x, 2, 3)[0]
    values, rows, flat = brute_force(extract_activations(model, layers, x)[0].maps, 3)
    assert (result.images == rows + 100).all()
    assert (result.positions == np.stack(np.unravel_index(flat, (7, 5)), -1)).all()


def test_conv1d_layers_take_the_flattened_argmax_path():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((20, 2))
    x = keras.layers.Conv1D(3, 5, name="c")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(x)))
    layers = discover_conv_layers(model)
    x = np.random.default_rng(5).normal(size=(7, 20, 2)).astype(np.float32)
    result = run(model, layers, x, 3, 4)[0]
    values, rows, flat = brute_force(extract_activations(model, layers, x)[0].maps, 4)
    np.testing.assert_allclose(result.values, values, rtol=1e-5, atol=1e-6)
    assert (result.images == rows + 100).all() and (result.positions[..., 0] == flat).all()
