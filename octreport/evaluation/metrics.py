"""Classification metrics from full arrays of predictions (pure NumPy).

Conventions used throughout:

* ``y_true`` has shape ``(N,)`` and holds class indices ``0 .. K-1``; ``probabilities`` has shape
  ``(N, K)`` and holds softmax outputs. The predicted class is ``argmax`` over ``K`` (on a tie the
  lowest index wins, as in ``np.argmax``).
* The confusion matrix has true classes as rows and predicted classes as columns.
* A value that is undefined for the data is ``None`` (JSON ``null``), never NaN:
  precision of a class that is never predicted, recall, precision, F1 and ROC AUC of a class absent
  from ``y_true`` (evaluation data holding some of a model's classes: the class is "not in this
  data"; the images wrongly called it show in its predicted count, its specificity and the other
  classes' recall), specificity of a class when every image belongs to it, ROC AUC of a class
  when every image belongs to it.
* F1 is computed as ``2 TP / (2 TP + FP + FN)``. It equals the harmonic mean of precision and
  recall when both are defined, is 0 for a class that is present but never predicted (the model
  never finds it: precision is None but F1 is 0, so the failure shows in macro F1), and is None
  when the class is absent.
* Macro averages are means over the classes whose value is defined; weighted averages weight
  each defined value by the class support and divide by the support of those classes. Both are
  None when no class has a defined value. Weighted recall therefore equals accuracy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_SUM_TOLERANCE = 1e-3
CHANCE_MARGIN = 0.05
"""Accuracy this close to the chance level reads as a model that has not learned (the always-on gate's margin)."""


@dataclass(frozen=True)
class PerClassMetrics:
    """One row of the per-class table. Undefined values are None (see the module docstring)."""

    name: str
    support: int
    """Number of images of this class in ``y_true``."""
    predicted_count: int
    """Number of images predicted as this class."""
    precision: float | None
    recall: float | None
    """Recall, i.e. sensitivity."""
    specificity: float | None
    f1: float | None
    roc_auc: float | None
    """One-vs-rest ROC AUC from this class's probability column."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict.

        Keys: name, support, predicted, precision, recall, specificity, f1, roc_auc.
        """
        return {
            "name": self.name,
            "support": self.support,
            "predicted": self.predicted_count,
            "precision": self.precision,
            "recall": self.recall,
            "specificity": self.specificity,
            "f1": self.f1,
            "roc_auc": self.roc_auc,
        }


@dataclass(frozen=True)
class AveragedMetrics:
    """Precision, recall and F1 averaged over classes (macro or support-weighted)."""

    precision: float | None
    recall: float | None
    f1: float | None

    def to_dict(self) -> dict[str, float | None]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1}


