"""Grids of feature maps and filters as one RGB image, built with NumPy.

A mosaic is a grid of equally sized tiles separated by plain gaps, each tile above a small
label strip. Tiles are resized by whole factors so that the grid stays readable on an A4 page:
maps larger than ``max_tile`` pixels are shrunk by block mean (each output pixel is the mean of
an f x f block), maps smaller than ``min_tile`` are enlarged by pixel repetition (nearest
neighbour). A very thin side (a 1 x L strip) is repeated to at least ``min_tile // 4`` pixels.
Colour maps come from ``matplotlib.colormaps`` as 256-entry lookup tables; no figure is made.
Labels are drawn with PIL's default font.

The result is a ``(height, width, 3)`` uint8 array; nothing is saved or shown here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from octreport.errors import ConfigError

DEFAULT_WIDTH_PX = 1000  # about the 180 mm text width of an A4 page at 140 dpi
MIN_TILE_PX = 48
MAX_TILE_PX = 96
SEPARATOR_PX = 2
LABEL_HEIGHT_PX = 12
BACKGROUND = 255  # white gaps and label strips
FILTER_BACKGROUND = 190  # grey, so that white (zero) filter weights do not melt into the gaps
LABEL_COLOUR = (40, 40, 40)
SCALES = ("per_map", "shared")


@dataclass(frozen=True)
class MosaicLayout:
    """Where the tiles of a mosaic go.

    Tile ``k`` is at row ``k // columns``, column ``k % columns``; its top-left pixel is
    :meth:`tile_origin`. Each cell is the tile, then ``label_height`` rows of label strip;
    cells are ``separator`` pixels apart. The last row may be partly empty.
    """

    count: int
    rows: int
    columns: int
    tile_height: int
    tile_width: int
    label_height: int
    separator: int

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the whole mosaic in pixels."""
        cell_h = self.tile_height + self.label_height
        return (
            self.rows * cell_h + (self.rows - 1) * self.separator,
            self.columns * self.tile_width + (self.columns - 1) * self.separator,
        )

    def tile_origin(self, k: int) -> tuple[int, int]:
        """(y, x) of the top-left pixel of tile ``k``."""
        row, col = divmod(k, self.columns)
        return (
            row * (self.tile_height + self.label_height + self.separator),
            col * (self.tile_width + self.separator),
        )


@dataclass(frozen=True)
class _Resize:
    down: int  # block-mean factor (1: none)
    up_h: int  # repetition factor along height (1: none)
    up_w: int  # repetition factor along width


