"""Is the change between two runs real? Significance tests for two sets of predictions.

* Paired (both runs evaluated the same images): proportions of images (accuracy, each class's
  sensitivity, urgent-referral sensitivity and specificity) get the **exact McNemar test**: only
  the images one run got right and the other wrong count, and under "no change" each such image
  is a fair coin (two-sided binomial test). Everything else (F1, precision, the ROC AUCs, the
  weighted error) gets a **paired bootstrap**: both runs scored on the same resamples (of patients
  when known), the interval of B - A, and significance when it excludes 0.
* Not paired (the images differ): only the two runs' own intervals can be set side by side; a
  change counts as significant when they do not overlap (a conservative check).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from octreport.evaluation.bootstrap import BootstrapSettings, StatisticsPlan, bootstrap_distributions, point_values
from octreport.evaluation.referral import oct_class_order, urgent_calls

MCNEMAR = "exact McNemar"
NOT_PAIRED = "intervals compared (not paired)"


@dataclass(frozen=True)
class McNemarResult:
    """Images only run A classified correctly (``only_a``), only run B (``only_b``), and the
    two-sided exact p-value of "both runs are equally often right"."""

    n_images: int
    only_a: int
    only_b: int
    p_value: float


def mcnemar_p_value(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: ``min(1, 2 P(X <= min(b, c)))``, X ~ Binomial(b + c, 1/2)."""
    if only_a < 0 or only_b < 0:
        raise ValueError(f"counts must be 0 or more, got {only_a} and {only_b}")
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    i = np.arange(k + 1, dtype=np.float64)
    log_terms = (math.lgamma(n + 1) - np.array([math.lgamma(v + 1) + math.lgamma(n - v + 1) for v in i])
                 - n * math.log(2.0))
    top = log_terms.max()
    tail = math.exp(top) * float(np.exp(log_terms - top).sum())
    return min(1.0, 2.0 * tail)


def mcnemar_exact(a_correct: np.ndarray, b_correct: np.ndarray) -> McNemarResult:
    """McNemar's exact test on two runs' per-image correctness (both (N,) bool, same images)."""
    a, b = np.asarray(a_correct, dtype=bool), np.asarray(b_correct, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired test: {a.shape} and {b.shape} images")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    return McNemarResult(int(a.size), only_a, only_b, mcnemar_p_value(only_a, only_b))


@dataclass(frozen=True)
class SignificanceTest:
    """Whether the change B - A of one metric is significant at ``level``.

    ``low``/``high``: the interval of B - A (paired bootstrap), when there is one. ``significant``
    is None when the change could not be tested.
    """

    method: str
    significant: bool | None
    p_value: float | None = None
    low: float | None = None
    high: float | None = None
    level: float = 0.95
    detail: str = ""

    @property
    def verdict(self) -> str:
        """``significant (p = 0.003)``, ``not significant (p = 0.41)``, ``not tested``, ..."""
        if self.significant is None:
            return "not tested" + (f" ({self.detail})" if self.detail else "")
        words = "significant" if self.significant else "not significant"
        if self.p_value is not None:
            return f"{words} (p {'< 0.001' if self.p_value < 0.001 else '= ' + format(self.p_value, '.3f')})"
        return f"{words} ({self.detail})" if self.detail else words

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "significant": self.significant, "p_value": self.p_value,
                "difference_low": self.low, "difference_high": self.high, "detail": self.detail,
                "verdict": self.verdict}


def _bootstrap_p_value(differences: np.ndarray) -> float:
    """Two-sided p-value from the bootstrap distribution of B - A (the percentile interval inverted)."""
    d = differences[~np.isnan(differences)]
    if d.size == 0:
        return 1.0
    return float(min(1.0, 2.0 * min((d <= 0).mean(), (d >= 0).mean())))


def _proportion_subsets(y: np.ndarray, class_names: Sequence[str]) -> dict[str, np.ndarray]:
    """For each proportion tested with McNemar, the images it counts."""
    subsets = {"accuracy": np.ones(y.shape, dtype=bool)}
    for k, name in enumerate(class_names):
        subsets[f"per_class.{name}.recall"] = y == k
    order = oct_class_order(class_names)
    if order is not None:
        urgent = (y == order[0]) | (y == order[1])
        subsets["referral.urgent_sensitivity"] = urgent
        subsets["referral.urgent_specificity"] = ~urgent
    return subsets


