"""``predictions.csv``: the model's probabilities for every evaluated image, so a run can be re-checked.

One row per test image the model evaluated, in evaluation order::

    path,true_class,CNV,DME,DRUSEN,NORMAL
    test/CNV/CNV-1091963-1.jpeg,CNV,0.912345678,0.0412,0.0301,0.0163

``path`` is relative to the data root (POSIX form, as in the manifest's data fingerprint), so the
file stays valid when the data folder moves; the class columns hold each probability with 9
significant digits, which writes a float32 model output exactly. The manifest records the file's
SHA-256 like the other files of the run folder; ``octreport verify --full`` re-runs the model on
every image listed and compares.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from octreport.errors import DataError

PREDICTIONS_NAME = "predictions.csv"
PATH_COLUMN, TRUE_COLUMN = "path", "true_class"
_DIGITS = 9


@dataclass(frozen=True, eq=False)
class RecordedPredictions:
    """``probabilities`` is ``(N, K)``; row i belongs to ``paths[i]`` (relative to the data root)."""

    class_names: tuple[str, ...]
    paths: tuple[str, ...]
    true_classes: tuple[str, ...]
    probabilities: np.ndarray


def predictions_csv(
    relative_paths: Sequence[str], labels: Sequence[int], probabilities: np.ndarray, class_names: Sequence[str]
) -> str:
    """The CSV text for images at ``relative_paths`` with true class indices ``labels`` (negative:
    unknown) and ``probabilities`` of shape ``(N, len(class_names))``."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (len(relative_paths), len(class_names)) or len(labels) != len(relative_paths):
        raise ValueError(
            f"{len(relative_paths)} paths and {len(labels)} labels need probabilities of shape "
            f"({len(relative_paths)}, {len(class_names)}), got {probabilities.shape}"
        )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([PATH_COLUMN, TRUE_COLUMN, *class_names])
    for path, label, row in zip(relative_paths, labels, probabilities):
        true_class = class_names[int(label)] if 0 <= int(label) < len(class_names) else ""
        writer.writerow([path, true_class, *(f"{p:.{_DIGITS}g}" for p in row)])
    return buffer.getvalue()


def parse_predictions_csv(text: str, source: str = PREDICTIONS_NAME) -> RecordedPredictions:
    """Read :func:`predictions_csv`'s text back; a :class:`DataError` naming the line when malformed."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or rows[0][:2] != [PATH_COLUMN, TRUE_COLUMN] or len(rows[0]) < 3:
        raise DataError(f"{source} is not an octreport predictions file: its header is not 'path,true_class,<classes>'.")
    class_names = tuple(rows[0][2:])
    paths, truths, values = [], [], []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(class_names) + 2:
            raise DataError(f"{source}, line {number}: expected {len(class_names) + 2} columns, got {len(row)}.")
        try:
            values.append([float(v) for v in row[2:]])
        except ValueError:
            raise DataError(f"{source}, line {number}: a probability is not a number.") from None
        paths.append(row[0])
        truths.append(row[1])
    probabilities = np.array(values, dtype=np.float64).reshape(len(values), len(class_names))
    return RecordedPredictions(class_names, tuple(paths), tuple(truths), probabilities)


def read_predictions_csv(path: Path) -> RecordedPredictions:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}.") from None
    return parse_predictions_csv(text, str(path))
