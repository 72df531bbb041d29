"""How images are turned into model input: a small description saved beside every model."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from octreport.errors import ConfigError

ASPECT_MODES = ("stretch", "pad", "crop")
NORMALIZATION_MODES = ("none", "percentile")
PERCENTILE_RANGE = (1.0, 99.0)
"""``percentile`` normalization maps these percentiles of each image to 0 and 1."""


@dataclass(frozen=True)
class Preprocessing:
    """Decode to ``channels``, fit to ``height`` x ``width`` and scale intensities to [0, 1].

    ``aspect``: ``stretch`` resizes to the target size whatever the aspect ratio; ``pad`` keeps the
    aspect ratio and pads with black; ``crop`` keeps it and cuts the centre out of the wider side.

    ``normalization``: ``none`` keeps the file's intensities (0..255 becomes 0..1); ``percentile``
    stretches each image so that its 1st percentile becomes 0 and its 99th becomes 1 (clipped), so
    scans exported darker or brighter look alike to the model while values stay in [0, 1] (the
    augmentation and the report's image figures rely on that range).
    """

    height: int = 128
    width: int = 128
    channels: int = 1
    aspect: str = "stretch"
    normalization: str = "none"

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 (grayscale) or 3 (RGB), got {self.channels}.")
        if min(self.height, self.width) < 8:
            raise ConfigError(f"image size must be at least 8x8 pixels, got {self.height}x{self.width}.")
        if self.aspect not in ASPECT_MODES:
            raise ConfigError(f"aspect must be one of {', '.join(ASPECT_MODES)}, got '{self.aspect}'.")
        if self.normalization not in NORMALIZATION_MODES:
            raise ConfigError(
                f"normalization must be one of {', '.join(NORMALIZATION_MODES)}, got '{self.normalization}'."
            )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)

    def describe(self) -> str:
        colour = "grayscale" if self.channels == 1 else "RGB"
        if self.normalization == "percentile":
            low, high = PERCENTILE_RANGE
            scaling = f"intensities scaled per image from the {low:g}st-{high:g}th percentile to [0, 1]"
        else:
            scaling = "intensities scaled to [0, 1]"
        return f"{colour}, {self.height}x{self.width} px ({self.aspect} to fit), {scaling}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessing":
        """Sidecars written before ``normalization`` existed load with ``none``, as they were trained."""
        keys = ("height", "width", "channels", "aspect", "normalization")
        return cls(**{key: data[key] for key in keys if key in data})
