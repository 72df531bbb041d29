"""Filters are shown from the right weights, with the reduction stated."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from octreport.engine.filters import extract_filters, filter_norm_summary, full_kernel
from octreport.engine.layers import discover_conv_layers
from octreport.errors import ConfigError


def single_layer(layer: keras.layers.Layer, input_shape: tuple[int, ...]):
    """A one-layer model and the ConvLayerInfo of that layer."""
    inputs = keras.Input(input_shape)
    model = keras.Model(inputs, layer(inputs))
    (info,) = discover_conv_layers(model)
    return model, info


def known_weights(layer: keras.layers.Layer) -> list[np.ndarray]:
    """Distinct known values (a shifted arange) in every weight of ``layer``, via set_weights."""
    weights = [np.arange(w.size, dtype=np.float32).reshape(w.shape) - w.size / 3
               for w in layer.get_weights()]
    layer.set_weights(weights)
    return weights


def test_rgb_first_layer_gives_colour_patches():
    layer = layers.Conv2D(4, 3, name="rgb")
    _, info = single_layer(layer, (8, 8, 3))
    kernel, _ = known_weights(layer)  # (3, 3, 3, 4)
    grid = extract_filters(info)
    assert grid.colour and grid.reduction == "rgb"
    assert grid.patches.shape == (4, 3, 3, 3)
    for f in range(4):
        np.testing.assert_array_equal(grid.patches[f], kernel[..., f])
    assert grid.caption.startswith("all 4 filters: kernels on the 3 input channels shown as RGB")


def test_one_channel_input_gives_grayscale_patches_first_n():
    layer = layers.Conv2D(6, (3, 5), name="gray")
    _, info = single_layer(layer, (8, 8, 1))
    kernel, _ = known_weights(layer)
    grid = extract_filters(info, n=2)
    assert not grid.colour
    assert grid.patches.shape == (2, 3, 5)
    np.testing.assert_array_equal(grid.patches, np.moveaxis(kernel[:, :, 0, :2], -1, 0))
    assert grid.indices.tolist() == [0, 1]
    assert grid.caption.startswith("first 2 of 6 filters: kernels on the single input channel")


def test_deeper_layer_mean_and_max_norm_channel():
    layer = layers.Conv2D(3, 3, name="deep")
    _, info = single_layer(layer, (8, 8, 5))
    kernel = np.random.default_rng(0).normal(size=(3, 3, 5, 3)).astype(np.float32) * 0.1
    strongest = [4, 0, 2]
    for f, c in enumerate(strongest):
        kernel[:, :, c, f] *= 50
    layer.set_weights([kernel, np.zeros(3, np.float32)])

    mean = extract_filters(info, reduction="mean")
    np.testing.assert_allclose(mean.patches, np.moveaxis(kernel.mean(axis=2), -1, 0), rtol=1e-6)
    assert "averaged over the 5 input channels" in mean.caption

    best = extract_filters(info, reduction="max_norm_channel")
    assert best.source_channels.tolist() == strongest
    for f, c in enumerate(strongest):
        np.testing.assert_array_equal(best.patches[f], kernel[:, :, c, f])
    assert "largest L2 norm" in best.caption
    with pytest.raises(ConfigError):
        extract_filters(info, reduction="median")


def test_depthwise_kernels_per_output_channel_match_the_layer():
    layer = layers.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False, name="dw")
    model, info = single_layer(layer, (8, 8, 3))
    (kernel,) = known_weights(layer)  # (3, 3, 3 channels, 2 multiplier)
    grid = extract_filters(info)
    assert grid.reduction == "depthwise"
    assert grid.patches.shape == (6, 3, 3)
    np.testing.assert_array_equal(grid.patches[3], kernel[:, :, 1, 1])  # channel 1 * 2 + 1
    # The same layer as a full convolution with these kernels on the block diagonal.
    full = np.zeros((3, 3, 3, 6), np.float32)
    for out in range(6):
        full[:, :, out // 2, out] = grid.patches[out]
    x = np.random.default_rng(1).random((1, 8, 8, 3), dtype=np.float32)
    conv = layers.Conv2D(6, 3, use_bias=False)
    conv.build((None, 8, 8, 3))
    conv.set_weights([full])
    np.testing.assert_allclose(conv(x), model(x), rtol=1e-5, atol=1e-4)


def test_separable_effective_kernel_is_the_layer():
    layer = layers.SeparableConv2D(4, 3, depth_multiplier=2, name="sep")
    model, info = single_layer(layer, (8, 8, 3))
    rng = np.random.default_rng(2)
    layer.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in layer.get_weights()])
    effective = full_kernel(info)
    assert effective.shape == (3, 3, 3, 4)
    conv = layers.Conv2D(4, 3)
    conv.build((None, 8, 8, 3))
    conv.set_weights([effective, layer.get_weights()[2]])
    x = rng.random((2, 8, 8, 3), dtype=np.float32)
    np.testing.assert_allclose(conv(x), model(x), rtol=1e-4, atol=1e-4)
    grid = extract_filters(info)
    assert grid.colour
    np.testing.assert_allclose(grid.patches[1], effective[..., 1])
    assert "effective kernels (depthwise then pointwise)" in grid.caption


def test_transposed_conv_and_conv1d_and_conv3d_layouts():
    layer = layers.Conv2DTranspose(3, 2, name="up")
    _, info = single_layer(layer, (4, 4, 1))
    kernel, _ = known_weights(layer)  # (2, 2, 3 filters, 1 input channel)
    np.testing.assert_array_equal(extract_filters(info).patches[2], kernel[:, :, 2, 0])

    layer = layers.Conv1D(2, 4, name="c1")
    _, info = single_layer(layer, (10, 1))
    kernel, _ = known_weights(layer)  # (4, 1, 2)
    grid = extract_filters(info)
    assert grid.patches.shape == (2, 1, 4)
    np.testing.assert_array_equal(grid.patches[1, 0], kernel[:, 0, 1])

    layer = layers.Conv3D(2, 3, name="c3")
    _, info = single_layer(layer, (5, 5, 5, 1))
    kernel, _ = known_weights(layer)  # (3, 3, 3, 1, 2)
    grid = extract_filters(info)
    np.testing.assert_array_equal(grid.patches[0], kernel[1, :, :, 0, 0])
    assert "middle depth slice 1 of 3" in grid.caption


def test_filter_norm_summary_over_all_filters():
    layer = layers.Conv2D(40, 3, name="many")
    _, info = single_layer(layer, (8, 8, 2))
    kernel, _ = known_weights(layer)
    summary = filter_norm_summary(info)
    expected = np.linalg.norm(kernel.reshape(-1, 40), axis=0)
    np.testing.assert_allclose(summary.norms, expected, rtol=1e-6)
    assert summary.norms.shape == (40,)
    assert summary.minimum == pytest.approx(expected.min(), rel=1e-6)
    assert summary.median == pytest.approx(np.median(expected), rel=1e-6)
    assert summary.maximum == pytest.approx(expected.max(), rel=1e-6)
    assert extract_filters(info).patches.shape == (32, 3, 3)  # default n = 32 of 40
