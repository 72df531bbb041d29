"""``predictions.csv``: what the model said about every test image, so that a later run can be
compared with this one image by image (a paired test) and any number of the report re-derived.

One row per evaluated test image, in evaluation order: ``path`` (relative to the data root, POSIX
form), ``true_class``, ``predicted_class``, then one column ``p:<class>`` per class with its
probability (9 significant digits: a float32 softmax output exactly).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from octreport.audit.fingerprint import relative_name
from octreport.data.layout import ImageItem
from octreport.data.splits import patient_of_path
from octreport.errors import ConfigError

PREDICTIONS_NAME = "predictions.csv"
_FIXED = ("path", "true_class", "predicted_class")
_PROBABILITY = "p:"


@dataclass(frozen=True, eq=False)
class RunPredictions:
    """One run's test predictions. ``labels`` (N,) index ``class_names``; ``probabilities`` is (N, K)."""

    paths: tuple[str, ...]
    class_names: tuple[str, ...]
    labels: np.ndarray
    probabilities: np.ndarray

    def patients(self) -> list[str]:
        """The patient of each image (Kermany names), or the image itself when its name has none."""
        return [patient_of_path(p) for p in self.paths]


def predictions_csv(items: Sequence[ImageItem], probabilities: np.ndarray, class_names: Sequence[str], root: Path) -> str:
    """The CSV text for ``items`` (N) with their ``probabilities`` (N, K)."""
    p = np.asarray(probabilities, dtype=np.float64)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*_FIXED, *(f"{_PROBABILITY}{name}" for name in class_names)])
    for item, row in zip(items, p):
        writer.writerow([relative_name(item.path, root), class_names[item.label], class_names[int(row.argmax())],
                         *(format(v, ".9g") for v in row)])
    return buffer.getvalue()


def write_predictions(
    folder: Path, items: Sequence[ImageItem], probabilities: np.ndarray, class_names: Sequence[str], root: Path
) -> Path:
    """Write ``folder/predictions.csv`` atomically; return its path."""
    from octreport.report.assets import write_text_atomic  # imports matplotlib: only when writing

    path = Path(folder) / PREDICTIONS_NAME
    write_text_atomic(path, predictions_csv(items, probabilities, class_names, root))
    return path


def run_predictions(
    items: Sequence[ImageItem], probabilities: np.ndarray, class_names: Sequence[str], root: Path
) -> RunPredictions:
    """The same record, in memory, for a run that has not been written yet (``--compare-to``)."""
    return RunPredictions(
        tuple(relative_name(item.path, root) for item in items), tuple(class_names),
        np.array([item.label for item in items], dtype=np.int64), np.asarray(probabilities, dtype=np.float64),
    )


def read_predictions(path: Path) -> RunPredictions:
    """Read a ``predictions.csv``; a :class:`ConfigError` saying what is wrong with a malformed one."""
    path = Path(path)
    try:
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ConfigError(f"cannot read {path}: {error}") from error
    if not rows or tuple(rows[0][:3]) != _FIXED or not all(c.startswith(_PROBABILITY) for c in rows[0][3:]):
        raise ConfigError(f"{path} is not an octreport predictions file: its header must be "
                          f"{', '.join(_FIXED)}, {_PROBABILITY}<class>, ...")
    names = tuple(c[len(_PROBABILITY):] for c in rows[0][3:])
    index = {name: k for k, name in enumerate(names)}
    try:
        labels = np.array([index[row[1]] for row in rows[1:]], dtype=np.int64)
        probabilities = np.array([[float(v) for v in row[3:]] for row in rows[1:]], dtype=np.float64).reshape(-1, len(names))
    except (KeyError, ValueError, IndexError) as error:
        raise ConfigError(f"{path} has a malformed row ({type(error).__name__}: {error}).") from error
    return RunPredictions(tuple(row[0] for row in rows[1:]), names, labels, probabilities)


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
    b_labels = np.array([a.class_names.index(b.class_names[k]) for k in b.labels[rows]], dtype=np.int64)
    if not np.array_equal(a.labels, b_labels):
        return "the runs give some images different true classes"
    aligned = RunPredictions(a.paths, a.class_names, a.labels, b.probabilities[rows][:, columns])
    return a, aligned
