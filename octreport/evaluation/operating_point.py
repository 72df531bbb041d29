"""Operating points: where to set the urgent-referral threshold, and what referring the least
confident scans to a human buys (pure NumPy).

* :func:`urgent_operating_point` (the four OCT classes only): the ROC curve of the urgent score
  ``P(CNV) + P(DME)`` (urgent when the score is at least a threshold), the point the report's
  metrics use (the model's referral rule: a threshold, or the predicted class CNV or DME),
  Kermany et al.'s published point, and sensitivity and specificity at a few thresholds.
* :func:`selective_prediction` (any classes): accuracy on the scans kept when the least confident
  share of them is referred to a human instead (accuracy against coverage).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from octreport.evaluation.metrics import binary_roc_auc
from octreport.evaluation.referral import KERMANY_2018_REFERENCE, urgent_calls, urgent_rule_text, urgent_scores

THRESHOLDS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
REFERRED_SHARES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)


@dataclass(frozen=True)
class ThresholdRow:
    """Urgent when ``P(CNV) + P(DME) >= threshold``."""

    threshold: float
    sensitivity: float | None
    specificity: float | None
    flagged_share: float
    """Share of all test scans called urgent at this threshold."""
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "sensitivity": self.sensitivity, "specificity": self.specificity,
                "flagged_share": self.flagged_share, "label": self.label}


@dataclass(frozen=True)
class RocPoint:
    false_positive_rate: float | None
    true_positive_rate: float | None

    @property
    def specificity(self) -> float | None:
        return None if self.false_positive_rate is None else 1 - self.false_positive_rate

    def to_dict(self) -> dict[str, Any]:
        return {"false_positive_rate": self.false_positive_rate, "true_positive_rate": self.true_positive_rate}


@dataclass(frozen=True, eq=False)
class UrgentOperatingPoint:
    """The urgent-referral ROC curve and the points on it worth knowing.

    Arrays (M points, from the strictest threshold to the loosest): ``false_positive_rate`` (M,),
    ``true_positive_rate`` (M,), ``thresholds`` (M,), the first point (0, 0) at threshold +inf.
    """

    n_urgent: int
    n_non_urgent: int
    roc_auc: float | None
    false_positive_rate: np.ndarray
    true_positive_rate: np.ndarray
    thresholds: np.ndarray
    used: RocPoint
    """The report's rule: urgent when the score reaches ``used_threshold``, or, when that is None,
    when the predicted class is CNV or DME."""
    reference: RocPoint
    """Kermany et al. 2018's published sensitivity and specificity."""
    rows: tuple[ThresholdRow, ...]
    reference_match: ThresholdRow | None
    """The highest threshold whose sensitivity reaches the published one, when any does."""
    used_threshold: float | None = None

    @property
    def used_rule(self) -> str:
        return urgent_rule_text(self.used_threshold)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the curve itself is left out (it has a point per distinct score)."""
        return {
            "score": "P(CNV) + P(DME)",
            "n_urgent": self.n_urgent, "n_non_urgent": self.n_non_urgent, "roc_auc": self.roc_auc,
            "used": {"rule": self.used_rule, "threshold": self.used_threshold, **self.used.to_dict()},
            "reference": {"source": KERMANY_2018_REFERENCE.source, **self.reference.to_dict()},
            "thresholds": [row.to_dict() for row in self.rows],
            "reference_match": None if self.reference_match is None else self.reference_match.to_dict(),
        }


def roc_curve(is_positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)``, one point per distinct score from the highest down, after (0, 0).

    A point's threshold t calls positive every score ``>= t``. Rates are NaN for an empty group.
    """
    positive = np.asarray(is_positive, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="stable")
    s, positive = s[order], positive[order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(positive)[last_of_tie]
    fp = np.cumsum(~positive)[last_of_tie]
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.r_[0.0, tp / n_pos] if n_pos else np.full(tp.size + 1, np.nan)
        fpr = np.r_[0.0, fp / n_neg] if n_neg else np.full(fp.size + 1, np.nan)
    return fpr, tpr, np.r_[np.inf, s[last_of_tie]]


def _row(threshold: float, urgent: np.ndarray, score: np.ndarray, label: str = "") -> ThresholdRow:
    flagged = score >= threshold
    n_urgent, n_other = int(urgent.sum()), int((~urgent).sum())
    return ThresholdRow(
        threshold=float(threshold),
        sensitivity=float((flagged & urgent).sum() / n_urgent) if n_urgent else None,
        specificity=float((~flagged & ~urgent).sum() / n_other) if n_other else None,
        flagged_share=float(flagged.mean()),
        label=label,
    )


def urgent_operating_point(
    y_true: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str], thresholds: Sequence[float] = THRESHOLDS,
    rule_threshold: float | None = None,
) -> UrgentOperatingPoint | None:
    """The urgent-referral ROC curve and operating points, or None when the classes are not the four OCT ones.

    ``rule_threshold``: the threshold of the report's referral rule; None: the predicted class.
    """
    scored = urgent_scores(y_true, probabilities, class_names)
    if scored is None:
        return None
    urgent, score = scored
    called = urgent_calls(probabilities, class_names, rule_threshold)
    n_urgent, n_other = int(urgent.sum()), int((~urgent).sum())
    fpr, tpr, cut = roc_curve(urgent, score)
    used = RocPoint(
        float((called & ~urgent).sum() / n_other) if n_other else None,
        float((called & urgent).sum() / n_urgent) if n_urgent else None,
    )
    ref = KERMANY_2018_REFERENCE
    match = None
    if n_urgent:
        reaching = [t for t, rate in zip(cut[1:], tpr[1:]) if rate >= ref.urgent_sensitivity - 1e-12]
        if reaching:
            match = _row(float(reaching[0]), urgent, score, f"highest threshold reaching the published sensitivity {ref.urgent_sensitivity:.1%}")
    return UrgentOperatingPoint(
        n_urgent=n_urgent, n_non_urgent=n_other, roc_auc=binary_roc_auc(urgent, score),
        false_positive_rate=fpr, true_positive_rate=tpr, thresholds=cut,
        used=used, reference=RocPoint(1 - ref.urgent_specificity, ref.urgent_sensitivity),
        rows=tuple(_row(t, urgent, score) for t in thresholds), reference_match=match,
        used_threshold=None if rule_threshold is None else float(rule_threshold),
    )