@dataclass(frozen=True, eq=False)
class ClassificationMetrics:
    """Everything the report shows about a classifier's predictions on one test split.

    Arrays (K classes, N images):
        y_true: (N,) int64, the true class index of each image.
        predicted: (N,) int64, ``argmax`` of the probabilities.
        confusion: (K, K) int64 counts, rows = true class, columns = predicted class.
        confusion_normalized: (K, K) float64, each row divided by its sum; a row with zero
            support is all zeros.
    """

    class_names: tuple[str, ...]
    n_images: int
    accuracy: float
    chance_level: float
    """Share of the largest class in ``y_true``: the accuracy of always predicting it."""
    per_class: tuple[PerClassMetrics, ...]
    macro: AveragedMetrics
    weighted: AveragedMetrics
    macro_roc_auc: float | None
    """Mean of the defined one-vs-rest ROC AUCs."""
    y_true: np.ndarray
    predicted: np.ndarray
    confusion: np.ndarray
    confusion_normalized: np.ndarray

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def classes_not_in_data(self) -> tuple[str, ...]:
        """The model's classes with no image in ``y_true`` (data holding some of the classes)."""
        return tuple(row.name for row in self.per_class if row.support == 0)

    def at_chance_level(self, margin: float = CHANCE_MARGIN) -> bool:
        """Accuracy no better than ``margin`` above always guessing the largest class: the model has
        not learned to tell the classes apart."""
        return self.accuracy <= self.chance_level + margin

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of plain Python numbers and lists (no NumPy types).

        Keys: n_images, class_names, accuracy, chance_level, macro {precision, recall, f1},
        weighted {precision, recall, f1}, macro_roc_auc, per_class [list of
        PerClassMetrics.to_dict() in class order], classes_not_in_data, confusion_matrix,
        confusion_matrix_normalized (all the model's classes; the rows of absent classes are zeros).
        """
        return {
            "n_images": self.n_images,
            "class_names": list(self.class_names),
            "accuracy": self.accuracy,
            "chance_level": self.chance_level,
            "macro": self.macro.to_dict(),
            "weighted": self.weighted.to_dict(),
            "macro_roc_auc": self.macro_roc_auc,
            "per_class": [row.to_dict() for row in self.per_class],
            "classes_not_in_data": list(self.classes_not_in_data),
            "confusion_matrix": [[int(v) for v in row] for row in self.confusion],
            "confusion_matrix_normalized": [
                [float(v) for v in row] for row in self.confusion_normalized
            ],
        }


def validate_predictions(
    y_true: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Check shapes and values; return ``(y_true int64 (N,), probabilities float64 (N, K), names)``.

    Raises ValueError with what was wrong. Rows that do not sum to 1 only log a warning, since
    rank-based metrics still work on them, but they suggest logits were passed.
    """
    names = tuple(str(name) for name in class_names)
    y = np.asarray(y_true)
    p = np.asarray(probabilities, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"y_true must have shape (N,), got {y.shape}")
    if p.ndim != 2:
        raise ValueError(f"probabilities must have shape (N, K), got {p.shape}")
    if p.shape != (y.shape[0], len(names)):
        raise ValueError(
            f"probabilities have shape {p.shape}; expected (N, K) = ({y.shape[0]}, {len(names)}) "
            "from y_true and class_names"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"class_names must be unique, got {list(names)}")
    if y.shape[0] == 0:
        raise ValueError("no images: metrics need at least one prediction")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y_true must hold integer class indices, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= len(names):
        raise ValueError(f"y_true values must lie in 0..{len(names) - 1}, got {y.min()}..{y.max()}")
    if not np.all(np.isfinite(p)):
        raise ValueError("probabilities contain NaN or infinite values")
    if np.any(np.abs(p.sum(axis=1) - 1.0) > _SUM_TOLERANCE):
        logger.warning("probability rows do not sum to 1; were logits passed instead of softmax?")
    return y.astype(np.int64), p, names


def confusion_matrix(y_true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, K) int64 counts, rows = true class, columns = predicted class."""
    flat = np.asarray(y_true, dtype=np.int64) * n_classes + np.asarray(predicted, dtype=np.int64)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def row_normalize(confusion: np.ndarray) -> np.ndarray:
    """Each row divided by its sum; rows that sum to zero stay zeros (not NaN)."""
    counts = np.asarray(confusion, dtype=np.float64)
    sums = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values`` (N,), tied values sharing the mean of their ranks."""
    unique, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    last_rank = np.cumsum(counts).astype(np.float64)
    mean_rank = last_rank - (counts - 1) / 2.0
    return mean_rank[inverse.reshape(-1)]


def binary_roc_auc(is_positive: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC as the Mann-Whitney statistic: P(score_pos > score_neg) + 0.5 P(tie).

    Returns None when there are no positives or no negatives.
    """
    positive = np.asarray(is_positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = average_ranks(np.asarray(scores, dtype=np.float64))
    u_statistic = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u_statistic / (n_pos * n_neg))


def _ratio(numerator: int, denominator: int) -> float | None:
    return float(numerator) / float(denominator) if denominator > 0 else None


def _mean_defined(
    values: Sequence[float | None], weights: Sequence[int] | None = None
) -> float | None:
    """Mean (weighted if ``weights``) over the values that are not None; None if there are none."""
    weights = [1] * len(values) if weights is None else list(weights)
    pairs = [(value, weight) for value, weight in zip(values, weights) if value is not None]
    total_weight = sum(weight for _, weight in pairs)
    if total_weight == 0:
        return None
    return float(sum(value * weight for value, weight in pairs) / total_weight)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _per_class_rows(
    confusion: np.ndarray, y_true: np.ndarray, probabilities: np.ndarray, names: tuple[str, ...]
) -> tuple[PerClassMetrics, ...]:
    n_images = int(confusion.sum())
    rows = []
    for k, name in enumerate(names):
        tp = int(confusion[k, k])
        support = int(confusion[k, :].sum())
        predicted_count = int(confusion[:, k].sum())
        fp, fn = predicted_count - tp, support - tp
        tn = n_images - tp - fp - fn
        rows.append(
            PerClassMetrics(
                name=name,
                support=support,
                predicted_count=predicted_count,
                precision=_ratio(tp, predicted_count) if support else None,
                recall=_ratio(tp, support),
                specificity=_ratio(tn, tn + fp),
                f1=_ratio(2 * tp, 2 * tp + fp + fn) if support else None,
                roc_auc=binary_roc_auc(y_true == k, probabilities[:, k]),
            )
        )
    return tuple(rows)


def compute_classification_metrics(
    y_true: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]
) -> ClassificationMetrics:
    """Accuracy, per-class and averaged metrics, confusion matrices and ROC AUCs.

    Args:
        y_true: (N,) integer class indices.
        probabilities: (N, K) softmax outputs, column k for ``class_names[k]``.
        class_names: K unique names.

    Raises:
        ValueError: shapes disagree, there are no images, or labels are out of range.
    """
    y, p, names = validate_predictions(y_true, probabilities, class_names)
    predicted = np.argmax(p, axis=1).astype(np.int64)
    confusion = confusion_matrix(y, predicted, len(names))
    per_class = _per_class_rows(confusion, y, p, names)
    supports = [row.support for row in per_class]

    def averaged(weights: Sequence[int] | None) -> AveragedMetrics:
        return AveragedMetrics(
            precision=_mean_defined([r.precision for r in per_class], weights),
            recall=_mean_defined([r.recall for r in per_class], weights),
            f1=_mean_defined([r.f1 for r in per_class], weights),
        )

    n_images = int(y.shape[0])
    return ClassificationMetrics(
        class_names=names,
        n_images=n_images,
        accuracy=float(np.trace(confusion) / n_images),
        chance_level=float(max(supports) / n_images),
        per_class=per_class,
        macro=averaged(None),
        weighted=averaged(supports),
        macro_roc_auc=_mean_defined([r.roc_auc for r in per_class]),
        y_true=_read_only(y),
        predicted=_read_only(predicted),
        confusion=_read_only(confusion),
        confusion_normalized=_read_only(row_normalize(confusion)),
    )
