"""Heat maps (Grad-CAM, occlusion) laid over the image they explain, as RGB uint8 arrays.

The scan is shown in grey (or as it is, for a colour image) and the heat map, colour-mapped with
a matplotlib lookup table (binned as in :mod:`octreport.drawing.mosaic`), is blended on top with
a constant ``alpha``: ``out = (1 - alpha) * image + alpha * colour(heat)``, rounded. Built with
NumPy and PIL; nothing is saved or shown here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from octreport.drawing.mosaic import BACKGROUND, LABEL_COLOUR, colormap_lut, colour_bar
from octreport.errors import ConfigError

DEFAULT_CMAP = "jet"
DEFAULT_ALPHA = 0.45
MIN_SIZE_PX = 192  # small model inputs are enlarged to at least this on their longer side
BAR_GAP_PX = 4
BAR_HEIGHT_PX = 10
LABEL_HEIGHT_PX = 14


def _unit(values: Any) -> np.ndarray:
    values = np.asarray(values, dtype=np.float32)
    return np.clip(np.where(np.isfinite(values), values, np.float32(0.0)), 0.0, 1.0)


def _grey_rgb(image: Any) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] from (H, W), (H, W, 1) or (H, W, 3) values in [0, 1]."""
    image = _unit(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        return np.repeat(image[..., np.newaxis], 3, axis=-1)
    if image.ndim == 3 and image.shape[-1] == 3:
        return image
    raise ValueError(f"Expected an image of shape (H, W), (H, W, 1) or (H, W, 3), got {image.shape}.")


def _colours(unit: np.ndarray, cmap: str) -> np.ndarray:
    lut = colormap_lut(cmap)
    index = np.minimum((unit * lut.shape[0]).astype(np.intp), lut.shape[0] - 1)
    return lut[index]


def scale_heatmap(values: Any) -> np.ndarray:
    """A signed map (an occlusion drop) as float32 in [0, 1] for drawing: negative values and
    NaN become 0, the rest is divided by the maximum (an all-zero map stays 0)."""
    values = np.asarray(values, dtype=np.float32)
    values = np.where(np.isfinite(values), np.maximum(values, 0.0), np.float32(0.0))
    peak = float(values.max()) if values.size else 0.0
    return values / peak if peak > 0 else np.zeros_like(values)


def heatmap_overlay(
    image: Any, heatmap: Any, cmap: str = DEFAULT_CMAP, alpha: float = DEFAULT_ALPHA
) -> np.ndarray:
    """(H, W, 3) uint8: ``image`` ((H, W[, 1]) grey or (H, W, 3) RGB, values in [0, 1]) with
    ``heatmap`` ((H, W) in [0, 1], clipped) blended on top in ``cmap`` with weight ``alpha``."""
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must lie in [0, 1], got {alpha}.")
    base = _grey_rgb(image)
    heat = _unit(heatmap)
    if heat.shape != base.shape[:2]:
        raise ValueError(
            f"Heat map of shape {heat.shape} does not fit an image of shape {base.shape[:2]}."
        )
    blended = (1.0 - alpha) * (base * 255.0) + alpha * _colours(heat, cmap).astype(np.float32)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def _resize(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of (H, W) or (H, W, C) float values to ``size`` = (height, width)."""
    from PIL import Image

    if values.shape[:2] == size:
        return values
    planes = values[..., np.newaxis] if values.ndim == 2 else values
    out = np.stack([
        np.asarray(Image.fromarray(np.ascontiguousarray(planes[..., c], np.float32))
                   .resize((size[1], size[0]), Image.Resampling.BILINEAR))
        for c in range(planes.shape[-1])
    ], axis=-1)
    return out[..., 0] if values.ndim == 2 else out


@lru_cache(maxsize=1)
def _font() -> Any:
    from PIL import ImageFont

    return ImageFont.load_default()


def overlay_with_colour_bar(
    image: Any,
    heatmap: Any,
    cmap: str = DEFAULT_CMAP,
    alpha: float = DEFAULT_ALPHA,
    *,
    labels: Sequence[str] = ("low", "high"),
    min_size: int = MIN_SIZE_PX,
) -> np.ndarray:
    """The overlay above a colour bar of ``cmap`` with ``labels`` under its two ends, as one
    uint8 RGB image on a white background.

    An image whose longer side is under ``min_size`` pixels is first enlarged (image and heat
    map, bilinear) by the smallest whole factor that reaches it, so small model inputs stay
    readable in the report. Height: overlay + 4 px gap + 10 px bar + 14 px label strip.
    """
    if len(labels) != 2:
        raise ValueError(f"Expected two labels (low end, high end), got {len(labels)}.")
    base = _grey_rgb(image)
    heat = _unit(heatmap)
    height, width = base.shape[:2]
    factor = max(1, math.ceil(min_size / max(height, width)))
    if factor > 1:
        size = (height * factor, width * factor)
        base, heat = _unit(_resize(base, size)), _unit(_resize(heat, size))
    top = heatmap_overlay(base, heat, cmap, alpha)
    out_h, out_w = top.shape[:2]
    canvas = np.full((out_h + BAR_GAP_PX + BAR_HEIGHT_PX + LABEL_HEIGHT_PX, out_w, 3),
                     BACKGROUND, np.uint8)
    canvas[:out_h] = top
    bar_top = out_h + BAR_GAP_PX
    canvas[bar_top : bar_top + BAR_HEIGHT_PX] = colour_bar(cmap, max(2, out_w), BAR_HEIGHT_PX)[:, :out_w]
    from PIL import Image, ImageDraw

    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    font = _font()
    text_y = bar_top + BAR_HEIGHT_PX + 1
    low, high = labels
    draw.text((0, text_y), low, fill=LABEL_COLOUR, font=font)
    draw.text((max(0, out_w - int(draw.textlength(high, font=font))), text_y), high,
              fill=LABEL_COLOUR, font=font)
    return np.array(picture)