@dataclass(frozen=True)
class SelectiveRow:
    referred_share: float
    n_kept: int
    accuracy: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"referred_share": self.referred_share, "n_kept": self.n_kept, "accuracy": self.accuracy}


@dataclass(frozen=True, eq=False)
class SelectivePrediction:
    """Accuracy on the scans kept when the least confident are referred to a human.

    ``coverage`` (N,) and ``accuracy`` (N,): keeping the ``i + 1`` most confident scans, the share
    kept and their accuracy (the accuracy-coverage curve, most confident first).
    """

    n_images: int
    coverage: np.ndarray
    accuracy: np.ndarray
    rows: tuple[SelectiveRow, ...]
    reading: str

    def to_dict(self) -> dict[str, Any]:
        return {"confidence": "largest class probability", "rows": [r.to_dict() for r in self.rows],
                "reading": self.reading}


def selective_prediction(
    y_true: np.ndarray, probabilities: np.ndarray, referred_shares: Sequence[float] = REFERRED_SHARES
) -> SelectivePrediction:
    """Rank scans by confidence (largest probability, ties kept in input order) and measure the
    accuracy of the most confident ones at each referred share (``round(share * N)`` referred)."""
    y = np.asarray(y_true)
    p = np.asarray(probabilities, dtype=np.float64)
    n = int(y.shape[0])
    if n == 0:
        raise ValueError("selective prediction needs at least one scan")
    order = np.argsort(-p.max(axis=1), kind="stable")
    correct = (p.argmax(axis=1) == y)[order]
    kept = np.arange(1, n + 1)
    running = np.cumsum(correct) / kept
    rows = []
    for share in referred_shares:
        keep = n - int(round(share * n))
        rows.append(SelectiveRow(float(share), keep, float(running[keep - 1]) if keep > 0 else None))
    return SelectivePrediction(n, kept / n, running, tuple(rows), _selective_reading(rows))


def _selective_reading(rows: Sequence[SelectiveRow]) -> str:
    base = next((r for r in rows if r.referred_share == 0), None)
    chosen = next((r for r in rows if abs(r.referred_share - 0.1) < 1e-9), None)
    if base is None or chosen is None or chosen.accuracy is None:
        return ""
    return (
        f"Refer the 10% least confident scans to a human: accuracy {chosen.accuracy:.1%} on the other "
        f"{chosen.n_kept:,} (against {base.accuracy:.1%} on all {base.n_kept:,})."
    )
