"""What the DICOM headers of a data folder tell the audit, when the user gave no file for it:
who each scan belongs to (PatientID, as a salted hash only) for the patient-level checks, and
which device acquired it (Manufacturer and ManufacturerModelName) for the per-device performance
of the Data shift section. Headers only: no pixel is decoded here.

A run takes them from the bytes of its one read of each file (:class:`DicomHeaderReads`, the
``on_read`` of :class:`~octreport.data.files.FileReads`), so no file is opened for them; before
the run, only the patient keys of a split octreport cuts need a header (:func:`split_patient`:
one header-only parse per DICOM file).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from octreport.data.dicom import DICOM_SUFFIX, DicomProblem, dicom_facts
from octreport.data.groups import GroupTable
from octreport.data.layout import FRAME_MARK, ImageItem, relative_name
from octreport.data.patients import PatientTable
from octreport.data.splits import patient_id

log = logging.getLogger(__name__)

SPLIT_SALT = "octreport-splits"
"""The salt of the in-memory keys that keep a DICOM patient on one side of a split; they are never
written anywhere, and a fixed salt keeps a seed's split the same in every run."""
PATIENTS_SOURCE = "DICOM PatientID (salted SHA-256; the ID itself is not kept)"
DEVICES_SOURCE = "DICOM device (Manufacturer and ManufacturerModelName)"


@dataclass(frozen=True)
class DicomTables:
    """``patients``: a salted key per DICOM scan that names a PatientID (None when none does);
    ``devices``: the device per DICOM scan that names one (None when none does)."""

    patients: PatientTable | None
    devices: GroupTable | None


def new_salt() -> str:
    """A salt for a run whose user gave none; the run's configuration records it, so a second run
    given the same salt (``--dicom-salt``) gives the same keys."""
    return secrets.token_hex(8)


def split_patient(item: ImageItem) -> str:
    """Who an image belongs to when octreport splits a folder: a DICOM scan's hashed PatientID,
    else the Kermany file name's patient (or the image alone). A DICOM file's header is parsed once
    however often a split asks (train+val, then train and val): the key is kept per path, size and
    modification time."""
    if item.path.suffix.lower() == DICOM_SUFFIX:
        try:
            stat = Path(item.path).stat()
            key = _split_key(str(item.path), stat.st_size, stat.st_mtime_ns)
        except OSError:
            key = None
        if key:
            return f"patient:{key}"
    return patient_id(item)


@lru_cache(maxsize=65536)
def _split_key(path: str, size: int, mtime_ns: int) -> str | None:
    del size, mtime_ns  # part of the cache key: a changed file is parsed again
    try:
        return dicom_facts(Path(path), SPLIT_SALT).patient
    except (DicomProblem, OSError):
        return None


def device_names(names: Sequence[str], devices: GroupTable | None) -> list[str]:
    """The DICOM device of each image (its file's path relative to the data root; ``PATH#FRAME``
    is its file's), "" where its file names none or is no DICOM file."""
    if devices is None:
        return [""] * len(names)
    return [devices.groups.get(name.rpartition(FRAME_MARK)[0] if FRAME_MARK in name else name, "") for name in names]


def has_dicom(items: Sequence[ImageItem]) -> bool:
    return any(item.path.suffix.lower() == DICOM_SUFFIX for item in items)


class DicomHeaderReads:
    """The header facts of the DICOM files of a run, gathered file by file: from the bytes a run
    has read anyway (``headers(path, raw)``, the ``on_read`` of :class:`~octreport.data.files.FileReads`),
    or from the file. Only the salted patient key and the device are kept."""

    def __init__(self, root: Path, salt: str) -> None:
        self.root, self.salt = Path(root), salt
        self.patients: dict[str, str] = {}
        self.devices: dict[str, str] = {}

    def __call__(self, path: Path, raw: bytes) -> None:
        if path.suffix.lower() == DICOM_SUFFIX:
            self.add(path, raw)

    def add(self, path: Path, source: bytes | Path) -> None:
        try:
            facts = dicom_facts(source, self.salt)
        except (DicomProblem, OSError) as problem:
            log.info("no DICOM header facts for %s: %s", path, problem)
            return
        name = relative_name(path, self.root)
        if facts.patient:
            self.patients[name] = facts.patient
        if facts.device:
            self.devices[name] = facts.device

    def tables(self) -> DicomTables:
        if self.patients:
            log.info("patients of %d DICOM scans from their PatientID (salted hash)", len(self.patients))
        return DicomTables(PatientTable(dict(self.patients), PATIENTS_SOURCE) if self.patients else None,
                           GroupTable(dict(self.devices), DEVICES_SOURCE) if self.devices else None)