def _plan_resize(height: int, width: int, min_tile: int, max_tile: int) -> _Resize:
    if not 1 <= min_tile <= max_tile:
        raise ConfigError(
            f"Tile sizes must satisfy 1 <= min_tile <= max_tile, got {min_tile}, {max_tile}."
        )
    size = max(height, width)
    down, up = 1, 1
    if size > max_tile:
        down = math.ceil(size / max_tile)
    elif size < min_tile:
        up = min(math.ceil(min_tile / size), max(1, max_tile // size))
    thin = max(1, min_tile // 4)
    h, w = math.ceil(height / down) * up, math.ceil(width / down) * up
    up_h = up * (math.ceil(thin / h) if h < thin else 1)
    up_w = up * (math.ceil(thin / w) if w < thin else 1)
    return _Resize(down, up_h, up_w)


def _resize(tiles: np.ndarray, plan: _Resize) -> np.ndarray:
    """Resize (n, H, W[, 3]) tiles by block mean then pixel repetition."""
    if plan.down > 1:
        f = plan.down
        n, h, w = tiles.shape[:3]
        pad = [(0, 0), (0, -h % f), (0, -w % f)] + [(0, 0)] * (tiles.ndim - 3)
        tiles = np.pad(tiles, pad, mode="edge")
        tiles = tiles.reshape(n, tiles.shape[1] // f, f, tiles.shape[2] // f, f, *tiles.shape[3:])
        tiles = tiles.mean(axis=(2, 4))
    if plan.up_h > 1:
        tiles = np.repeat(tiles, plan.up_h, axis=1)
    if plan.up_w > 1:
        tiles = np.repeat(tiles, plan.up_w, axis=2)
    return tiles


def mosaic_layout(
    count: int,
    map_height: int,
    map_width: int,
    columns: int | None = None,
    width_px: int = DEFAULT_WIDTH_PX,
    min_tile: int = MIN_TILE_PX,
    max_tile: int = MAX_TILE_PX,
    separator: int = SEPARATOR_PX,
    label_height: int = LABEL_HEIGHT_PX,
) -> MosaicLayout:
    """The layout of ``count`` maps of ``map_height x map_width`` pixels.

    Without ``columns``, as many columns as fit in ``width_px``, then balanced so that the
    rows are as even as possible (64 tiles in 17 possible columns: 4 rows of 16).
    """
    if count < 1:
        raise ConfigError("A mosaic needs at least one map.")
    plan = _plan_resize(map_height, map_width, min_tile, max_tile)
    tile_h = math.ceil(map_height / plan.down) * plan.up_h
    tile_w = math.ceil(map_width / plan.down) * plan.up_w
    if columns is None:
        fit = max(1, (width_px + separator) // (tile_w + separator))
        rows = math.ceil(count / fit)
        columns = math.ceil(count / rows)
    elif columns < 1:
        raise ConfigError(f"A mosaic needs at least one column, got {columns}.")
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    return MosaicLayout(count, rows, columns, tile_h, tile_w, label_height, separator)


@lru_cache(maxsize=32)
def colormap_lut(name: str) -> np.ndarray:
    """(N, 3) uint8 lookup table of a matplotlib colour map (N = its number of colours)."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError as exc:
        raise ConfigError(
            f"Unknown colour map {name!r}; use a matplotlib colour map name such as "
            "'viridis', 'magma', 'gray' or 'RdBu_r'."
        ) from exc
    lut = np.rint(cmap(np.arange(cmap.N))[:, :3] * 255).astype(np.uint8)
    lut.setflags(write=False)
    return lut


def _apply_lut(unit: np.ndarray, cmap: str) -> np.ndarray:
    """Map values in [0, 1] to RGB uint8, binned as matplotlib bins them (value * N, floor)."""
    lut = colormap_lut(cmap)
    size = lut.shape[0]
    index = np.minimum((np.clip(unit, 0.0, 1.0) * size).astype(np.intp), size - 1)
    return lut[index]


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float32)
    return np.where(np.isfinite(values), values, np.float32(0.0))


def normalize_maps(maps: np.ndarray, scale: str = "per_map") -> np.ndarray:
    """Scale (n, H, W) maps to [0, 1]: each from its own min to max (``"per_map"``) or all
    from the global min to max (``"shared"``). A constant map becomes 0; NaN and inf become 0."""
    if scale not in SCALES:
        raise ConfigError(f"Unknown scale {scale!r}; expected one of {', '.join(SCALES)}.")
    maps = _finite(maps)
    axes = (1, 2) if scale == "per_map" else None
    low = maps.min(axis=axes, keepdims=True)
    span = maps.max(axis=axes, keepdims=True) - low
    safe = np.where(span > 0, span, np.float32(1.0))
    return np.where(span > 0, (maps - low) / safe, np.float32(0.0))


def _check_labels(labels: Sequence[str] | None, count: int) -> None:
    if labels is not None and len(labels) != count:
        raise ValueError(f"Got {len(labels)} labels for {count} tiles.")


@lru_cache(maxsize=1)
def _font() -> Any:
    from PIL import ImageFont

    return ImageFont.load_default()


def _assemble(
    tiles: np.ndarray,
    labels: Sequence[str] | None,
    layout: MosaicLayout,
    background: int = BACKGROUND,
) -> np.ndarray:
    """Place (n, th, tw, 3) uint8 tiles on a plain canvas and draw the labels."""
    sep, label_h = layout.separator, layout.label_height
    cell_h = layout.tile_height + label_h + sep
    cell_w = layout.tile_width + sep
    cells = np.full((layout.rows * layout.columns, cell_h, cell_w, 3), background, np.uint8)
    cells[: layout.count, : layout.tile_height, : layout.tile_width] = tiles
    canvas = cells.reshape(layout.rows, layout.columns, cell_h, cell_w, 3)
    canvas = canvas.transpose(0, 2, 1, 3, 4).reshape(layout.rows * cell_h, layout.columns * cell_w, 3)
    height, width = layout.shape
    canvas = np.ascontiguousarray(canvas[:height, :width])
    if labels is None or label_h == 0:
        return canvas
    from PIL import Image, ImageDraw

    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    font = _font()
    for k, label in enumerate(labels):
        y, x = layout.tile_origin(k)
        offset = max(0, (layout.tile_width - int(draw.textlength(label, font=font))) // 2)
        draw.text((x + offset, y + layout.tile_height), label, fill=LABEL_COLOUR, font=font)
    return np.array(image)


def _layout_for(
    tiles: np.ndarray, columns: int | None, width_px: int, min_tile: int, max_tile: int,
    separator: int, label_height: int, labels: Sequence[str] | None,
) -> tuple[MosaicLayout, _Resize]:
    n, h, w = tiles.shape[:3]
    _check_labels(labels, n)
    layout = mosaic_layout(n, h, w, columns, width_px, min_tile, max_tile, separator,
                           label_height if labels is not None else 0)
    return layout, _plan_resize(h, w, min_tile, max_tile)


def feature_map_mosaic(
    maps: np.ndarray,
    labels: Sequence[str] | None,
    cmap: str = "viridis",
    *,
    scale: str = "per_map",
    columns: int | None = None,
    width_px: int = DEFAULT_WIDTH_PX,
    min_tile: int = MIN_TILE_PX,
    max_tile: int = MAX_TILE_PX,
    separator: int = SEPARATOR_PX,
    label_height: int = LABEL_HEIGHT_PX,
) -> np.ndarray:
    """One RGB uint8 image of (n, H, W) feature maps, each scaled and colour-mapped.

    ``scale="per_map"`` scales each map from its own min to max (a constant map shows the
    lowest colour); ``"shared"`` uses one min and max for all maps. ``labels`` (one per map,
    e.g. the channel index) are written under the tiles; ``None`` leaves no label strip.
    """
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"Expected maps of shape (n, H, W), got {maps.shape}.")
    layout, plan = _layout_for(maps, columns, width_px, min_tile, max_tile, separator,
                               label_height, labels)
    unit = _resize(normalize_maps(maps, scale), plan)
    return _assemble(_apply_lut(unit, cmap), labels, layout)


def filter_mosaic(
    patches: np.ndarray,
    labels: Sequence[str] | None,
    cmap: str = "RdBu_r",
    *,
    columns: int | None = None,
    width_px: int = DEFAULT_WIDTH_PX,
    min_tile: int = MIN_TILE_PX,
    max_tile: int = MAX_TILE_PX,
    separator: int = SEPARATOR_PX,
    label_height: int = LABEL_HEIGHT_PX,
) -> np.ndarray:
    """One RGB uint8 image of filter patches, as :class:`~octreport.engine.filters.FilterGrid`
    holds them.

    (n, kh, kw, 3) colour patches: each scaled from its own min to max over its three
    channels, shown as RGB. (n, kh, kw) patches: each scaled symmetrically around 0 by its own
    largest absolute weight, drawn with the diverging ``cmap`` (0 at its centre). Gaps and
    label strips are light grey, so that white (zero) weights stay visible at tile edges.
    """
    patches = _finite(patches)
    colour = patches.ndim == 4 and patches.shape[-1] == 3
    if not colour and patches.ndim != 3:
        raise ValueError(
            f"Expected patches of shape (n, kh, kw) or (n, kh, kw, 3), got {patches.shape}."
        )
    layout, plan = _layout_for(patches, columns, width_px, min_tile, max_tile, separator,
                               label_height, labels)
    if colour:
        low = patches.min(axis=(1, 2, 3), keepdims=True)
        span = patches.max(axis=(1, 2, 3), keepdims=True) - low
        unit = np.where(span > 0, (patches - low) / np.where(span > 0, span, 1), 0.5)
        tiles = np.rint(_resize(unit, plan) * 255).astype(np.uint8)
    else:
        peak = np.abs(patches).max(axis=(1, 2), keepdims=True)
        unit = 0.5 + 0.5 * patches / np.where(peak > 0, peak, 1)
        tiles = _apply_lut(_resize(unit, plan), cmap)
    return _assemble(tiles, labels, layout, FILTER_BACKGROUND)


def colour_bar(cmap: str = "viridis", width: int = 256, height: int = 12) -> np.ndarray:
    """A (height, width, 3) uint8 strip of the colour map, lowest value on the left."""
    if width < 2 or height < 1:
        raise ConfigError(f"A colour bar needs width >= 2 and height >= 1, got {width}x{height}.")
    row = _apply_lut(np.linspace(0.0, 1.0, width), cmap)
    return np.ascontiguousarray(np.broadcast_to(row, (height, width, 3)))


OUTSIDE_COLOUR = (214, 222, 236)  # pale blue: where a receptive field reaches into the padding


def image_patch_mosaic(
    patches: np.ndarray,
    labels: Sequence[str] | None,
    *,
    columns: int | None = None,
    width_px: int = DEFAULT_WIDTH_PX,
    min_tile: int = MIN_TILE_PX,
    max_tile: int = MAX_TILE_PX,
    separator: int = SEPARATOR_PX,
    label_height: int = LABEL_HEIGHT_PX,
) -> np.ndarray:
    """One RGB uint8 image of (n, h, w, C) image patches whose pixels lie in [0, 1] (model
    input), shown as they are (no rescaling, so brightness compares across tiles): one channel
    as grey, three as RGB. NaN pixels (outside the image) are pale blue. ``columns=k`` puts
    ``k`` patches per row (one filter's top patches per row)."""
    patches = np.asarray(patches, dtype=np.float32)
    if patches.ndim != 4 or patches.shape[-1] not in (1, 3):
        raise ValueError(f"Expected patches of shape (n, h, w, 1 or 3), got {patches.shape}.")
    layout, plan = _layout_for(patches, columns, width_px, min_tile, max_tile, separator, label_height, labels)
    resized = _resize(patches, plan)
    outside = np.isnan(resized).any(axis=-1)
    rgb = np.repeat(resized, 3, axis=-1) if resized.shape[-1] == 1 else resized
    tiles = np.rint(np.clip(np.nan_to_num(rgb, nan=0.0), 0, 1) * 255).astype(np.uint8)
    tiles[outside] = OUTSIDE_COLOUR
    return _assemble(tiles, labels, layout)
