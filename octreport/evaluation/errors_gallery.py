"""Which mistakes to show: the most confident errors of each confusion-matrix cell.

The predicted class is the arg-max of the probabilities (the lowest index on ties, like
``np.argmax`` and the confusion matrix). For every off-diagonal cell (true ``i``, predicted ``j``)
that holds at least one image, the ``per_cell`` images with the highest ``P(j)`` are kept, most
confident first (ties: the earlier image first). Cells come in row-major order (true class, then
predicted class). Pure NumPy; nothing is drawn here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from octreport.errors import ConfigError


@dataclass(frozen=True, eq=False)
class ErrorCase:
    """One misclassified image.

    Attributes:
        index: the image's row in ``y_true`` / ``probabilities``.
        item: ``items[index]`` (an :class:`~octreport.data.layout.ImageItem` in a run).
        true_class, predicted_class: class indices.
        confidence: ``P(predicted_class)``.
        true_probability: ``P(true_class)``.
        probabilities: float64 (K,), the image's probabilities.
    """

    index: int
    item: Any
    true_class: int
    predicted_class: int
    confidence: float
    true_probability: float
    probabilities: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "path": str(getattr(self.item, "path", self.item)),
            "confidence": self.confidence,
            "true_probability": self.true_probability,
        }


@dataclass(frozen=True, eq=False)
class ConfusionCell:
    """One off-diagonal confusion-matrix cell and its most confident mistakes.

    Attributes:
        true_class, predicted_class: class indices.
        true_name, predicted_name: class names.
        count: all images in the cell (not only those in ``cases``).
        mean_confidence: mean ``P(predicted_class)`` over all ``count`` images.
        cases: up to ``per_cell`` of them, most confident first.
    """

    true_class: int
    predicted_class: int
    true_name: str
    predicted_name: str
    count: int
    mean_confidence: float
    cases: tuple[ErrorCase, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "true": self.true_name,
            "predicted": self.predicted_name,
            "count": self.count,
            "mean_confidence": self.mean_confidence,
            "cases": [case.to_dict() for case in self.cases],
        }


def _check(y_true: Any, probabilities: Any, items: Sequence[Any],
           class_names: Sequence[str], per_cell: int) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(y_true)
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2 or labels.shape != (probs.shape[0],) or len(items) != probs.shape[0]:
        raise ValueError(
            f"Expected y_true (N,), probabilities (N, K) and N items, got {labels.shape}, "
            f"{probs.shape} and {len(items)} items."
        )
    if probs.shape[1] != len(class_names):
        raise ValueError(f"Got {probs.shape[1]} probability columns for {len(class_names)} classes.")
    if labels.size and (not np.issubdtype(labels.dtype, np.integer)
                        or labels.min() < 0 or labels.max() >= len(class_names)):
        raise ValueError(f"True labels must be class indices 0..{len(class_names) - 1}.")
    if per_cell < 1:
        raise ConfigError(f"The number of mistakes shown per cell must be at least 1, got {per_cell}.")
    return labels.astype(np.int64), probs


def errors_gallery(
    y_true: Any,
    probabilities: Any,
    items: Sequence[Any],
    class_names: Sequence[str],
    per_cell: int = 4,
) -> tuple[ConfusionCell, ...]:
    """Every off-diagonal confusion cell with cases, each with its ``per_cell`` most confident
    mistakes; see the module docstring. No mistakes: an empty tuple."""
    labels, probs = _check(y_true, probabilities, items, class_names, per_cell)
    predicted = probs.argmax(axis=1) if probs.shape[0] else np.zeros(0, np.int64)
    cells = []
    for true in range(len(class_names)):
        for guess in range(len(class_names)):
            if true == guess:
                continue
            rows = np.flatnonzero((labels == true) & (predicted == guess))
            if rows.size == 0:
                continue
            confidence = probs[rows, guess]
            order = rows[np.argsort(-confidence, kind="stable")][:per_cell]
            cases = tuple(
                ErrorCase(int(r), items[r], true, guess, float(probs[r, guess]),
                          float(probs[r, true]), probs[r].copy())
                for r in order
            )
            cells.append(ConfusionCell(true, guess, class_names[true], class_names[guess],
                                       int(rows.size), float(confidence.mean()), cases))
    return tuple(cells)


def worst_confusion(cells: Sequence[ConfusionCell]) -> ConfusionCell | None:
    """The cell with the most mistakes (ties: the highest mean confidence, then the first in
    row-major order); None when there are no mistakes."""
    best: ConfusionCell | None = None
    for cell in cells:
        if best is None or (cell.count, cell.mean_confidence) > (best.count, best.mean_confidence):
            best = cell
    return best
