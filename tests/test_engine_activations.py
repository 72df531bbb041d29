"""Feature maps: one pass for all layers, equal to the slow one-sub-model-per-layer way."""

from __future__ import annotations

import gc
import weakref

import keras
import numpy as np
import pytest
from keras import layers

from conftest import two_conv_net
from octreport.engine.activations import (
    ActivationExtractor,
    cached_extractor_model,
    extract_activations,
    select_channels,
    select_feature_maps,
)
from octreport.engine.layers import discover_conv_layers, select_layers
from octreport.errors import ConfigError, ModelError

ATOL = 1e-5


def images(n: int = 3, shape=(16, 16, 1), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def functional_backbone() -> keras.Model:
    inputs = keras.Input((16, 16, 1))
    x = layers.Conv2D(4, 3, name="f_conv1")(inputs)
    x = layers.BatchNormalization(name="f_bn")(x)
    x = layers.SeparableConv2D(6, 3, depth_multiplier=2, name="f_sep")(x)
    return keras.Model(inputs, x, name="fbackbone")


def slow(submodel_input, layer, x) -> np.ndarray:
    """The slow way: a sub-model from ``submodel_input`` to one layer's output, fed ``x``."""
    return keras.ops.convert_to_numpy(keras.Model(submodel_input, layer.output)(x))


def assert_all_close(found, expected: dict[str, np.ndarray]) -> None:
    assert [a.layer.path for a in found] == list(expected)
    for acts in found:
        assert acts.maps.dtype == np.float32
        np.testing.assert_allclose(acts.maps, expected[acts.layer.path], atol=ATOL)


def test_plain_sequential_matches_slow_way():
    model, x = two_conv_net(), images()
    found = extract_activations(model, discover_conv_layers(model), x)
    assert_all_close(found, {
        "conv_a": slow(model.inputs[0], model.get_layer("conv_a"), x),
        "conv_b": slow(model.inputs[0], model.get_layer("conv_b"), x),
    })
    assert found[1].maps.shape == (3, 4, 4, 8)


def test_sequential_built_without_input_layer():
    model = two_conv_net(with_input=False)
    model.build((None, 16, 16, 1))
    x = images()
    (acts,) = extract_activations(model, select_layers(discover_conv_layers(model), ["conv_b"]), x)
    np.testing.assert_allclose(acts.maps, slow(model.inputs[0], model.get_layer("conv_b"), x),
                               atol=ATOL)


@pytest.mark.parametrize("backbone_has_input", [True, False])
def test_sequential_backbone_in_functional_wrapper(backbone_has_input):
    backbone = two_conv_net(with_input=backbone_has_input)
    inputs = keras.Input((16, 16, 1))
    scaled = layers.Rescaling(0.5, offset=0.1, name="scale")(inputs)
    x = backbone(scaled, training=False)
    x = layers.Conv2D(2, 1, name="head_conv")(x)
    model = keras.Model(inputs, layers.Dense(3)(layers.Flatten()(x)), name="wrapper")
    x = images()
    fed = 0.5 * x + 0.1  # what the wrapper gives the backbone
    found = extract_activations(model, discover_conv_layers(model), x)
    assert_all_close(found, {
        "backbone/conv_a": slow(backbone.inputs[0], backbone.get_layer("conv_a"), fed),
        "backbone/conv_b": slow(backbone.inputs[0], backbone.get_layer("conv_b"), fed),
        "head_conv": slow(model.inputs[0], model.get_layer("head_conv"), x),
    })


def test_functional_backbone_in_functional_wrapper():
    backbone = functional_backbone()
    inputs = keras.Input((16, 16, 1))
    stem = layers.Conv2D(1, 1, name="stem")(inputs)
    x = layers.GlobalAveragePooling2D()(backbone(stem, training=False))
    model = keras.Model(inputs, layers.Dense(2)(x))
    x = images()
    fed = slow(model.inputs[0], model.get_layer("stem"), x)
    found = extract_activations(model, discover_conv_layers(model), x)
    assert_all_close(found, {
        "stem": fed,
        "fbackbone/f_conv1": slow(backbone.inputs[0], backbone.get_layer("f_conv1"), fed),
        "fbackbone/f_sep": slow(backbone.inputs[0], backbone.get_layer("f_sep"), fed),
    })


def test_functional_backbone_in_sequential_wrapper():
    backbone = functional_backbone()
    model = keras.Sequential([backbone, layers.Conv2D(3, 1, name="top"), layers.Flatten()])
    x = images()
    found = extract_activations(model, discover_conv_layers(model), x)
    top_input = keras.ops.convert_to_numpy(backbone(x))
    assert_all_close(found, {
        "fbackbone/f_conv1": slow(backbone.inputs[0], backbone.get_layer("f_conv1"), x),
        "fbackbone/f_sep": slow(backbone.inputs[0], backbone.get_layer("f_sep"), x),
        "top": keras.ops.convert_to_numpy(model.get_layer("top")(top_input)),
    })


def test_two_levels_of_nesting():
    inner = two_conv_net("inner")
    middle_in = keras.Input((16, 16, 1))
    middle = keras.Model(middle_in, layers.Conv2D(2, 1, name="mid_conv")(inner(middle_in)),
                         name="middle")
    outer_in = keras.Input((16, 16, 1))
    model = keras.Model(outer_in, layers.Flatten()(middle(outer_in)), name="outer")
    x = images()
    found = extract_activations(model, discover_conv_layers(model), x)
    inner_b = slow(inner.inputs[0], inner.get_layer("conv_b"), x)
    assert_all_close(found, {
        "middle/inner/conv_a": slow(inner.inputs[0], inner.get_layer("conv_a"), x),
        "middle/inner/conv_b": inner_b,
        "middle/mid_conv": keras.ops.convert_to_numpy(middle.get_layer("mid_conv")(inner_b)),
    })


def test_extraction_leaves_the_model_unchanged():
    backbone = two_conv_net()
    inputs = keras.Input((16, 16, 1))
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(backbone(inputs))))
    backbone.trainable = False
    x = images()
    config, weights = model.get_config(), [w.copy() for w in model.get_weights()]
    prediction = keras.ops.convert_to_numpy(model(x))
    conv_a = backbone.get_layer("conv_a")
    output_before = conv_a.output
    extract_activations(model, discover_conv_layers(model), x)
    assert model.get_config() == config
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(prediction, keras.ops.convert_to_numpy(model(x)))
    assert conv_a.output is output_before
    assert backbone.trainable is False and conv_a.trainable is False
    assert [layer.name for layer in model.layers] == [layer.name for layer in
                                                      keras.Model.from_config(config).layers]


