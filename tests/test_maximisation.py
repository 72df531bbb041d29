"""Activation maximisation on a constructed detector: the optimised input shows its pattern."""

import keras
import numpy as np
import pytest

from octreport.engine.layers import discover_conv_layers
from octreport.engine.maximisation import MaximisationSettings, maximise_channels
from octreport.engine.receptive_field import receptive_fields
from octreport.errors import ConfigError

CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.float32)
BAR = np.array([[1, 1, 1], [0, 0, 0], [0, 0, 0]], np.float32)


def detector_model():
    inputs = keras.Input((12, 12, 1))
    conv = keras.layers.Conv2D(2, 3, activation="relu", name="detector")
    x = conv(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalMaxPooling2D()(x)))
    kernel = np.stack([CROSS - CROSS.mean(), BAR - BAR.mean()], -1)[:, :, None, :]
    conv.kernel.assign(kernel)
    conv.bias.assign([0.0, 0.0])
    return model


def test_maximised_input_correlates_with_the_kernel_pattern_and_is_seeded():
    model = detector_model()
    layers = discover_conv_layers(model)
    field = receptive_fields(model, layers)[0]
    settings = MaximisationSettings(steps=24, jitter=0, scale=0.0)
    result = maximise_channels(model, layers[0], [0, 1], field, settings)
    assert result.images.shape == (2, 3, 3, 1)  # the centre position's 3x3 field, one channel
    assert (result.images >= 0).all() and (result.images <= 1).all()
    for image, pattern in zip(result.images, (CROSS, BAR)):
        assert np.corrcoef(image[..., 0].ravel(), pattern.ravel())[0, 1] > 0.9
    assert (result.activation > result.start_activation + 1).all()
    again = maximise_channels(model, layers[0], [0, 1], field, settings)
    np.testing.assert_array_equal(result.images, again.images)
    assert "grayscale" in result.caption


def test_jitter_is_capped_by_the_field_scaling_keeps_the_pattern_and_bad_settings_are_refused():
    model = detector_model()
    layers = discover_conv_layers(model)
    result = maximise_channels(model, layers[0], [0], receptive_fields(model, layers)[0],
                               MaximisationSettings(steps=32, jitter=2, scale=0.05, seed=3))
    assert "jitter 0 px" in result.caption  # a 3x3 field: an eighth of it is under one pixel
    assert np.corrcoef(result.images[0, ..., 0].ravel(), CROSS.ravel())[0, 1] > 0.8
    with pytest.raises(ConfigError):
        MaximisationSettings(steps=0)
    with pytest.raises(ConfigError, match="No channel"):
        maximise_channels(model, layers[0], [], None)
