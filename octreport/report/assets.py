"""Where the report's images go, and how report files are written.

:class:`FigureStore` turns encoded images into :class:`~octreport.report.context.FigureRef` s:

* ``"embedded"`` (the default): ``src`` is a ``data:`` URI, so the HTML is one self-contained file;
* ``"assets"``: the bytes go to ``<out_dir>/assets/<name>.<ext>`` and ``src`` is the relative path
  ``assets/<name>.<ext>``. Names are sanitised (they may come from user-controlled strings such as
  class folder names) and made unique, so nothing is written outside the assets folder.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from pathlib import Path

from octreport.drawing.export import EncodedImage, to_data_uri
from octreport.errors import ConfigError
from octreport.runfolder import write_bytes_atomic
from octreport.report.views import FigureRef

log = logging.getLogger(__name__)

FIGURE_MODES = ("embedded", "assets")
FIGURE_DPI = 120
"""The resolution every report figure drawn with matplotlib is encoded at."""
ASSETS_DIRNAME = "assets"
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/svg+xml": "svg", "image/webp": "webp"}
_MAX_NAME_CHARS = 80
_UNSAFE = re.compile(r"[^a-z0-9_-]+")


def sanitize_name(name: str) -> str:
    """A file-name stem safe on every file system: lower-case ASCII letters, digits, ``-`` and ``_``.

    Accents are dropped (``"Drüse"`` -> ``"druse"``), every other run of characters becomes one
    ``-``; path separators and dots cannot survive, so ``"../../etc"`` becomes ``"etc"``.
    An empty result becomes ``"figure"``.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    stem = _UNSAFE.sub("-", ascii_name.lower()).strip("-_")[:_MAX_NAME_CHARS].strip("-_")
    return stem or "figure"


class FigureStore:
    """Turns encoded images into figure references, embedded or as files, and counts the bytes."""

    def __init__(self, mode: str = "embedded", out_dir: Path | None = None) -> None:
        if mode not in FIGURE_MODES:
            raise ConfigError(f"figure mode must be one of {', '.join(FIGURE_MODES)}; got {mode!r}")
        if mode == "assets" and out_dir is None:
            raise ConfigError("figure mode 'assets' needs an output folder to write the images to")
        self.mode = mode
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.bytes_stored = 0
        self.count = 0
        self._used: set[str] = set()

    @property
    def assets_dir(self) -> Path | None:
        """``<out_dir>/assets`` in assets mode, else None."""
        return self.out_dir / ASSETS_DIRNAME if self.mode == "assets" and self.out_dir else None

    def add(self, image: EncodedImage, name: str, alt: str, caption: str = "") -> FigureRef:
        """Store ``image`` and return its reference. ``name`` is only a hint for the file name."""
        if self.mode == "embedded":
            src = to_data_uri(image.data, image.mime)
        else:
            src = self._write(image, name)
        self.bytes_stored += len(image.data)
        self.count += 1
        return FigureRef(src=src, alt=alt, caption=caption, width_px=image.width, height_px=image.height)

    def _unique_file_name(self, name: str, ext: str) -> str:
        stem = sanitize_name(name)
        candidate, n = stem, 1
        while candidate in self._used:  # names are lower-case: also unique on case-blind disks
            n += 1
            candidate = f"{stem}-{n}"
        self._used.add(candidate)
        return f"{candidate}.{ext}"

    def _write(self, image: EncodedImage, name: str) -> str:
        ext = _EXTENSIONS.get(image.mime)
        if ext is None:
            raise ValueError(f"cannot store an image of type {image.mime!r}; known: {', '.join(_EXTENSIONS)}")
        folder = self.assets_dir
        assert folder is not None
        folder.mkdir(parents=True, exist_ok=True)
        file_name = self._unique_file_name(name, ext)
        target = folder / file_name
        # sanitize_name already rules this out; kept as a guard should the rule ever change.
        if target.resolve().parent != folder.resolve():
            raise ValueError(f"figure name {name!r} leads outside {folder}")
        write_bytes_atomic(target, image.data)
        return f"{ASSETS_DIRNAME}/{file_name}"

    def describe(self) -> str:
        """One line for the log: how many images, how many bytes, where."""
        where = "embedded in the HTML" if self.mode == "embedded" else f"in {self.assets_dir}"
        return f"{self.count} images, {self.bytes_stored / 1e6:.1f} MB {where}"