def test_extractor_is_built_once_and_batches_agree():
    model = two_conv_net()
    chosen = discover_conv_layers(model)
    extractor = ActivationExtractor(model, chosen)
    x = images(5)
    whole = extract_activations(model, chosen, x)
    in_twos = extract_activations(model, chosen, x, batch_size=2)
    assert ActivationExtractor(model, chosen).extractor_model is extractor.extractor_model
    assert cached_extractor_model(model, chosen) is extractor.extractor_model
    assert cached_extractor_model(model, chosen[:1]) is not extractor.extractor_model
    for a, b in zip(whole, in_twos):
        np.testing.assert_allclose(a.maps, b.maps, atol=ATOL)


def test_cache_does_not_keep_the_model_alive():
    model = two_conv_net()
    extract_activations(model, discover_conv_layers(model), images())
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None


def test_conv1d_strips_and_conv3d_middle_slice():
    inputs = keras.Input((20, 2))
    conv1d = keras.Model(inputs, layers.Conv1D(3, 5, name="c1")(inputs))
    x1 = images(2, (20, 2))
    (acts,) = extract_activations(conv1d, discover_conv_layers(conv1d), x1)
    assert acts.maps.shape == (2, 1, 16, 3)
    np.testing.assert_allclose(acts.maps[:, 0], slow(inputs, conv1d.get_layer("c1"), x1),
                               atol=ATOL)
    assert "1 x 16 strip" in acts.view_note

    inputs = keras.Input((6, 8, 8, 1))
    conv3d = keras.Model(inputs, layers.Conv3D(2, 3, name="c3")(inputs))
    x3 = images(2, (6, 8, 8, 1))
    (acts,) = extract_activations(conv3d, discover_conv_layers(conv3d), x3)
    full = slow(inputs, conv3d.get_layer("c3"), x3)  # (2, 4, 6, 6, 2)
    np.testing.assert_allclose(acts.maps, full[:, 2], atol=ATOL)
    assert acts.view_note == "middle depth slice 2 of 4"


def test_wrong_inputs_are_refused():
    model = two_conv_net()
    chosen = discover_conv_layers(model)
    with pytest.raises(ModelError, match="expects images of shape 16x16x1"):
        extract_activations(model, chosen, images(2, (32, 32, 1)))
    with pytest.raises(ConfigError):
        extract_activations(model, chosen, images(0))
    with pytest.raises(ConfigError):
        extract_activations(model, chosen, images(), batch_size=0)
    with pytest.raises(ConfigError):
        extract_activations(model, (), images())
    other = two_conv_net("other")
    with pytest.raises(ModelError, match="not found in model"):
        extract_activations(other, chosen, images())


class Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = layers.Conv2D(2, 3, name="hidden_conv")

    def call(self, x):
        return self.conv(x)


def test_subclassed_model_is_refused():
    model = Subclassed(name="custom")
    model(images(1))
    with pytest.raises(ModelError, match="'custom' is a subclassed model"):
        discover_conv_layers(model)


def test_subclassed_model_inside_a_functional_model_is_skipped(caplog):
    inputs = keras.Input((16, 16, 1))
    x = Subclassed(name="custom")(layers.Conv2D(2, 1, name="stem")(inputs))
    model = keras.Model(inputs, x)
    found = discover_conv_layers(model)
    assert [i.path for i in found] == ["stem"]
    assert "Skipping the layers of 'custom'" in caplog.text
    (acts,) = extract_activations(model, found, images())
    assert acts.maps.shape == (3, 16, 16, 2)


