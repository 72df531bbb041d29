"""Mosaics: exact grid sizes, tiles from the right maps, readable tile sizes, speed."""

from __future__ import annotations

import time

import matplotlib
import numpy as np
import pytest

from octreport.drawing.mosaic import (
    DEFAULT_WIDTH_PX,
    colour_bar,
    feature_map_mosaic,
    filter_mosaic,
    mosaic_layout,
)
from octreport.errors import ConfigError


def reference_colours(values: np.ndarray, cmap: str) -> np.ndarray:
    """Colours straight from matplotlib, for values in [0, 1]."""
    rgba = matplotlib.colormaps[cmap](np.asarray(values, dtype=np.float64))
    return np.rint(np.asarray(rgba)[..., :3] * 255).astype(np.uint8)


def tile(mosaic: np.ndarray, layout, k: int) -> np.ndarray:
    y, x = layout.tile_origin(k)
    return mosaic[y : y + layout.tile_height, x : x + layout.tile_width]


def labels(n: int) -> list[str]:
    return [str(i) for i in range(n)]


def test_exact_shape_with_given_columns():
    maps = np.random.default_rng(0).random((10, 8, 8))
    mosaic = feature_map_mosaic(maps, labels(10), columns=4)
    # 8 px maps are enlarged 6x to 48 px tiles; 3 rows of (48 + 12 label) with 2 px gaps.
    assert mosaic.shape == (3 * 60 + 2 * 2, 4 * 48 + 3 * 2, 3)
    assert mosaic.dtype == np.uint8
    layout = mosaic_layout(10, 8, 8, columns=4)
    assert (layout.rows, layout.columns, layout.tile_height) == (3, 4, 48)
    assert layout.shape == mosaic.shape[:2]
    assert np.all(mosaic[:, 48:50] == 255)  # white gap between columns 0 and 1
    assert np.all(mosaic[-48:, 2 * 50 :] == 255)  # empty cells of the last row (tiles 10, 11)


def test_large_maps_are_shrunk_and_fit_an_a4_width():
    layout = mosaic_layout(64, 112, 112)
    assert (layout.tile_height, layout.tile_width) == (56, 56)  # block mean over 2 x 2
    assert (layout.rows, layout.columns) == (4, 16)  # 17 fit; balanced to 4 rows of 16
    assert layout.shape[1] <= DEFAULT_WIDTH_PX
    mosaic = feature_map_mosaic(np.random.default_rng(0).random((64, 112, 112)), labels(64))
    assert mosaic.shape[:2] == layout.shape


def test_tiny_maps_are_enlarged_to_be_visible():
    assert mosaic_layout(4, 3, 3).tile_height == 48
    assert mosaic_layout(4, 7, 7).tile_height == 49
    strip = mosaic_layout(4, 1, 100)  # a Conv1D strip: thin side repeated
    assert (strip.tile_height, strip.tile_width) == (12, 50)


