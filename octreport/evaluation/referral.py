"""OCT referral metrics as defined by Kermany et al. 2018 (Cell 172:1122-1131).

The four OCT classes map to referral decisions: CNV and DME are *urgent referral*, DRUSEN is
*routine referral* and NORMAL is *observation*. From these come

* urgent-vs-rest sensitivity and specificity under a referral rule: an image is called urgent
  when its ``argmax`` class is CNV or DME, or, with a threshold (the model's referral operating
  point, :mod:`octreport.evaluation.referral_rule`), when ``P(CNV) + P(DME)`` reaches it;
* the urgent ROC AUC, scoring each image with ``P(CNV) + P(DME)``;
* the weighted error: each error costs a penalty (4 for an urgent case predicted NORMAL, 2 for an
  urgent case predicted DRUSEN, 1 for any other error, CNV <-> DME included) and the sum is
  divided by the number of images.

Metrics are only computed when the class names are exactly these four (case-insensitive, spaces
stripped, any order); for any other class set :func:`compute_referral_metrics` returns None, so
the report leaves the section out instead of faking it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from octreport.evaluation.metrics import binary_roc_auc, confusion_matrix, validate_predictions

OCT_CLASSES: tuple[str, ...] = ("CNV", "DME", "DRUSEN", "NORMAL")
"""The canonical class order used for the penalty matrix below."""

# PENALTY[true, predicted] in OCT_CLASSES order; correct predictions cost nothing.
PENALTY = np.array(
    [
        # CNV DME DRUSEN NORMAL   (predicted)
        [0, 1, 2, 4],  # CNV    (true)
        [1, 0, 2, 4],  # DME
        [1, 1, 0, 1],  # DRUSEN
        [1, 1, 1, 0],  # NORMAL
    ],
    dtype=np.int64,
)
PENALTY.setflags(write=False)


@dataclass(frozen=True)
class ReferralReference:
    """Published figures to print beside ours."""

    source: str
    accuracy: float
    urgent_sensitivity: float
    urgent_specificity: float
    weighted_error: float
    urgent_roc_auc: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict.

        Keys: source, accuracy, urgent_sensitivity, urgent_specificity, weighted_error,
        urgent_roc_auc.
        """
        return {
            "source": self.source,
            "accuracy": self.accuracy,
            "urgent_sensitivity": self.urgent_sensitivity,
            "urgent_specificity": self.urgent_specificity,
            "weighted_error": self.weighted_error,
            "urgent_roc_auc": self.urgent_roc_auc,
        }


KERMANY_2018_REFERENCE = ReferralReference(
    source="Kermany et al. 2018, Cell 172:1122, full model",
    accuracy=0.966,
    urgent_sensitivity=0.978,
    urgent_specificity=0.974,
    weighted_error=0.066,
    urgent_roc_auc=0.999,
)


@dataclass(frozen=True)
class ReferralMetrics:
    """Urgent-referral metrics and the counts behind them. Undefined values are None."""

    n_images: int
    accuracy: float
    """Four-class accuracy, repeated here so this object lines up with the reference."""
    urgent_sensitivity: float | None
    """true_positive / n_urgent; None without urgent cases."""
    urgent_specificity: float | None
    """true_negative / n_non_urgent; None without non-urgent cases."""
    urgent_roc_auc: float | None
    """ROC AUC of P(CNV) + P(DME) for urgent vs rest; None if either group is empty."""
    weighted_error: float
    """total_penalty / n_images."""
    n_urgent: int
    n_non_urgent: int
    true_positive: int
    """Urgent cases called urgent by the rule."""
    false_negative: int
    true_negative: int
    false_positive: int
    """Non-urgent cases called urgent by the rule."""
    urgent_predicted_normal: int
    """Errors costing 4 each."""
    urgent_predicted_drusen: int
    """Errors costing 2 each."""
    other_errors: int
    """Errors costing 1 each (CNV <-> DME, DRUSEN <-> NORMAL, non-urgent predicted urgent)."""
    total_penalty: int
    threshold: float | None = None
    """The rule behind the urgent calls: urgent when ``P(CNV) + P(DME) >= threshold``; None: the
    predicted (argmax) class is CNV or DME. Accuracy, ROC AUC and the weighted error are the
    four-class predictions' whatever the rule."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict whose keys are exactly the field names."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def oct_class_order(class_names: Sequence[str]) -> tuple[int, ...] | None:
    """Column index of CNV, DME, DRUSEN, NORMAL in ``class_names``, or None if not those four."""
    normalized = [str(name).strip().upper() for name in class_names]
    if sorted(normalized) != sorted(OCT_CLASSES):
        return None
    return tuple(normalized.index(name) for name in OCT_CLASSES)


ARGMAX_RULE = "predicted class CNV or DME"


def urgent_rule_text(threshold: float | None) -> str:
    """The urgent-referral rule in words: ``P(CNV) + P(DME) >= 0.1234``, or the argmax rule."""
    return ARGMAX_RULE if threshold is None else f"P(CNV) + P(DME) >= {threshold:.4g}"


def urgent_calls(probabilities: np.ndarray, class_names: Sequence[str], threshold: float | None) -> np.ndarray | None:
    """(N,) whether each image is called urgent: ``P(CNV) + P(DME) >= threshold``, or, when
    ``threshold`` is None, its predicted class is CNV or DME; None when the classes are not the four OCT ones."""
    order = oct_class_order(class_names)
    if order is None:
        return None
    p = np.asarray(probabilities, dtype=np.float64)
    if threshold is None:
        return np.isin(p.argmax(axis=1), order[:2])
    return p[:, order[0]] + p[:, order[1]] >= threshold


def urgent_scores(
    y_true: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(is_urgent, score)``: (N,) whether each image's true class is CNV or DME, and (N,) its urgent
    score ``P(CNV) + P(DME)``; None when the classes are not the four OCT ones."""
    order = oct_class_order(class_names)
    if order is None:
        return None
    y, p, _ = validate_predictions(y_true, probabilities, class_names)
    cnv, dme = order[0], order[1]
    return (y == cnv) | (y == dme), p[:, cnv] + p[:, dme]


