"""The one place that turns figures and arrays into encoded image bytes.

Figures are rendered on an Agg canvas attached directly (no pyplot backend is selected or
needed) and are always closed afterwards, also when rendering fails, so a long batch run does
not accumulate figures. Nothing here writes files; callers decide where bytes go.
"""

from __future__ import annotations

import base64
import io
import struct
import sys
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

PNG_MIME = "image/png"
JPEG_MIME = "image/jpeg"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# zlib level 6 is PIL's default: within a few percent of the smallest size at a fraction of
# the time ``optimize=True`` takes, which matters for dozens of images per report.
_PNG_COMPRESS_LEVEL = 6


@dataclass(frozen=True)
class EncodedImage:
    """Encoded image bytes with their MIME type and pixel size."""

    data: bytes
    mime: str
    width: int
    height: int

    def data_uri(self) -> str:
        return to_data_uri(self.data, self.mime)


def close_figure(fig: Figure) -> None:
    """Release a figure's artists; also unregister it from pyplot if pyplot made it."""
    fig.clear()
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:  # only a figure made through pyplot can be registered there
        pyplot.close(fig)


def figure_to_png(fig: Figure, dpi: int = 120) -> bytes:
    """Render ``fig`` to PNG bytes of ``figsize * dpi`` pixels, then close it (always)."""
    try:
        if dpi <= 0:
            raise ValueError(f"dpi must be positive, got {dpi}")
        FigureCanvasAgg(fig)
        buffer = io.BytesIO()
        # No "Software" metadata: the bytes do not depend on the matplotlib version string.
        fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
        return buffer.getvalue()
    finally:
        close_figure(fig)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) read from a PNG header."""
    if data[:8] != _PNG_SIGNATURE or len(data) < 24:
        raise ValueError("not PNG data")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def encode_figure(fig: Figure, dpi: int = 120) -> EncodedImage:
    """Like :func:`figure_to_png`, with the MIME type and pixel size."""
    data = figure_to_png(fig, dpi=dpi)
    width, height = png_size(data)
    return EncodedImage(data=data, mime=PNG_MIME, width=width, height=height)


def _as_pil(image: np.ndarray, allow_alpha: bool) -> Image.Image:
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {array.dtype}; scale and cast it first")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    channels = (3, 4) if allow_alpha else (3,)
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in channels)):
        allowed = ", ".join(f"(H, W, {c})" for c in channels)
        raise ValueError(f"image must have shape (H, W) or {allowed}, got {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"image is empty: shape {array.shape}")
    return Image.fromarray(np.ascontiguousarray(array))


def array_to_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 image of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)."""
    buffer = io.BytesIO()
    _as_pil(image, allow_alpha=True).save(buffer, format="PNG", compress_level=_PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def array_to_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of a uint8 image of shape (H, W), (H, W, 1) or (H, W, 3)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must lie in 1..100, got {quality}")
    buffer = io.BytesIO()
    _as_pil(image, allow_alpha=False).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def encode_array(image: np.ndarray, fmt: str = "png", quality: int = 90) -> EncodedImage:
    """Encode a uint8 image as ``"png"`` or ``"jpeg"`` with its MIME type and pixel size."""
    if fmt == "png":
        data, mime = array_to_png(image), PNG_MIME
    elif fmt in ("jpeg", "jpg"):
        data, mime = array_to_jpeg(image, quality), JPEG_MIME
    else:
        raise ValueError(f"fmt must be 'png' or 'jpeg', got {fmt!r}")
    height, width = np.asarray(image).shape[:2]
    return EncodedImage(data=data, mime=mime, width=int(width), height=int(height))


def to_data_uri(data: bytes, mime: str) -> str:
    """``data:<mime>;base64,...`` for embedding in HTML."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
