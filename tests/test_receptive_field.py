"""Receptive fields against values computed by hand (size, jump, start per axis)."""

import keras
import pytest

from octreport.engine.layers import discover_conv_layers
from octreport.engine.receptive_field import ReceptiveField, receptive_fields

L = keras.layers


def _fields(model):
    layers = discover_conv_layers(model)
    return {info.path: field for info, field in zip(layers, receptive_fields(model, layers))}


def test_stack_of_convs_and_pools_with_padding_stride_and_dilation():
    model = keras.Sequential([
        keras.Input((16, 16, 1)),
        L.Conv2D(2, 3, name="a"),                                   # 16 -> 14
        L.MaxPooling2D(2),                                          # 14 -> 7
        L.Conv2D(2, 3, padding="same", name="b"),                   # 7 -> 7, pad 1
        L.Conv2D(2, 3, dilation_rate=2, name="c"),                  # 7 -> 3, dilated kernel 5
        L.Conv2D(2, 3, strides=2, padding="same", name="d"),        # 3 -> 2, pad 1
        L.Flatten(), L.Dense(2),
    ])
    f = _fields(model)
    assert f["a"] == ReceptiveField((3, 3), (1, 1), (1.0, 1.0))
    assert f["b"] == ReceptiveField((8, 8), (2, 2), (1.5, 1.5))     # pool: 4, jump 2, start 1.5
    assert f["c"] == ReceptiveField((16, 16), (2, 2), (5.5, 5.5))
    assert f["d"] == ReceptiveField((20, 20), (4, 4), (5.5, 5.5))
    assert f["a"].window((0, 0)) == ((0, 3), (0, 3))
    assert f["b"].window((0, 0)) == ((-2, 6), (-2, 6))              # reaches into the padding
    assert f["d"].window((1, 1)) == ((0, 20), (0, 20))


def test_zero_padding_then_valid_equals_same_and_rectangular_kernels():
    model = keras.Sequential([
        keras.Input((12, 10, 1)),
        L.ZeroPadding2D(1), L.Conv2D(2, 3, name="padded"),
        L.Conv2D(2, (5, 1), strides=(1, 2), padding="same", name="tall"),  # width 10 -> 5: pad 0
        L.AveragePooling2D((2, 2), strides=(2, 2), padding="same"),
        L.Conv2D(2, 1, name="point"),
        L.GlobalAveragePooling2D(), L.Dense(2),
    ])
    f = _fields(model)
    assert f["padded"] == ReceptiveField((3, 3), (1, 1), (0.0, 0.0))
    assert f["tall"] == ReceptiveField((7, 3), (1, 2), (0.0, 0.0))
    # pool 2x2 stride 2 'same' on 12x5: height pad 0, width pad (3-1)*2+2-5 = 1 -> 0 before
    assert f["point"] == ReceptiveField((8, 5), (2, 4), (0.5, 1.0))


def test_nested_backbone_is_followed_and_branches_merge_as_the_union():
    inner = keras.Sequential([keras.Input((16, 16, 1)), L.Conv2D(2, 3, name="c1"), L.MaxPooling2D(2)], name="bb")
    x = keras.Input((16, 16, 1))
    y = inner(x)
    y = L.Conv2D(2, 3, name="c2")(y)
    wide = L.Conv2D(2, 5, padding="same", name="wide")(y)
    y = L.Add()([y, wide])
    y = L.Conv2D(2, 1, name="after")(y)
    model = keras.Model(x, L.Dense(2)(L.GlobalAveragePooling2D()(y)))
    f = _fields(model)
    assert f["bb/c1"] == ReceptiveField((3, 3), (1, 1), (1.0, 1.0))
    assert f["c2"] == ReceptiveField((8, 8), (2, 2), (3.5, 3.5))
    assert f["wide"] == ReceptiveField((16, 16), (2, 2), (3.5, 3.5))   # pad 2 cancels the centre shift
    assert f["after"] == f["wide"]                                      # the union of both branches


def test_transposed_convolution_makes_later_fields_unknown():
    model = keras.Sequential([
        keras.Input((8, 8, 1)), L.Conv2D(2, 3, name="a"), L.Conv2DTranspose(2, 3, strides=2, name="t"),
        L.Conv2D(2, 3, name="b"), L.GlobalAveragePooling2D(), L.Dense(2),
    ])
    f = _fields(model)
    assert f["a"] is not None
    assert f["t"] is None and f["b"] is None


@pytest.mark.parametrize("size", [3, 5])
def test_field_matches_the_gradient_support(size):
    """The pixels whose change moves one output are exactly the computed window."""
    import numpy as np
    import tensorflow as tf

    model = keras.Sequential([
        keras.Input((20, 20, 1)), L.Conv2D(2, size, padding="same", name="a"), L.MaxPooling2D(2),
        L.Conv2D(2, 3, strides=2, name="b"), L.Flatten(), L.Dense(2),
    ])
    info = discover_conv_layers(model)[1]
    field = receptive_fields(model, [info])[0]
    sub = keras.Model(model.inputs, info.layer.output)
    for layer in (model.layers[0], info.layer):
        layer.kernel.assign(np.ones(layer.kernel.shape, np.float32))
    x = tf.Variable(np.random.default_rng(0).uniform(0.5, 1, (1, 20, 20, 1)).astype(np.float32))
    with tf.GradientTape() as tape:
        out = sub(x)[0, 1, 2, 0]
    grad = tape.gradient(out, x).numpy()[0, :, :, 0]
    rows, cols = np.nonzero(grad)
    (r0, r1), (c0, c1) = field.window((1, 2))
    assert rows.min() >= max(r0, 0) and rows.max() < r1 and cols.min() >= max(c0, 0) and cols.max() < c1


def test_crop_field_takes_the_window_and_marks_the_padding():
    import numpy as np
    from octreport.engine.receptive_field import crop_field

    pixels = np.arange(36, dtype=np.float32).reshape(6, 6, 1)
    field = ReceptiveField((3, 3), (2, 2), (0.0, 1.0))  # a 'same' 3x3 stride-2 conv, shifted by a column
    inside = crop_field(pixels, field, (1, 1))
    assert inside[..., 0].tolist() == pixels[1:4, 2:5, 0].tolist()
    corner = crop_field(pixels, field, (0, 0))
    assert np.isnan(corner[0]).all() and corner[1:, :, 0].tolist() == pixels[0:2, 0:3, 0].tolist()
