"""Heat-map overlays: shapes, colours at the extremes, alpha, the colour bar strip."""

from __future__ import annotations

import numpy as np
import pytest

from octreport.drawing.mosaic import colormap_lut
from octreport.drawing.overlay import (
    BAR_GAP_PX,
    BAR_HEIGHT_PX,
    LABEL_HEIGHT_PX,
    heatmap_overlay,
    overlay_with_colour_bar,
    scale_heatmap,
)
from octreport.errors import ConfigError


def scan_and_heat(h: int = 20, w: int = 30):
    rng = np.random.default_rng(0)
    image = rng.random((h, w), dtype=np.float32)
    heat = np.zeros((h, w), np.float32)
    heat[5, 7] = 1.0
    heat[10:12, 3:6] = 0.5
    return image, heat


@pytest.mark.parametrize("cmap", ["jet", "inferno"])
def test_hottest_pixel_gets_the_top_colour(cmap):
    image, heat = scan_and_heat()
    full = heatmap_overlay(image, heat, cmap, alpha=1.0)
    assert full.shape == (20, 30, 3) and full.dtype == np.uint8
    lut = colormap_lut(cmap)
    np.testing.assert_array_equal(full[5, 7], lut[-1])
    np.testing.assert_array_equal(full[0, 0], lut[0])
    blended = heatmap_overlay(image, heat, cmap, alpha=0.45)
    expected = np.rint(0.55 * image[5, 7] * 255 + 0.45 * lut[-1].astype(np.float32))
    np.testing.assert_array_equal(blended[5, 7], expected.astype(np.uint8))


def test_alpha_zero_is_the_grey_image_and_colour_images_pass_through():
    image, heat = scan_and_heat()
    grey = np.rint(image * 255).astype(np.uint8)
    np.testing.assert_array_equal(heatmap_overlay(image, heat, alpha=0.0), np.stack([grey] * 3, -1))
    np.testing.assert_array_equal(heatmap_overlay(image[..., None], heat, alpha=0.0),
                                  np.stack([grey] * 3, -1))
    rgb = np.stack([image, 1 - image, image * 0], axis=-1)
    np.testing.assert_array_equal(heatmap_overlay(rgb, heat, alpha=0.0),
                                  np.rint(rgb * 255).astype(np.uint8))


def test_colour_bar_strip_and_enlarging_small_inputs():
    image, heat = scan_and_heat()  # 20 x 30: enlarged by 7 to 140 x 210 (>= 192 px)
    out = overlay_with_colour_bar(image, heat, "inferno")
    assert out.shape == (140 + BAR_GAP_PX + BAR_HEIGHT_PX + LABEL_HEIGHT_PX, 210, 3)
    bar = out[140 + BAR_GAP_PX : 140 + BAR_GAP_PX + BAR_HEIGHT_PX]
    lut = colormap_lut("inferno")
    np.testing.assert_array_equal(bar[:, 0], np.broadcast_to(lut[0], (BAR_HEIGHT_PX, 3)))
    np.testing.assert_array_equal(bar[:, -1], np.broadcast_to(lut[-1], (BAR_HEIGHT_PX, 3)))
    labels = out[-LABEL_HEIGHT_PX:]
    assert (labels[:, :40] < 128).any() and (labels[:, -40:] < 128).any()  # "low", "high"
    assert (labels[:, 80:130] == 255).all()
    big = np.zeros((200, 256), np.float32)
    strip = BAR_GAP_PX + BAR_HEIGHT_PX + LABEL_HEIGHT_PX
    assert overlay_with_colour_bar(big, big).shape[:2] == (200 + strip, 256)  # not enlarged


def test_scale_heatmap_and_bad_inputs():
    np.testing.assert_allclose(scale_heatmap(np.array([[-1.0, 0.5], [np.nan, 2.0]])),
                               [[0, 0.25], [0, 1]])
    assert not scale_heatmap(np.full((2, 2), -3.0)).any()
    image, heat = scan_and_heat()
    with pytest.raises(ValueError, match="does not fit"):
        heatmap_overlay(image, heat[:5])
    with pytest.raises(ConfigError, match="alpha"):
        heatmap_overlay(image, heat, alpha=1.5)
    with pytest.raises(ConfigError, match="colour map"):
        heatmap_overlay(image, heat, cmap="nope")
