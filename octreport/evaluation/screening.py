"""What a model would do with unlabelled scans (pure NumPy): no accuracy, only what the
predictions themselves say.

* the distribution of the predicted classes;
* the distribution of the confidence (the top class probability), in :data:`CONFIDENCE_EDGES` bins;
* for the four OCT classes, how many scans the model's referral rule
  (:func:`octreport.evaluation.referral_rule.applied_rule`: ``--referral-threshold``, the threshold
  on ``P(CNV) + P(DME)`` stored in the model's sidecar, or the predicted class) would send to urgent
  referral, the others by their predicted class to routine referral (DRUSEN) or observation (the
  rest); and, beside them, the same counts under the argmax rule of Kermany et al. 2018 (predicted
  CNV or DME urgent, DRUSEN routine, NORMAL observation);
* selective prediction: how many scans would be deferred to a human at each confidence
  threshold of :data:`DEFERRAL_THRESHOLDS` (top probability below it), the rule whose accuracy
  the labelled report's selective-prediction table measures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from octreport.evaluation.referral import OCT_CLASSES, oct_class_order, urgent_calls
from octreport.evaluation.referral_rule import ReferralRule

CONFIDENCE_EDGES = tuple(round(0.1 * k, 1) for k in range(11))  # 0.0, 0.1, ..., 1.0 exactly as written
DEFERRAL_THRESHOLDS = (0.5, 0.7, 0.9)
REFERRAL_GROUPS = (("urgent referral", ("CNV", "DME")), ("routine referral", ("DRUSEN",)), ("observation", ("NORMAL",)))


@dataclass(frozen=True)
class Deferral:
    """Scans whose top class probability is below ``threshold``: deferred to a human."""

    threshold: float
    count: int
    share: float

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "count": self.count, "share": self.share}


@dataclass(frozen=True, eq=False)
class Screening:
    """The predictions of ``n_images`` unlabelled scans summarised.

    Arrays: ``confidence`` (N,) float64, the top class probability of each scan;
    ``confidence_counts`` (len(CONFIDENCE_EDGES) - 1,) int64, scans per confidence bin."""

    class_names: tuple[str, ...]
    n_images: int
    predicted_counts: tuple[int, ...]
    confidence: np.ndarray
    confidence_counts: np.ndarray
    referral_counts: tuple[tuple[str, int], ...] | None
    """``(decision, scans)`` under ``rule``, the model's referral rule; None for other classes."""
    deferrals: tuple[Deferral, ...]
    rule: ReferralRule | None = None
    """The referral rule applied (None for other classes than the four OCT ones)."""
    argmax_referral_counts: tuple[tuple[str, int], ...] | None = None
    """``(decision, scans)`` under the argmax rule, shown beside ``referral_counts``."""

    @property
    def median_confidence(self) -> float:
        return float(np.median(self.confidence))

    def to_dict(self) -> dict[str, Any]:
        """metrics.json's ``screening`` entry."""
        return {
            "n_images": self.n_images,
            "labels": None,
            "predicted_counts": dict(zip(self.class_names, self.predicted_counts)),
            "median_confidence": self.median_confidence,
            "confidence_histogram": {"edges": list(CONFIDENCE_EDGES), "counts": [int(c) for c in self.confidence_counts]},
            "referral_counts": None if self.referral_counts is None else dict(self.referral_counts),
            "referral_rule": None if self.rule is None else self.rule.to_dict(),
            "argmax_referral_counts": (None if self.argmax_referral_counts is None
                                       else dict(self.argmax_referral_counts)),
            "deferrals": [d.to_dict() for d in self.deferrals],
        }


def screen_predictions(probabilities: np.ndarray, class_names: Sequence[str],
                       rule: ReferralRule | None = None) -> Screening:
    """Summarise (N, K) softmax outputs of unlabelled scans; ``class_names``: the model's K classes;
    ``rule``: the referral rule to apply (:func:`~octreport.evaluation.referral_rule.applied_rule`;
    None, or a rule without a threshold: the predicted class decides)."""
    p = np.asarray(probabilities, dtype=np.float64)
    names = tuple(str(n) for n in class_names)
    if p.ndim != 2 or p.shape[1] != len(names) or p.shape[0] == 0:
        raise ValueError(f"probabilities must have shape (N > 0, {len(names)}), got {p.shape}")
    predicted = np.argmax(p, axis=1)
    confidence = p.max(axis=1)
    counts = np.bincount(predicted, minlength=len(names))
    confidence_counts, _ = np.histogram(confidence, bins=np.asarray(CONFIDENCE_EDGES))
    n = int(p.shape[0])
    deferrals = tuple(Deferral(t, int((confidence < t).sum()), float((confidence < t).mean())) for t in DEFERRAL_THRESHOLDS)
    rule = rule if oct_class_order(names) is not None else None
    return Screening(names, n, tuple(int(c) for c in counts), confidence, confidence_counts.astype(np.int64),
                     _referral_counts(p, names, None if rule is None else rule.threshold), deferrals, rule,
                     _referral_counts(p, names, None))


def _referral_counts(p: np.ndarray, names: tuple[str, ...], threshold: float | None) -> tuple[tuple[str, int], ...] | None:
    """Urgent referral as the rule calls it (``threshold`` on ``P(CNV) + P(DME)``, or the predicted
    class when None); the other scans by their predicted class: DRUSEN routine, the rest observation."""
    urgent = urgent_calls(p, names, threshold)
    if urgent is None:
        return None
    predicted = np.argmax(p, axis=1)
    drusen = predicted == dict(zip(OCT_CLASSES, oct_class_order(names)))["DRUSEN"]
    routine = ~urgent & drusen
    return ((REFERRAL_GROUPS[0][0], int(urgent.sum())), (REFERRAL_GROUPS[1][0], int(routine.sum())),
            (REFERRAL_GROUPS[2][0], int((~urgent & ~drusen).sum())))
