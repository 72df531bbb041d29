"""How images are turned into model input: a small description saved beside every model."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from octreport.errors import ConfigError

ASPECT_MODES = ("stretch", "pad", "crop")


@dataclass(frozen=True)
class Preprocessing:
    """Decode to ``channels``, fit to ``height`` x ``width`` and scale intensities to [0, 1].

    ``aspect``: ``stretch`` resizes to the target size whatever the aspect ratio; ``pad`` keeps the
    aspect ratio and pads with black; ``crop`` keeps it and cuts the centre out of the wider side.
    """

    height: int = 128
    width: int = 128
    channels: int = 1
    aspect: str = "stretch"

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 (grayscale) or 3 (RGB), got {self.channels}.")
        if min(self.height, self.width) < 8:
            raise ConfigError(f"image size must be at least 8x8 pixels, got {self.height}x{self.width}.")
        if self.aspect not in ASPECT_MODES:
            raise ConfigError(f"aspect must be one of {', '.join(ASPECT_MODES)}, got '{self.aspect}'.")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)

    def describe(self) -> str:
        colour = "grayscale" if self.channels == 1 else "RGB"
        return (
            f"{colour}, {self.height}x{self.width} px ({self.aspect} to fit), "
            "intensities scaled to [0, 1]"
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessing":
        return cls(**{key: data[key] for key in ("height", "width", "channels", "aspect") if key in data})
