"""How images are turned into model input: a small description saved beside every model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType

import numpy as np

from octreport.errors import ConfigError

ASPECT_MODES = ("stretch", "pad", "crop", "retina")
RETINA_WINDOW = 0.7
"""``retina``: the share of the scan's height kept, around the retina."""
RETINA_ABOVE = 0.65
"""``retina``: where the bright RPE band sits in the kept window, from its top (the retina lies above the RPE)."""
NORMALIZATION_MODES = ("none", "percentile")
PERCENTILE_RANGE = (1.0, 99.0)
"""``percentile`` normalization maps these percentiles of each image to 0 and 1."""

INPUT_SCALE_TEXT: Mapping[str, str] = MappingProxyType({
    "unit": "0-1",
    "byte": "0-255",
    "symmetric": "-1 to 1",
    "caffe": "caffe: 0-255 BGR minus the ImageNet mean",
    "torch": "torch: 0-1 minus the ImageNet mean, divided by its standard deviation",
})
"""The input conventions a model may expect (those of ``keras.applications``' ``preprocess_input``),
each with how the report names it."""
INPUT_SCALES = tuple(INPUT_SCALE_TEXT)
RGB_ONLY_SCALES = ("caffe", "torch")  # defined per RGB channel
IMAGENET_MEAN_BGR_255 = (103.939, 116.779, 123.68)  # keras.applications.imagenet_utils, caffe mode
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)  # torch mode
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """Decode to ``channels``, fit to ``height`` x ``width`` and scale intensities to [0, 1].

    ``aspect``: ``stretch`` resizes to the target size whatever the aspect ratio; ``pad`` keeps the
    aspect ratio and pads with black; ``crop`` keeps it and cuts the centre out of the wider side;
    ``retina`` keeps the whole width and the :data:`RETINA_WINDOW` share of the height placed
    around the retina found in the image itself (the brightest band of rows, the RPE, at
    :data:`RETINA_ABOVE` of the window), then stretches that, so that a retina higher or lower in
    the frame reaches the model at the same place.

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
    input_scale: str = "unit"

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
        if self.input_scale not in INPUT_SCALES:
            raise ConfigError(f"input scale must be one of {', '.join(INPUT_SCALES)}, got '{self.input_scale}'.")
        if self.input_scale in RGB_ONLY_SCALES and self.channels != 3:
            raise ConfigError(
                f"input scale '{self.input_scale}' is defined per RGB channel, but the model takes {self.channels} "
                "channel(s). Use unit, byte or symmetric for a grayscale model."
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
        fed = "" if self.input_scale == "unit" else f"; fed to the model as {self.input_scale_text}"
        return f"{colour}, {self.height}x{self.width} px ({self.aspect} to fit), {scaling}{fed}"

    @property
    def input_scale_text(self) -> str:
        """The input convention in words, e.g. ``0-255 (byte)``."""
        return f"{INPUT_SCALE_TEXT[self.input_scale]} ({self.input_scale})"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessing":
        """Sidecars written before ``normalization`` or ``input_scale`` existed load with ``none``
        and ``unit``, as they were trained."""
        keys = ("height", "width", "channels", "aspect", "normalization", "input_scale")
        return cls(**{key: data[key] for key in keys if key in data})


def input_affine(input_scale: str, channels: int) -> tuple[bool, np.ndarray, np.ndarray]:
    """``(reverse_channels, multiply, add)``: the model input is ``x[..., ::-1]`` when
    ``reverse_channels``, then ``* multiply + add`` (float32 arrays of one value per channel),
    for images ``x`` in [0, 1]."""
    ones = np.ones(channels, np.float32)
    if input_scale == "unit":
        return False, ones, 0 * ones
    if input_scale == "byte":
        return False, 255 * ones, 0 * ones
    if input_scale == "symmetric":
        return False, 2 * ones, -ones
    if input_scale == "caffe":
        return True, 255 * ones, -np.array(IMAGENET_MEAN_BGR_255, np.float32)
    if input_scale == "torch":
        std = np.array(IMAGENET_STD_RGB, np.float32)
        return False, 1 / std, -np.array(IMAGENET_MEAN_RGB, np.float32) / std
    raise ConfigError(f"input scale must be one of {', '.join(INPUT_SCALES)}, got '{input_scale}'.")


def to_model_input(images, preprocessing: Preprocessing):
    """Images in [0, 1] (``(..., H, W, C)``, a NumPy array or a TensorFlow tensor) in the
    convention the model expects (``preprocessing.input_scale``); ``unit`` returns them as they are."""
    if preprocessing.input_scale == "unit":
        return images
    reverse, multiply, add = input_affine(preprocessing.input_scale, preprocessing.channels)
    if reverse:
        images = images[..., ::-1]
    return images * multiply + add
