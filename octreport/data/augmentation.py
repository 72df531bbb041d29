"""Augmentation plausible for B-scans, applied to training batches only.

Horizontal flips (a B-scan's left/right depends on the eye and scan direction), small shifts and
zooms, brightness and contrast changes. Never a vertical flip: a retina is never upside down.
Training applies it to batches read from the disk cache of decoded images (after intensity
normalization), so every epoch sees new variants while each file is decoded only once.

Two optional parts make a model robust to how other devices export the same retina
(:class:`Augmentation`): a horizontal-only change of scale (exports differ in lateral sampling and
field of view: 512 to 1536 px for about the same width of retina) and a random gamma (exports
differ in their intensity curve, which the per-image percentile normalization, a linear map, cannot
undo).

This module holds the settings (no Keras, so configurations load without TensorFlow); the layers
are built in :mod:`octreport.data.augmentation_layers`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from octreport.errors import ConfigError

MAX_WIDTH_SCALE = 0.5
MAX_GAMMA = 1.0


@dataclass(frozen=True)
class Augmentation:
    """``width_scale``: the largest relative change of horizontal scale (0.2: the retina 80-120% as
    wide; 0: none). ``gamma``: the largest ``|ln(gamma)|`` of a random intensity curve
    ``x ** gamma`` on images in [0, 1] (0.3: gamma 0.74-1.35; 0: none)."""

    width_scale: float = 0.0
    gamma: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.width_scale <= MAX_WIDTH_SCALE:
            raise ConfigError(f"width-scale augmentation must be 0 to {MAX_WIDTH_SCALE}, got {self.width_scale}.")
        if not 0 <= self.gamma <= MAX_GAMMA:
            raise ConfigError(f"gamma augmentation must be 0 to {MAX_GAMMA}, got {self.gamma}.")

    def describe(self) -> str:
        parts = ["flips, shifts, zoom, brightness, contrast"]
        if self.width_scale:
            parts.append(f"horizontal scale ±{self.width_scale:.0%}")
        if self.gamma:
            parts.append(f"gamma {math.exp(-self.gamma):.2f}-{math.exp(self.gamma):.2f}")
        return ", ".join(parts)
