"""``--dicom-frames``: which B-scans a DICOM volume gives. ``center`` (the default): its central
frame, the one a Kermany-style B-scan export shows; ``all``: one image per frame, each an
:class:`~octreport.data.layout.ImageItem` with its ``frame`` and named ``PATH#FRAME``.

A volume is one file, so its frames stay together: they share its label, its patient (the
patient tables are keyed by file), its split (frames are made from the evaluated split after any
split is cut, never before), and one read of its bytes (they are adjacent, and
:class:`~octreport.data.files.FileReads` hands the last file's bytes out again). The fingerprint
and the data audit stay per file. Headers only here: no pixel is decoded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from octreport.data.dataset import PreparedData
from octreport.data.dicom import DICOM_SUFFIX, DicomProblem, dicom_frame_count
from octreport.data.layout import ImageItem

log = logging.getLogger(__name__)

FRAMES_CENTER = "center"
FRAMES_ALL = "all"
DICOM_FRAMES = (FRAMES_CENTER, FRAMES_ALL)


def expand_frames(items: Sequence[ImageItem]) -> tuple[ImageItem, ...]:
    """``items`` with each multi-frame DICOM file replaced by one item per frame, in frame order
    and in its place; every other file, and a file whose header cannot be read (its decode names
    it as skipped), as it is."""
    expanded: list[ImageItem] = []
    for item in items:
        frames = _frames(item.path) if item.path.suffix.lower() == DICOM_SUFFIX and item.frame is None else 1
        if frames > 1:
            expanded.extend(replace(item, frame=frame) for frame in range(frames))
        else:
            expanded.append(item)
    return tuple(expanded)


def with_frames(data: PreparedData, mode: str) -> PreparedData:
    """The evaluated split as ``mode`` (:data:`DICOM_FRAMES`) says: unchanged for ``center``, every
    frame of each volume for ``all``."""
    if mode != FRAMES_ALL:
        return data
    test = expand_frames(data.test)
    if len(test) != len(data.test):
        log.info("--dicom-frames all: %d images from %d files (every frame of each DICOM volume)",
                 len(test), len(data.test))
    return replace(data, test=test)


def _frames(path: Path) -> int:
    try:
        return dicom_frame_count(path)
    except (DicomProblem, OSError):
        return 1
