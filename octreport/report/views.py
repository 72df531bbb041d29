"""The two building blocks of every page's context: a figure on the page and a labelled value."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FigureRef:
    """An image on the page: ``src`` is a ``data:`` URI (self-contained HTML) or a relative path
    into the assets folder. ``width_px``/``height_px`` are the image's pixel size."""

    src: str
    alt: str
    caption: str
    width_px: int
    height_px: int


@dataclass(frozen=True)
class KeyValue:
    label: str
    value: str