def test_nested_mobilenetv2_backbone_matches_slow_way():
    backbone = keras.applications.MobileNetV2(weights=None, include_top=False,
                                              input_shape=(32, 32, 3))
    inputs = keras.Input((32, 32, 3))
    x = layers.GlobalAveragePooling2D()(backbone(inputs, training=False))
    model = keras.Model(inputs, layers.Dense(4, activation="softmax")(x))
    found_layers = discover_conv_layers(model)
    x = images(2, (32, 32, 3)) * 2 - 1
    found = extract_activations(model, found_layers, x)
    assert len(found) == len(found_layers)
    assert all(a.maps.shape[1:] == a.layer.output_shape for a in found)
    for path in ["mobilenetv2_1.00_32/Conv1", "mobilenetv2_1.00_32/block_6_depthwise",
                 "mobilenetv2_1.00_32/Conv_1"]:
        (acts,) = [a for a in found if a.layer.path == path]
        expected = slow(backbone.inputs[0], acts.layer.layer, x)
        np.testing.assert_allclose(acts.maps, expected, atol=1e-4)


def test_select_channels_strongest_first_and_few():
    activation = np.zeros((4, 4, 6), np.float32)
    for channel, mean in enumerate([0.1, 3.0, -1.0, 2.0, 3.0, 0.5]):
        activation[..., channel] = mean
    assert select_channels(activation, 3).tolist() == [1, 4, 3]  # tie 1/4 keeps channel order
    assert select_channels(activation, 3, "first").tolist() == [0, 1, 2]
    assert select_channels(activation, 32).tolist() == [1, 4, 3, 5, 0, 2]
    assert select_channels(activation, 32, "first").tolist() == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ConfigError):
        select_channels(activation, 3, "random")
    with pytest.raises(ConfigError):
        select_channels(activation, 0)


def test_select_feature_maps_caption_and_maps():
    model = two_conv_net()
    _, conv_b = extract_activations(model, discover_conv_layers(model), images())
    chosen = select_feature_maps(conv_b, image_index=1, n=3)
    assert chosen.maps.shape == (3, 4, 4)
    for k, channel in enumerate(chosen.channels):
        np.testing.assert_array_equal(chosen.maps[k], conv_b.maps[1, :, :, channel])
    means = conv_b.maps[1].mean(axis=(0, 1))
    assert means[chosen.channels[0]] == means.max()
    assert chosen.caption == ("3 of 8 channels with the strongest mean activation, "
                              "each map scaled from its own min to max, viridis colour map")
    first = select_feature_maps(conv_b, 0, n=8, how="first", cmap="magma")
    assert first.caption.startswith("all 8 channels in order,")
    assert first.caption.endswith("magma colour map")
    with pytest.raises(ConfigError):
        select_feature_maps(conv_b, 3)


def test_shared_layer_and_backbone_called_twice():
    shared = layers.Conv2D(1, 3, padding="same", name="shared")
    inputs = keras.Input((16, 16, 1))
    twice = keras.Model(inputs, shared(shared(inputs)))
    (acts,) = extract_activations(twice, discover_conv_layers(twice), images())
    np.testing.assert_allclose(acts.maps, keras.ops.convert_to_numpy(shared(images())), atol=ATOL)

    backbone = functional_backbone()
    inputs = keras.Input((16, 16, 1))
    pair = layers.Concatenate()([backbone(inputs), backbone(layers.Rescaling(2.0)(inputs))])
    siamese = keras.Model(inputs, pair)
    found = extract_activations(siamese, discover_conv_layers(siamese), images())
    assert [a.layer.path for a in found] == ["fbackbone/f_conv1", "fbackbone/f_sep"]
    np.testing.assert_allclose(  # the first call of the backbone, on the unscaled images
        found[1].maps, slow(backbone.inputs[0], backbone.get_layer("f_sep"), images()), atol=ATOL)


def test_model_still_saves_and_loads_after_extraction(tmp_path):
    backbone = two_conv_net()
    inputs = keras.Input((16, 16, 1))
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(backbone(inputs))))
    extract_activations(model, discover_conv_layers(model), images())
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded(images()), model(images()), atol=ATOL)
    assert len(discover_conv_layers(loaded)) == 2


@pytest.mark.parametrize("name", ["ResNet50", "EfficientNetB0"])
def test_keras_applications_extract_every_conv_layer(name):
    model = getattr(keras.applications, name)(weights=None, include_top=False,
                                              input_shape=(32, 32, 3))
    found_layers = discover_conv_layers(model)
    x = images(1, (32, 32, 3)) * 255
    found = extract_activations(model, found_layers, x)
    assert [a.layer for a in found] == list(found_layers)
    assert all(a.maps.shape == (1, *a.layer.output_shape) for a in found)
    last = found_layers[-1]
    np.testing.assert_allclose(found[-1].maps, slow(model.inputs[0], last.layer, x), atol=1e-4)
