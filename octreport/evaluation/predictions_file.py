"""``predictions.csv``: the model's probabilities for every evaluated test image, so that a run can be
re-checked (``octreport verify --full``) and compared with another image by image (the paired
tests of ``octreport compare``), and any number of the report re-derived.

One row per evaluated test image, in evaluation order::

    path,true_class,predicted_class,p:CNV,p:DME,p:DRUSEN,p:NORMAL,urgent
    test/CNV/CNV-1091963-1.jpeg,CNV,CNV,0.912345678,0.0412,0.0301,0.0163,1

``urgent`` (last, only when the classes are the four OCT ones and the run applied a referral rule):
1 when the run's urgent-referral rule (:func:`~octreport.evaluation.referral.urgent_calls`) called
the image urgent, else 0. Files without it (older runs, other classes) read the same.

``path`` is relative to the data root (POSIX form, as in the manifest's data fingerprint), so the
file stays valid when the data folder moves; the probabilities have 9 significant digits, which
writes a float32 model output exactly. The manifest records the file's SHA-256 like the other
files of the run folder.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from octreport.data.splits import patient_of_path
from octreport.csvcells import csv_cell, from_csv_cell
from octreport.errors import DataError
from octreport.guarded import MAX_RUN_FILE_BYTES, read_text

PREDICTIONS_NAME = "predictions.csv"
_FIXED = ("path", "true_class", "predicted_class")
_PROBABILITY = "p:"
_URGENT = "urgent"
_DIGITS = 9


@dataclass(frozen=True, eq=False)
class RunPredictions:
    """One run's test predictions: row i is the image ``paths[i]`` (relative to the data root),
    whose true class is ``class_names[labels[i]]`` (-1: unknown); ``probabilities`` is (N, K)."""

    paths: tuple[str, ...]
    class_names: tuple[str, ...]
    labels: np.ndarray
    probabilities: np.ndarray
    urgent: np.ndarray | None = None
    """(N,) bool: the run's urgent-referral call per image; None when not recorded."""

    def patients(self) -> list[str]:
        """The patient of each image (Kermany names), or the image itself when its name has none."""
        return [patient_of_path(p) for p in self.paths]


def run_predictions(
    relative_paths: Sequence[str], labels: Sequence[int], probabilities: np.ndarray, class_names: Sequence[str],
    urgent: np.ndarray | None = None,
) -> RunPredictions:
    """The record of one run, in memory (what ``predictions.csv`` holds); ``urgent``: (N,) the
    referral rule's urgent calls (:func:`~octreport.evaluation.referral.urgent_calls`), or None."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (len(relative_paths), len(class_names)) or len(labels) != len(relative_paths):
        raise ValueError(
            f"{len(relative_paths)} paths and {len(labels)} labels need probabilities of shape "
            f"({len(relative_paths)}, {len(class_names)}), got {probabilities.shape}"
        )
    if urgent is not None:
        urgent = np.asarray(urgent, dtype=bool)
        if urgent.shape != (len(relative_paths),):
            raise ValueError(f"{len(relative_paths)} paths need {len(relative_paths)} urgent calls, got {urgent.shape}")
    return RunPredictions(tuple(relative_paths), tuple(class_names), np.asarray(labels, dtype=np.int64), probabilities,
                          urgent)


def predictions_csv(record: RunPredictions) -> str:
    """The CSV text of ``record``."""
    names = record.class_names
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    urgent_column = [] if record.urgent is None else [csv_cell(_URGENT)]
    writer.writerow([*_FIXED, *(csv_cell(f"{_PROBABILITY}{name}") for name in names), *urgent_column])
    calls = [None] * len(record.paths) if record.urgent is None else record.urgent
    for path, label, row, call in zip(record.paths, record.labels, record.probabilities, calls):
        true_class = names[int(label)] if 0 <= int(label) < len(names) else ""
        urgent_cell = [] if call is None else [csv_cell(int(bool(call)))]
        writer.writerow([csv_cell(path), csv_cell(true_class), csv_cell(names[int(row.argmax())]),
                         *(f"{v:.{_DIGITS}g}" for v in row), *urgent_cell])
    return buffer.getvalue()


def parse_predictions_csv(text: str, source: str = PREDICTIONS_NAME) -> RunPredictions:
    """Read :func:`predictions_csv`'s text back; a :class:`DataError` naming the line when malformed."""
    try:
        rows = [[from_csv_cell(cell) for cell in row] for row in csv.reader(io.StringIO(text))]
    except csv.Error as error:
        raise DataError(f"{source} is not a readable CSV file ({error}).") from None
    header = rows[0] if rows else []
    has_urgent = bool(header) and header[-1] == _URGENT
    columns = header[3:-1] if has_urgent else header[3:]
    if tuple(header[:3]) != _FIXED or not columns or not all(c.startswith(_PROBABILITY) for c in columns):
        raise DataError(f"{source} is not an octreport predictions file: its header must be "
                        f"{', '.join(_FIXED)}, {_PROBABILITY}<class>, ... (and {_URGENT})")
    names = tuple(c[len(_PROBABILITY):] for c in columns)
    index = {name: k for k, name in enumerate(names)}
    paths, labels, values, urgent = [], [], [], []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"{source}, line {number}: expected {len(header)} columns, got {len(row)}.")
        try:
            values.append([float(v) for v in row[3:3 + len(names)]])
        except ValueError:
            raise DataError(f"{source}, line {number}: a probability is not a number.") from None
        if has_urgent:
            if row[-1] not in ("0", "1"):
                raise DataError(f"{source}, line {number}: {_URGENT} must be 0 or 1, got {row[-1]!r}.")
            urgent.append(row[-1] == "1")
        paths.append(row[0])
        labels.append(index.get(row[1], -1))
    probabilities = np.array(values, dtype=np.float64).reshape(len(values), len(names))
    return RunPredictions(tuple(paths), names, np.array(labels, dtype=np.int64), probabilities,
                          np.array(urgent, dtype=bool) if has_urgent else None)


def read_predictions(path: Path) -> RunPredictions:
    """Read a ``predictions.csv``; a :class:`DataError` saying what is wrong with a malformed one."""
    return parse_predictions_csv(read_text(path, str(path), DataError, MAX_RUN_FILE_BYTES), str(path))


def align(a: RunPredictions, b: RunPredictions) -> tuple[RunPredictions, RunPredictions] | str:
    """Both runs' predictions on the same images in A's row and class order, or why they cannot be paired."""
    if sorted(a.class_names) != sorted(b.class_names):
        return "the runs have different classes"
    if len(set(a.paths)) != len(a.paths) or len(set(b.paths)) != len(b.paths):
        return "an image is listed twice in a predictions file"
    if set(a.paths) != set(b.paths):
        only_a, only_b = len(set(a.paths) - set(b.paths)), len(set(b.paths) - set(a.paths))
        return f"the runs evaluated different test images ({only_a} only in A, {only_b} only in B)"
    row_of_b = {path: i for i, path in enumerate(b.paths)}
    rows = [row_of_b[path] for path in a.paths]
    columns = [b.class_names.index(name) for name in a.class_names]
    b_labels = np.array([a.class_names.index(b.class_names[k]) if k >= 0 else -1 for k in b.labels[rows]], dtype=np.int64)
    if not np.array_equal(a.labels, b_labels):
        return "the runs give some images different true classes"
    aligned = RunPredictions(a.paths, a.class_names, a.labels, b.probabilities[rows][:, columns])
    return a, aligned