def _right(key: str, y: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str],
           threshold: float | None) -> np.ndarray:
    """Per image: did the run get ``key``'s decision right (the class, or urgent vs not, under the
    run's referral rule: ``P(CNV) + P(DME) >= threshold``, or the predicted class when None)?"""
    if key.startswith("referral.urgent_"):
        return urgent_calls(probabilities, class_names, threshold) == np.isin(y, oct_class_order(class_names)[:2])
    return probabilities.argmax(axis=1) == y


def paired_tests(
    y_true: np.ndarray,
    probabilities_a: np.ndarray,
    probabilities_b: np.ndarray,
    class_names: Sequence[str],
    groups: Sequence[Hashable] | None = None,
    settings: BootstrapSettings = BootstrapSettings(),
    referral_thresholds: tuple[float | None, float | None] = (None, None),
) -> dict[str, SignificanceTest]:
    """Every statistic of :mod:`octreport.evaluation.bootstrap`, run B against run A on the same images.

    ``probabilities_a`` and ``probabilities_b`` are (N, K) for the same N images (rows aligned) with
    true classes ``y_true``; ``groups`` names each image's patient when known.
    ``referral_thresholds``: each run's urgent-referral threshold (None: the predicted class), so
    that the urgent sensitivity and specificity are tested under the rules the runs reported: both
    McNemar's counts and the paired bootstrap's interval of the difference.
    """
    y = np.asarray(y_true)
    threshold_a, threshold_b = referral_thresholds
    plan_a = StatisticsPlan(y, probabilities_a, class_names, threshold_a)
    plan_b = StatisticsPlan(y, probabilities_b, class_names, threshold_b)
    dist_a, dist_b = bootstrap_distributions([plan_a, plan_b], groups, settings)
    value_a, value_b = point_values(plan_a), point_values(plan_b)
    p_a, p_b = np.asarray(probabilities_a), np.asarray(probabilities_b)
    unit = "patients" if groups is not None and len(set(groups)) < y.size else "images"
    subsets = _proportion_subsets(y, class_names)
    tests = {}
    for key in plan_a.keys():
        differences = dist_b[key] - dist_a[key]
        defined = differences[~np.isnan(differences)]
        low = high = None
        if value_a[key] is not None and value_b[key] is not None and defined.size >= 0.5 * differences.size:
            low, high = (float(v) for v in np.quantile(defined, [settings.alpha / 2, 1 - settings.alpha / 2]))
        if key in subsets:
            rows = subsets[key]
            result = mcnemar_exact(_right(key, y[rows], p_a[rows], class_names, threshold_a),
                                   _right(key, y[rows], p_b[rows], class_names, threshold_b))
            detail = f"{result.only_a} right only in A, {result.only_b} right only in B"
            tests[key] = SignificanceTest(MCNEMAR, result.p_value < settings.alpha, result.p_value, low, high,
                                          settings.level, detail)
        elif low is None:
            tests[key] = SignificanceTest(f"paired bootstrap over {unit}", None, level=settings.level,
                                          detail="undefined in one run or in most resamples")
        else:
            tests[key] = SignificanceTest(f"paired bootstrap over {unit}", bool(low > 0 or high < 0),
                                          _bootstrap_p_value(differences), low, high, settings.level)
    return tests


def compare_intervals(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None, level: float = 0.95) -> SignificanceTest:
    """Two runs on different images: significant only when their intervals (``{low, high}``) do not overlap."""
    bounds = [(None, None) if x is None else (x.get("low"), x.get("high")) for x in (a, b)]
    if any(v is None for pair in bounds for v in pair):
        return SignificanceTest(NOT_PAIRED, None, level=level, detail="an interval is missing from a run's metrics.json")
    (a_low, a_high), (b_low, b_high) = bounds
    apart = a_high < b_low or b_high < a_low
    return SignificanceTest(NOT_PAIRED, apart, level=level,
                            detail="the intervals do not overlap" if apart else "the intervals overlap")
