"""Conv-layer discovery: by type, in forward order, through nested models."""

from __future__ import annotations

import json

import keras
import pytest
from keras import layers

from conftest import two_conv_net
from octreport.engine.layers import (
    CONV_LAYER_TYPES,
    discover_conv_layers,
    format_layer_table,
    layers_to_json,
    select_layers,
)
from octreport.errors import ConfigError, ModelError


def wrapped_net() -> keras.Model:
    """The two-conv net as a backbone inside a functional wrapper with a new head."""
    backbone = two_conv_net()
    inputs = keras.Input((16, 16, 1), name="image")
    x = layers.Rescaling(1 / 255, name="scale")(inputs)
    x = backbone(x, training=False)
    x = layers.Conv2D(2, 1, name="head_conv")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(3, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="wrapper")


def functional_backbone() -> keras.Model:
    inputs = keras.Input((16, 16, 1))
    x = layers.Conv2D(4, 3, name="f_conv1")(inputs)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, name="f_dw")(x)
    return keras.Model(inputs, x, name="fbackbone")


def count_conv_layers(model: keras.Model) -> int:
    """Conv-class layers counted the obvious way: isinstance over model.layers, recursively."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_conv_layers(layer)
        elif isinstance(layer, CONV_LAYER_TYPES):
            total += 1
    return total


def test_two_conv_sequential_paths_and_shapes():
    found = discover_conv_layers(two_conv_net())
    assert [i.path for i in found] == ["conv_a", "conv_b"]
    a, b = found
    assert (a.kind, a.kernel_size, a.filters, a.strides, a.output_shape) == (
        "Conv2D", (3, 3), 4, (1, 1), (16, 16, 4))
    assert (b.kernel_size, b.filters, b.strides, b.output_shape) == ((3, 3), 8, (2, 2), (4, 4, 8))
    assert a.params == 3 * 3 * 1 * 4 + 4
    assert b.params == 3 * 3 * 4 * 8 + 8
    assert (a.input_channels, b.input_channels) == (1, 4)
    assert [i.index for i in found] == [0, 1]


def test_nested_backbone_in_functional_wrapper():
    model = wrapped_net()
    found = discover_conv_layers(model)
    assert [i.path for i in found] == ["backbone/conv_a", "backbone/conv_b", "head_conv"]
    assert [p.name for p in found[0].parents] == ["wrapper", "backbone"]
    assert found[2].parents == (model,)
    assert found[0].layer is model.get_layer("backbone").get_layer("conv_a")


def test_functional_backbone_in_sequential():
    model = keras.Sequential(
        [functional_backbone(), layers.Conv2D(3, 1, name="top"), layers.Flatten()], name="outer")
    found = discover_conv_layers(model)
    assert [i.path for i in found] == ["fbackbone/f_conv1", "fbackbone/f_dw", "top"]
    depthwise = found[1]
    assert depthwise.kind == "DepthwiseConv2D"
    assert depthwise.filters == 8  # 4 input channels x depth multiplier 2
    assert depthwise.output_shape == (12, 12, 8)


def test_sequential_backbone_without_input_in_functional():
    backbone = keras.Sequential([layers.Conv2D(4, 3, name="s1"), layers.Conv2D(4, 3, name="s2")],
                                name="seq")
    inputs = keras.Input((16, 16, 1))
    outputs = layers.Flatten()(backbone(layers.Conv2D(2, 1, name="stem")(inputs)))
    found = discover_conv_layers(keras.Model(inputs, outputs))
    assert [i.path for i in found] == ["stem", "seq/s1", "seq/s2"]
    assert found[2].output_shape == (12, 12, 4)


def test_forward_order_not_creation_order():
    late = layers.Conv2D(4, 3, name="created_first_used_last")
    early = layers.Conv2D(4, 3, name="created_last_used_first")
    inputs = keras.Input((16, 16, 1))
    model = keras.Model(inputs, late(early(inputs)))
    assert [i.name for i in discover_conv_layers(model)] == [
        "created_last_used_first", "created_first_used_last"]


def test_found_by_type_not_by_name():
    inputs = keras.Input((16, 16, 3))
    x = layers.SeparableConv2D(4, 3, name="alpha")(inputs)
    x = layers.DepthwiseConv2D(3, name="beta")(x)
    x = layers.Conv2DTranspose(2, 3, name="gamma")(x)
    x = layers.Flatten(name="flat")(x)
    x = layers.Dense(5, name="conv_dense")(x)
    found = discover_conv_layers(keras.Model(inputs, x))
    assert [(i.name, i.kind) for i in found] == [
        ("alpha", "SeparableConv2D"), ("beta", "DepthwiseConv2D"), ("gamma", "Conv2DTranspose")]


def test_conv1d_and_conv3d_are_found_with_their_rank():
    inputs = keras.Input((20, 2))
    conv1d = keras.Model(inputs, layers.Conv1D(3, 5, name="c1")(inputs))
    inputs = keras.Input((6, 8, 8, 1))
    conv3d = keras.Model(inputs, layers.Conv3D(2, 3, name="c3")(inputs))
    (one,), (three,) = discover_conv_layers(conv1d), discover_conv_layers(conv3d)
    assert (one.spatial_rank, one.kernel_size, one.output_shape) == (1, (5,), (16, 3))
    assert (three.spatial_rank, three.kernel_size, three.output_shape) == (3, (3, 3, 3), (4, 6, 6, 2))


def test_model_without_conv_layer_is_refused_with_its_layers_listed():
    inputs = keras.Input((16, 16, 1))
    x = layers.Flatten(name="flatten_it")(inputs)
    model = keras.Model(inputs, layers.Dense(2, name="conv_like_dense")(x), name="mlp")
    with pytest.raises(ModelError) as error:
        discover_conv_layers(model)
    message = str(error.value)
    assert "'mlp' has no convolutional layer" in message
    assert "flatten_it (Flatten)" in message
    assert "conv_like_dense (Dense)" in message


def test_not_a_model_and_unbuilt_model_are_refused():
    with pytest.raises(ModelError, match="Expected a Keras model"):
        discover_conv_layers(layers.Conv2D(2, 3))
    with pytest.raises(ModelError, match="not built"):
        discover_conv_layers(keras.Sequential([layers.Conv2D(2, 3)]))


def test_select_layers_by_path_or_name_in_forward_order():
    found = discover_conv_layers(wrapped_net())
    chosen = select_layers(found, ["head_conv", "backbone/conv_a"])
    assert [i.path for i in chosen] == ["backbone/conv_a", "head_conv"]
    assert [i.path for i in select_layers(found, ["conv_b"])] == ["backbone/conv_b"]
    assert select_layers(found, None) == found


def test_select_layers_unknown_name_lists_available():
    found = discover_conv_layers(wrapped_net())
    with pytest.raises(ConfigError) as error:
        select_layers(found, ["conv_a", "conv9"])
    message = str(error.value)
    assert "'conv9'" in message
    assert "backbone/conv_a, backbone/conv_b, head_conv" in message
    with pytest.raises(ConfigError):
        select_layers(found, [])


def test_select_layers_ambiguous_plain_name():
    inputs = keras.Input((16, 16, 1))
    x = two_conv_net("left")(inputs)
    model = keras.Model(inputs, [x, two_conv_net("right")(inputs)])
    found = discover_conv_layers(model)
    with pytest.raises(ConfigError, match="left/conv_a, right/conv_a"):
        select_layers(found, ["conv_a"])
    assert [i.path for i in select_layers(found, ["right/conv_a"])] == ["right/conv_a"]


def test_table_and_json():
    found = discover_conv_layers(wrapped_net())
    table = format_layer_table(found).splitlines()
    assert table[0].split() == ["#", "path", "kind", "kernel", "filters", "strides", "output",
                                "shape", "params"]
    assert table[2].split() == ["0", "backbone/conv_a", "Conv2D", "3x3", "4", "1x1", "16x16x4",
                                "40"]
    records = json.loads(json.dumps(layers_to_json(found)))
    assert records[1]["path"] == "backbone/conv_b"
    assert records[1]["output_shape"] == [4, 4, 8]
    assert records[1]["strides"] == [2, 2]


APPLICATIONS = [
    ("VGG16", 32),
    ("ResNet50", 32),
    ("MobileNetV2", 32),
    ("EfficientNetB0", 32),
    ("DenseNet121", 32),
    ("Xception", 71),
    ("InceptionV3", 75),
    ("ConvNeXtTiny", 32),
]


@pytest.mark.parametrize(("name", "size"), APPLICATIONS)
def test_keras_applications_standalone_and_nested(name, size):
    backbone = getattr(keras.applications, name)(
        weights=None, include_top=False, input_shape=(size, size, 3))
    expected = count_conv_layers(backbone)
    assert expected > 10
    found = discover_conv_layers(backbone)
    assert len(found) == expected
    assert len({i.path for i in found}) == expected

    inputs = keras.Input((size, size, 3))
    x = backbone(inputs, training=False)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(4, activation="softmax")(x))
    nested = discover_conv_layers(model)
    assert len(nested) == expected
    assert [i.path for i in nested] == [f"{backbone.name}/{i.path}" for i in found]


def test_channels_first_layer_reports_channels_from_axis_1():
    inputs = keras.Input((2, 8, 8))
    model = keras.Model(inputs, layers.Conv2D(3, 3, data_format="channels_first", name="cf")(inputs))
    (info,) = discover_conv_layers(model)
    assert (info.channels_last, info.filters, info.input_channels, info.output_shape) == (
        False, 3, 2, (3, 6, 6))
