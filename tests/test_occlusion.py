"""Occlusion sensitivity: the known region lights up, in a few batched forward calls."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from keras import layers

from octreport.engine.occlusion import box_starts, occlusion_map, scaled_patch
from octreport.errors import ConfigError, ModelError

ROWS, COLS = slice(8, 16), slice(16, 24)  # the region the hand-made model looks at


def region_model() -> keras.Model:
    """P(class 0) is high while the mean of rows 8-15, columns 16-23 of a 32x32 image is 1."""
    inputs = keras.Input((32, 32, 1))
    x = layers.Cropping2D(((8, 16), (16, 8)))(inputs)
    x = layers.GlobalAveragePooling2D()(x)
    head = layers.Dense(2, activation="softmax")
    model = keras.Model(inputs, head(x))
    head.set_weights([np.array([[8.0, -8.0]]), np.array([-4.0, 4.0])])
    return model


class CountingModel:
    """Calls through to a model and counts the calls."""

    def __init__(self, model: keras.Model) -> None:
        self.model, self.calls, self.inputs = model, 0, model.inputs

    def __call__(self, x, training=False):
        self.calls += 1
        return self.model(x, training=training)


def test_covering_the_known_region_kills_the_score_and_calls_are_batched():
    counting = CountingModel(region_model())
    result = occlusion_map(counting, np.ones((32, 32, 1), np.float32), 0, patch=8, stride=4,
                           batch_size=16)
    assert result.positions == 7 * 7 and (result.patch, result.stride) == (8, 4)
    assert counting.calls == result.forward_calls == math.ceil((result.positions + 1) / 16)
    assert result.base_probability == pytest.approx(1 / (1 + math.exp(-8)), rel=1e-5)
    y, x = np.unravel_index(result.heatmap.argmax(), result.heatmap.shape)
    assert ROWS.start <= y < ROWS.stop and COLS.start <= x < COLS.stop
    region = result.heatmap[ROWS, COLS]
    assert region.min() > 0.3 and result.heatmap.max() == pytest.approx(region.max())
    far = np.ones((32, 32), bool)
    far[ROWS.start - 7 : ROWS.stop + 7, COLS.start - 7 : COLS.stop + 7] = False
    assert np.all(result.heatmap[far] == 0)  # no box there touches the region
    assert result.heatmap.shape == (32, 32) and result.heatmap.dtype == np.float32
    assert "8 x 8-pixel box" in result.caption


def naive_heatmap(model, image, class_index, patch, stride, fill):
    """One model call per position, in plain loops."""
    h, w = image.shape[:2]
    base = float(model(image[None])[0, class_index])
    total, count = np.zeros((h, w)), np.zeros((h, w))
    for y in box_starts(h, patch, stride):
        for x in box_starts(w, patch, stride):
            copy = image.copy()
            copy[y : y + patch, x : x + patch] = fill
            drop = base - float(model(copy[None])[0, class_index])
            total[y : y + patch, x : x + patch] += drop
            count[y : y + patch, x : x + patch] += 1
    return total / count


def test_batched_map_equals_the_naive_loop_and_mean_fill():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((13, 11, 2))
    x = layers.Conv2D(3, 3, activation="relu")(inputs)
    model = keras.Model(inputs, layers.Dense(3, activation="softmax")(layers.Flatten()(x)))
    image = np.random.default_rng(0).random((13, 11, 2), dtype=np.float32)
    result = occlusion_map(model, image, 2, patch=4, stride=3, fill="mean", batch_size=5)
    fill = image.mean(axis=(0, 1))
    assert result.fill == pytest.approx(tuple(fill))
    np.testing.assert_allclose(result.heatmap, naive_heatmap(model, image, 2, 4, 3, fill), atol=1e-5)


def test_patch_on_the_original_scale_and_box_positions():
    assert scaled_patch(20, 10, 1.0) == (20, 10)
    assert scaled_patch(20, 10, 150 / 512) == (6, 3)  # a 512-px B-scan shown to a 150-px model
    assert scaled_patch(20, 10, 0.05) == (2, 1)  # at least 2 px, stride at least 1
    assert box_starts(30, 8, 10) == [0, 10, 20, 22]  # one more to reach the edge
    assert box_starts(32, 8, 4) == [0, 4, 8, 12, 16, 20, 24]
    assert box_starts(5, 8, 3) == [0]  # a box larger than the image covers all of it
    result = occlusion_map(region_model(), np.ones((32, 32, 1), np.float32), 0,
                           original_scale=0.4, batch_size=64)
    assert (result.patch, result.stride) == (8, 4) and result.forward_calls == 1
    assert "20 x 20 px with stride 10 on the original image scale" in result.caption


def test_wrong_inputs_are_refused():
    model, image = region_model(), np.ones((32, 32, 1), np.float32)
    with pytest.raises(ConfigError, match="out of range"):
        occlusion_map(model, image, 2)
    with pytest.raises(ConfigError, match="original_scale"):
        occlusion_map(model, image, 0, original_scale=0.0)
    with pytest.raises(ConfigError, match="fill"):
        occlusion_map(model, image, 0, fill="median")
    with pytest.raises(ModelError, match="32x32x1"):
        occlusion_map(model, np.ones((16, 16, 1)), 0)


def test_a_keras_model_runs_compiled_with_the_same_map_as_eager_calls():
    model = region_model()
    image = np.ones((32, 32, 1), np.float32)
    compiled = occlusion_map(model, image, 0, patch=4, stride=4, batch_size=16)
    eager = occlusion_map(CountingModel(model), image, 0, patch=4, stride=4, batch_size=16)
    np.testing.assert_allclose(compiled.heatmap, eager.heatmap, atol=1e-6)
    assert compiled.forward_calls == eager.forward_calls == math.ceil((64 + 1) / 16)