def compute_referral_metrics(
    y_true: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str], threshold: float | None = None
) -> ReferralMetrics | None:
    """Kermany et al. 2018 referral metrics, or None when the classes are not the four OCT ones.

    Args:
        y_true: (N,) integer class indices into ``class_names``.
        probabilities: (N, 4) softmax outputs, column k for ``class_names[k]``.
        class_names: the four names in any order and letter case.
        threshold: urgent when ``P(CNV) + P(DME) >= threshold``; None: when the predicted class is
            CNV or DME. Only the urgent-vs-rest counts (sensitivity, specificity) follow it.

    Raises:
        ValueError: the arrays are malformed (see ``validate_predictions``).
    """
    order = oct_class_order(class_names)
    if order is None:
        return None
    y, p, _ = validate_predictions(y_true, probabilities, class_names)
    called = urgent_calls(p, class_names, threshold)
    # Re-index into the canonical OCT_CLASSES order. argmax runs on the caller's column order,
    # so a tie resolves exactly as in compute_classification_metrics.
    to_canonical = np.empty(len(order), dtype=np.int64)
    to_canonical[list(order)] = np.arange(len(order))
    predicted = to_canonical[np.argmax(p, axis=1)]
    y = to_canonical[y]
    p = p[:, list(order)]
    confusion = confusion_matrix(y, predicted, len(OCT_CLASSES))

    urgent = [0, 1]
    is_urgent = y < 2
    true_positive = int((called & is_urgent).sum())
    false_negative = int((~called & is_urgent).sum())
    false_positive = int((called & ~is_urgent).sum())
    true_negative = int((~called & ~is_urgent).sum())
    n_urgent, n_non_urgent = true_positive + false_negative, false_positive + true_negative
    urgent_predicted_normal = int(confusion[urgent, 3].sum())
    urgent_predicted_drusen = int(confusion[urgent, 2].sum())
    n_errors = int(confusion.sum() - np.trace(confusion))
    total_penalty = int((confusion * PENALTY).sum())
    n_images = int(y.shape[0])

    return ReferralMetrics(
        n_images=n_images,
        accuracy=float(np.trace(confusion) / n_images),
        urgent_sensitivity=float(true_positive / n_urgent) if n_urgent else None,
        urgent_specificity=float(true_negative / n_non_urgent) if n_non_urgent else None,
        urgent_roc_auc=binary_roc_auc(is_urgent, p[:, 0] + p[:, 1]),
        weighted_error=float(total_penalty / n_images),
        n_urgent=n_urgent,
        n_non_urgent=n_non_urgent,
        true_positive=true_positive,
        false_negative=false_negative,
        true_negative=true_negative,
        false_positive=false_positive,
        urgent_predicted_normal=urgent_predicted_normal,
        urgent_predicted_drusen=urgent_predicted_drusen,
        other_errors=n_errors - urgent_predicted_normal - urgent_predicted_drusen,
        total_penalty=total_penalty,
        threshold=None if threshold is None else float(threshold),
    )
