"""Who each image belongs to: from Kermany-style file names, or from a user's ``file,patient`` CSV.

A CSV given with ``--patients FILE`` has a header row with the columns ``file`` and ``patient``;
``file`` is a path relative to the data folder (``train/CNV/a.jpeg``) or a bare file name when
that name is unique in the data folder. Images it does not list have no known patient.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from octreport.data.splits import patient_of_path
from octreport.errors import DataError
from octreport.guarded import read_text

FROM_NAMES = "file names (CLASS-PATIENT-N)"


@dataclass(frozen=True)
class PatientTable:
    """``patients``: file key (relative path or bare name) -> patient ID; ``source``: where it came from."""

    patients: Mapping[str, str]
    source: str

    def patient(self, relative_path: str) -> str | None:
        """The patient of one image (its path relative to the data root), or None when unknown."""
        if self.source == FROM_NAMES:
            found = patient_of_path(relative_path)
            return found.removeprefix("patient:") if found.startswith("patient:") else None
        return self.patients.get(relative_path) or self.patients.get(Path(relative_path).name)


NAMES = PatientTable({}, FROM_NAMES)


def read_patients_file(path: Path | str) -> PatientTable:
    """Read a ``file,patient`` CSV; raise :class:`DataError` saying what is wrong with it."""
    path = Path(path)
    return PatientTable(read_file_csv(path, "patient", "patients file", "P017"), f"patients file {path.name}")


def read_file_csv(path: Path, column: str, what: str, example: str) -> dict[str, str]:
    """``{file: value}`` from a CSV with a header row ``file,<column>`` (a ``--patients`` or
    ``--groups`` file, ``what`` by name); :class:`DataError` for a file that cannot be read, a
    missing column, no rows, an empty field, or a file given two values."""
    expected = (f"Expected a CSV file with a header row 'file,{column}' and one row per image, "
                f"e.g. 'train/CNV/a.jpeg,{example}'.")
    text = read_text(path, f"The {what} '{path}'", DataError, encoding="utf-8-sig")
    try:
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise DataError(f"Cannot read the {what} '{path}' ({error}). {expected}") from error
    fields = set(rows[0].keys()) if rows else set()
    if not rows or not {"file", column} <= fields:
        raise DataError(f"The {what} '{path}' has no 'file' and '{column}' columns, or no rows. {expected}")
    table: dict[str, str] = {}
    for line, row in enumerate(rows, start=2):
        name, value = (row.get("file") or "").strip(), (row.get(column) or "").strip()
        if not name or not value:
            raise DataError(f"The {what} '{path}', line {line}: an empty file or {column}. {expected}")
        if table.get(name, value) != value:
            raise DataError(f"The {what} '{path}', line {line}: '{name}' is given two {column}s "
                            f"('{table[name]}' and '{value}').")
        table[name] = value
    return table
