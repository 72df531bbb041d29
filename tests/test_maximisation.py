"""Activation maximisation on a constructed detector: the optimised input shows its pattern."""

import keras
import numpy as np
import pytest

from octreport.engine.activations import cached_extractor_model
from octreport.engine.layers import discover_conv_layers
from octreport.engine.maximisation import MaximisationSettings, maximise_channels, working_canvas
from octreport.engine.receptive_field import ReceptiveField, receptive_fields
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


def strided_model():
    inputs = keras.Input((32, 48, 1))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="stem")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", name="second")(x)
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))


def test_the_window_is_the_receptive_field_with_a_margin_and_gives_the_whole_images_activation():
    keras.utils.set_random_seed(3)
    model = strided_model()
    layers = discover_conv_layers(model)
    second = layers[1]
    field = receptive_fields(model, layers)[1]  # 7 pixels, jump 2
    extractor = cached_extractor_model(model, [second])
    canvas = working_canvas(extractor, second, field, (32, 48, 1), (8, 12), jitter=1)
    (top, left), (h, w) = canvas.offset, canvas.size
    assert h < 32 and w < 48 and top % 2 == 0 and left % 2 == 0
    (first_row, last_row), (first_col, last_col) = field.window((8, 12))
    assert top <= first_row - 3 and top + h >= last_row + 3 and left <= first_col - 3 and left + w >= last_col + 3
    assert canvas.valid[canvas.target] and not canvas.valid.all()  # the window's edge positions are not the image's

    settings = MaximisationSettings(steps=6, jitter=1, seed=2)
    result = maximise_channels(model, second, [0, 1, 2, 3], field, settings)
    assert result.images.shape == (4, 7, 7, 1)
    # The optimised crop, put back at its place in a grey image, gives the whole model the same
    # activation at the centre: the window computed what the whole image would have.
    (r0, r1), (c0, c1) = field.window((8, 12))
    whole = np.full((4, 32, 48, 1), 0.5, np.float32)
    whole[:, r0:r1, c0:c1] = result.images
    maps = np.asarray(extractor(whole))  # (all 4 filters are on at the centre of this seed's start)
    np.testing.assert_allclose(maps[np.arange(4), 8, 12, np.arange(4)], result.activation, rtol=1e-4, atol=1e-5)


def test_an_unknown_field_or_a_window_as_large_as_the_image_optimises_the_whole_image():
    model = strided_model()
    layers = discover_conv_layers(model)
    extractor = cached_extractor_model(model, [layers[1]])
    for field in (None, ReceptiveField((64, 64), (2, 2), (0.5, 0.5))):
        canvas = working_canvas(extractor, layers[1], field, (32, 48, 1), (8, 12), jitter=1)
        assert canvas.extractor is extractor and canvas.size == (32, 48) and canvas.offset == (0, 0) and canvas.valid.all()


def test_a_layer_inside_a_nested_backbone_is_optimised_on_a_window_too():
    keras.utils.set_random_seed(4)
    backbone = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
                                 keras.layers.Conv2D(4, 3, strides=2, padding="same")])
    inputs = keras.Input((32, 32, 1))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(backbone(inputs))))
    layers = discover_conv_layers(model)
    fields = receptive_fields(model, layers)
    canvas = working_canvas(cached_extractor_model(model, [layers[1]]), layers[1], fields[1], (32, 32, 1), (8, 8), 0)
    assert canvas.size == (10, 10) and canvas.offset == (12, 12) and canvas.target == (2, 2)
    result = maximise_channels(model, layers[1], [0, 1], fields[1], MaximisationSettings(steps=3))
    assert result.images.shape == (2, 5, 5, 1) and "10x10 window" in result.caption


def test_a_report_maximises_its_layers_two_at_a_time_with_the_results_of_one_at_a_time():
    from octreport.engine.visuals import _maximise_layers

    inputs = keras.Input((24, 24, 1))
    x = inputs
    for k in range(4):
        x = keras.layers.Conv2D(4, 3, activation="relu", name=f"conv{k}")(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    layers = discover_conv_layers(model)
    jobs = [(info, field, np.arange(3)) for info, field in zip(layers, receptive_fields(model, layers))]
    settings = MaximisationSettings(steps=6, seed=3)
    together = _maximise_layers(model, jobs, settings, (24, 24, 1), None, "")
    for info, field, channels in jobs:
        alone = maximise_channels(model, info, channels, field, settings)
        np.testing.assert_array_equal(together[id(info.layer)].images, alone.images)
        np.testing.assert_array_equal(together[id(info.layer)].activation, alone.activation)
