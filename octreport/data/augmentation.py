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

Further optional parts imitate what differs between devices beyond the export (issue 26):
- ``field_of_view``: the retina narrower or wider in the frame: the scan shrunk horizontally into a
  wider frame whose sides are speckle background, or its centre cropped and stretched;
- ``vertical_shift`` and ``tilt``: the retina higher or lower in the frame, and its two sides at
  different heights (a sheared B-scan, as when the eye is off-axis);
- ``speckle`` and ``blur``: multiplicative speckle noise and a softer image, as devices differ in
  averaging and optics.
A 3-channel file of gray content needs no augmentation: a grayscale model decodes it to one channel.

This module holds the settings (no Keras, so configurations load without TensorFlow); the layers
are built in :mod:`octreport.data.augmentation_layers`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from octreport.errors import ConfigError

MAX_WIDTH_SCALE = 0.5
MAX_GAMMA = 1.0
MAX_FIELD_OF_VIEW = 1.0
MAX_SHIFT = 0.5
MAX_TILT = 0.5
MAX_SPECKLE = 1.0
MAX_BLUR = 4.0


@dataclass(frozen=True)
class Augmentation:
    """``width_scale``: the largest relative change of horizontal scale (0.2: the retina 80-120% as
    wide; 0: none). ``gamma``: the largest ``|ln(gamma)|`` of a random intensity curve
    ``x ** gamma`` on images in [0, 1] (0.3: gamma 0.74-1.35; 0: none).

    ``field_of_view``: the largest ``|ln(f)|`` of the horizontal factor ``f`` of the retina in its frame
    (0.3: f 0.74-1.35; ``f < 1`` shrinks it into a frame with speckle background at the sides, ``f > 1``
    crops its centre). ``vertical_shift``: the largest shift, as a share of the height. ``tilt``: the
    largest height difference between the left and right edges, as a share of the height.
    ``speckle``: the largest standard deviation of multiplicative noise ``x * (1 + s * N(0, 1))``.
    ``blur``: the sigma in pixels of the Gaussian blur mixed in (a random share of it per image).
    0 turns each off."""

    width_scale: float = 0.0
    gamma: float = 0.0
    field_of_view: float = 0.0
    vertical_shift: float = 0.0
    tilt: float = 0.0
    speckle: float = 0.0
    blur: float = 0.0

    def __post_init__(self) -> None:
        for name, label, largest in (
            ("width_scale", "width-scale", MAX_WIDTH_SCALE), ("gamma", "gamma", MAX_GAMMA),
            ("field_of_view", "field-of-view", MAX_FIELD_OF_VIEW), ("vertical_shift", "vertical-shift", MAX_SHIFT),
            ("tilt", "tilt", MAX_TILT), ("speckle", "speckle", MAX_SPECKLE), ("blur", "blur", MAX_BLUR),
        ):
            value = getattr(self, name)
            if not 0 <= value <= largest:
                raise ConfigError(f"{label} augmentation must be 0 to {largest}, got {value}.")

    @property
    def geometry(self) -> bool:
        """Whether the device geometry (field of view, vertical shift, tilt) is augmented."""
        return bool(self.field_of_view or self.vertical_shift or self.tilt)

    def describe(self) -> str:
        parts = ["flips, shifts, zoom, brightness, contrast"]
        if self.width_scale:
            parts.append(f"horizontal scale ±{self.width_scale:.0%}")
        if self.gamma:
            parts.append(f"gamma {math.exp(-self.gamma):.2f}-{math.exp(self.gamma):.2f}")
        if self.field_of_view:
            parts.append(f"field of view x{math.exp(-self.field_of_view):.2f}-{math.exp(self.field_of_view):.2f}")
        if self.vertical_shift:
            parts.append(f"vertical shift ±{self.vertical_shift:.0%}")
        if self.tilt:
            parts.append(f"tilt ±{self.tilt:.0%} of the height")
        if self.speckle:
            parts.append(f"speckle up to {self.speckle:.2f}")
        if self.blur:
            parts.append(f"blur up to {self.blur:g} px")
        return ", ".join(parts)