def test_tiles_come_from_the_right_maps_in_order():
    n = 12
    maps = np.stack([np.full((5, 5), float(k)) for k in range(n)])
    mosaic = feature_map_mosaic(maps, labels(n), scale="shared", columns=5)
    layout = mosaic_layout(n, 5, 5, columns=5)
    expected = reference_colours(np.arange(n) / (n - 1), "viridis")
    centres = np.array([tile(mosaic, layout, k)[layout.tile_height // 2, layout.tile_width // 2]
                        for k in range(n)])
    np.testing.assert_allclose(centres, expected, atol=1)
    assert np.all(np.diff(centres[:, 1].astype(int)) > 0)  # viridis green rises with the value
    for k in range(n):  # every pixel of a tile has its map's colour
        assert np.all(tile(mosaic, layout, k) == centres[k])


def test_each_map_scaled_from_its_own_min_to_max():
    rng = np.random.default_rng(3)
    maps = rng.normal(size=(3, 6, 6)) * np.array([1, 10, 100])[:, None, None]
    mosaic = feature_map_mosaic(maps, labels(3), cmap="magma")
    layout = mosaic_layout(3, 6, 6)
    for k in range(3):
        unit = (maps[k] - maps[k].min()) / (maps[k].max() - maps[k].min())
        up = np.repeat(np.repeat(unit, 8, axis=0), 8, axis=1)  # 6 px -> 48 px
        np.testing.assert_allclose(tile(mosaic, layout, k), reference_colours(up, "magma"), atol=1)


def test_block_mean_downsampling():
    block = np.kron(np.array([[0.0, 1.0], [0.5, 0.25]]), np.ones((4, 4)))  # 8x8, four blocks
    maps = np.stack([block, block])
    mosaic = feature_map_mosaic(maps, None, cmap="gray", min_tile=2, max_tile=2)
    layout = mosaic_layout(2, 8, 8, min_tile=2, max_tile=2, label_height=0)
    assert (layout.tile_height, layout.tile_width) == (2, 2)
    np.testing.assert_allclose(tile(mosaic, layout, 1)[..., 0],
                               np.rint(np.array([[0.0, 1.0], [0.5, 0.25]]) * 255), atol=1)


def test_constant_and_nan_maps_do_not_break():
    maps = np.stack([np.zeros((4, 4)), np.full((4, 4), np.nan), np.eye(4)])
    mosaic = feature_map_mosaic(maps, labels(3))
    layout = mosaic_layout(3, 4, 4)
    lowest = reference_colours(np.array([0.0]), "viridis")[0]
    assert np.all(tile(mosaic, layout, 0) == lowest)
    assert np.all(tile(mosaic, layout, 1) == lowest)


def test_labels_are_drawn_under_the_tiles():
    maps = np.zeros((2, 8, 8))
    with_labels = feature_map_mosaic(maps, ["17", "4"])
    layout = mosaic_layout(2, 8, 8)
    strip = with_labels[layout.tile_height : layout.tile_height + layout.label_height]
    assert np.any(strip[:, : layout.tile_width] < 128)  # dark text under tile 0
    without = feature_map_mosaic(maps, None)
    assert without.shape[0] == layout.tile_height
    with pytest.raises(ValueError):
        feature_map_mosaic(maps, ["only one"])


def test_filter_mosaic_signed_and_colour():
    patch = np.array([[-2.0, 0.0, 1.0]] * 3)
    mosaic = filter_mosaic(patch[None], ["0"], columns=1)
    layout = mosaic_layout(1, 3, 3)
    expected = reference_colours(np.array([0.0, 0.5, 0.75]), "RdBu_r")  # blue, white, light red
    row = tile(mosaic, layout, 0)[0, ::16]
    np.testing.assert_allclose(row, expected, atol=1)

    colour = np.zeros((2, 3, 3, 3))
    colour[0, 0, 0] = [1.0, 0.0, 0.5]
    colour[1] = 7.0  # constant patch: mid grey, no NaN
    mosaic = filter_mosaic(colour, labels(2))
    layout = mosaic_layout(2, 3, 3)
    np.testing.assert_array_equal(tile(mosaic, layout, 0)[0, 0], [255, 0, 128])
    np.testing.assert_array_equal(tile(mosaic, layout, 0)[-1, -1], [0, 0, 0])
    assert np.all(tile(mosaic, layout, 1) == 128)


def test_colour_bar_and_bad_options():
    bar = colour_bar("viridis", width=100, height=5)
    assert bar.shape == (5, 100, 3)
    np.testing.assert_allclose(bar[0, [0, -1]], reference_colours(np.array([0.0, 1.0]), "viridis"),
                               atol=1)
    with pytest.raises(ConfigError, match="Unknown colour map"):
        feature_map_mosaic(np.zeros((1, 4, 4)), None, cmap="no_such_map")
    with pytest.raises(ConfigError):
        feature_map_mosaic(np.zeros((1, 4, 4)), None, scale="global")
    with pytest.raises(ConfigError):
        mosaic_layout(0, 4, 4)


def test_default_report_grids_are_fast():
    rng = np.random.default_rng(0)
    sizes = (128, 64, 32, 16)  # the default network's four conv layers on 128 x 128 scans
    start = time.perf_counter()
    for size in sizes:
        for _image in range(8):
            feature_map_mosaic(rng.random((32, size, size), dtype=np.float32), labels(32))
        filter_mosaic(rng.normal(size=(32, 3, 3)), labels(32))
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, f"36 mosaics took {elapsed:.2f} s"


def test_image_patch_mosaic_puts_k_patches_per_row_grey_as_grey_and_padding_marked():
    from octreport.drawing.mosaic import OUTSIDE_COLOUR, image_patch_mosaic

    patches = np.zeros((6, 4, 4, 1), np.float32)
    patches[:, :, :, 0] = np.linspace(0, 1, 6)[:, None, None]
    patches[5, 0, 0, 0] = np.nan
    image = image_patch_mosaic(patches, None, columns=3, min_tile=4, max_tile=4, separator=1, label_height=0)
    assert image.shape == (2 * 4 + 1, 3 * 4 + 2, 3)
    assert (image[0, 0] == 0).all() and (image[5, 5] == [204, 204, 204]).all()  # tile 4 (row 2, column 2): 0.8
    assert tuple(image[5, 10]) == OUTSIDE_COLOUR and (image[8, 13] == 255).all()
