"""Cheap checks that an image file is whole, so one damaged file never stops a run.

TensorFlow aborts a whole ``tf.data`` stream on one undecodable file, and libjpeg silently pads a
truncated JPEG with grey. Reading each file's first and last bytes catches zero-byte, non-image and
truncated files without decoding them; the pipeline additionally drops, and names, anything that
still fails to decode.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from octreport.data.dicom import DICOM_SUFFIX, dicom_problem
from octreport.data.files import peek_image_file
from octreport.data.layout import ImageItem

log = logging.getLogger(__name__)

_JPEG_START = b"\xff\xd8\xff"
_JPEG_END = b"\xff\xd9"
_PNG_START = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND"


@dataclass(frozen=True)
class SkippedFile:
    """A file left out of the run, and why (shown in the report's data warnings)."""

    path: Path
    reason: str

    def to_dict(self) -> dict:
        return {"path": str(self.path), "reason": self.reason}


def image_problem(path: Path) -> str | None:
    """Why ``path`` cannot be used as an image, or None when it looks whole (a DICOM file: when
    it gives a B-scan, :func:`octreport.data.dicom.dicom_problem`)."""
    if path.suffix.lower() == DICOM_SUFFIX:
        return dicom_problem(path)
    try:
        size, head, tail = peek_image_file(path)
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if size == 0:
        return "empty file (0 bytes)"
    if head.startswith(_JPEG_START):
        return None if _JPEG_END in tail else "truncated JPEG (no end-of-image marker)"
    if head.startswith(_PNG_START):
        return None if _PNG_END in tail else "truncated PNG (no IEND chunk)"
    return "not a JPEG or PNG image"


def partition_usable(items: tuple[ImageItem, ...]) -> tuple[tuple[ImageItem, ...], tuple[SkippedFile, ...]]:
    """Split ``items`` into those that look whole and those to skip, warning once per skipped file."""
    usable, skipped = [], []
    for item in items:
        problem = image_problem(item.path)
        if problem is None:
            usable.append(item)
        else:
            log.warning("skipping %s: %s", item.path, problem)
            skipped.append(SkippedFile(item.path, problem))
    return tuple(usable), tuple(skipped)
