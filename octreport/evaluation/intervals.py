"""Confidence intervals on every headline number of a test split.

* Proportions counted over images, which the report gives per class and overall (accuracy, each
  class's precision, sensitivity and specificity, and urgent-referral sensitivity and
  specificity), get **Wilson score intervals** (Wilson 1927): exact in coverage to within a point
  or two even at 0 or 100%, where the textbook normal interval, and a percentile bootstrap,
  collapse to a single value (a sensitivity of 50/50 would read "100.0 (95% CI 100.0-100.0)").
* Everything else (macro and weighted F1, the ROC AUCs, the Kermany weighted error) gets a
  **percentile bootstrap** interval from
  :mod:`octreport.evaluation.bootstrap`: seeded, vectorised, and over patients rather than images
  when patient IDs are known (Kermany file names ``CLASS-PATIENT-N.jpeg``), since the scans of one
  patient are not independent.

Wilson intervals count images as independent; when patients contribute several scans, they are
somewhat narrower than the truth, which the report says beside them.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from octreport.evaluation.bootstrap import (
    BootstrapSettings,
    StatisticsPlan,
    bootstrap_distributions,
    cluster_index,
    percentile_interval,
)
from octreport.evaluation.metrics import ClassificationMetrics
from octreport.evaluation.referral import ReferralMetrics

WILSON = "wilson"


@dataclass(frozen=True)
class Interval:
    """A value with its two-sided confidence interval at ``level``. ``low``/``high`` are None when
    the value is undefined (or undefined in most bootstrap resamples)."""

    value: float | None
    low: float | None
    high: float | None
    method: str
    """``wilson``, or ``bootstrap over images`` / ``bootstrap over patients``."""
    level: float = 0.95

    @property
    def known(self) -> bool:
        return self.value is not None and self.low is not None and self.high is not None

    def to_dict(self) -> dict[str, Any]:
        """``{value, low, high, method}`` (the level is stated once, beside all intervals)."""
        return {"value": self.value, "low": self.low, "high": self.high, "method": self.method}


def z_value(level: float) -> float:
    """The standard normal quantile for a two-sided ``level``: 1.959964 for 0.95."""
    return NormalDist().inv_cdf(0.5 + level / 2)


def wilson_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval of ``successes / trials``; None when there are no trials."""
    if trials <= 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must lie in 0..{trials}, got {successes}")
    z = z_value(level)
    p, n = successes / trials, float(trials)
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At 0 or n successes one bound is exactly 0 or 1; say so rather than 0.9999999999999999.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def wilson(successes: int, trials: int, level: float = 0.95) -> Interval:
    """A proportion with its Wilson score interval (value and bounds None when there are no trials)."""
    bounds = wilson_interval(successes, trials, level)
    if bounds is None:
        return Interval(None, None, None, WILSON, level)
    return Interval(successes / trials, bounds[0], bounds[1], WILSON, level)


def student_t_quantile(probability: float, df: int) -> float:
    """Quantile of Student's t with ``df`` degrees of freedom (for a mean over a few CV folds).

    The CDF is integrated numerically (Simpson, 2,000 steps) and inverted by bisection; accurate to
    about 1e-6, plenty for an interval. No SciPy needed.
    """
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {df}")
    if not 0 < probability < 1:
        raise ValueError(f"probability must lie in (0, 1), got {probability}")
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(t: float) -> float:  # P(T <= t) for t >= 0, by Simpson's rule on [0, t]
        x = np.linspace(0.0, t, 2001)
        pdf = np.exp(log_norm - (df + 1) / 2 * np.log1p(x * x / df))
        weights = np.ones_like(x)
        weights[1:-1:2], weights[2:-1:2] = 4, 2
        return 0.5 + float((weights * pdf).sum() * (t / 2000) / 3)

    target = max(probability, 1 - probability)
    low, high = 0.0, 1.0
    while cdf(high) < target:
        high *= 2
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) < target else (low, middle)
    quantile = (low + high) / 2
    return quantile if probability >= 0.5 else -quantile


def mean_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float] | None:
    """``(mean, low, high)``: the t interval of the mean of a few values (e.g. one per CV fold)."""
    data = [float(v) for v in values]
    if len(data) < 2:
        return None
    mean = sum(data) / len(data)
    sd = math.sqrt(sum((v - mean) ** 2 for v in data) / (len(data) - 1))
    half = student_t_quantile(0.5 + level / 2, len(data) - 1) * sd / math.sqrt(len(data))
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class ClassIntervals:
    name: str
    precision: Interval
    recall: Interval
    specificity: Interval
    f1: Interval
    roc_auc: Interval

    def to_dict(self) -> dict[str, Any]:
        return {m: getattr(self, m).to_dict() for m in ("precision", "recall", "specificity", "f1", "roc_auc")}


@dataclass(frozen=True)
class ReferralIntervals:
    urgent_sensitivity: Interval
    urgent_specificity: Interval
    urgent_roc_auc: Interval
    weighted_error: Interval

    def to_dict(self) -> dict[str, Any]:
        return {m: getattr(self, m).to_dict() for m in self.__dataclass_fields__}


@dataclass(frozen=True)
class MetricIntervals:
    """Every headline number of one test split with its interval.

    ``unit`` is ``patient`` when the bootstrap drew patients (some patient has several test scans)
    and ``image`` otherwise; ``n_units`` is how many of them there are.
    """

    settings: BootstrapSettings
    n_images: int
    unit: str
    n_units: int
    accuracy: Interval
    macro_precision: Interval
    macro_recall: Interval
    macro_f1: Interval
    weighted_precision: Interval
    weighted_f1: Interval
    macro_roc_auc: Interval
    per_class: tuple[ClassIntervals, ...]
    referral: ReferralIntervals | None

    @property
    def level(self) -> float:
        return self.settings.level

    @property
    def bootstrap_method(self) -> str:
        return f"bootstrap over {self.unit}s"

    def for_class(self, name: str) -> ClassIntervals:
        return next(c for c in self.per_class if c.name == name)

    def describe(self) -> str:
        """The methods in one paragraph, for the report."""
        level = f"{self.level:.0%}".replace(".0%", "%")
        unit = (f"{self.n_units:,} patients (all scans of a patient drawn together, {self.n_images:,} scans)"
                if self.unit == "patient" else f"{self.n_images:,} images")
        text = (
            f"Every number carries its {level} confidence interval (CI). Proportions (accuracy, each class's "
            f"precision, sensitivity and specificity, urgent-referral sensitivity and specificity) use Wilson score "
            f"intervals; macro and weighted averages, F1, the ROC AUCs and the weighted error use a percentile "
            f"bootstrap with {self.settings.resamples:,} resamples of the {unit}, seed {self.settings.seed}."
        )
        if self.unit == "patient":
            text += (" Wilson intervals count scans as independent; since some patients have several scans, "
                     "they can be somewhat narrower than the truth.")
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: level, resamples, seed, unit, n_units, n_images, then ``{value, low, high, method}``
        per metric, in the shape of ``classification`` and ``referral``."""
        return {
            **self.settings.to_dict(),
            "unit": self.unit,
            "n_units": self.n_units,
            "n_images": self.n_images,
            "accuracy": self.accuracy.to_dict(),
            "macro": {"precision": self.macro_precision.to_dict(), "recall": self.macro_recall.to_dict(),
                      "f1": self.macro_f1.to_dict()},
            "weighted": {"precision": self.weighted_precision.to_dict(), "f1": self.weighted_f1.to_dict()},
            "macro_roc_auc": self.macro_roc_auc.to_dict(),
            "per_class": {c.name: c.to_dict() for c in self.per_class},
            "referral": None if self.referral is None else self.referral.to_dict(),
        }


def urgent_wilson(referral: ReferralMetrics, level: float = 0.95) -> tuple[Interval, Interval]:
    """``(sensitivity, specificity)`` of ``referral``'s urgent calls with their Wilson intervals (the
    rule's, or argmax's shown beside it)."""
    return (wilson(referral.true_positive, referral.n_urgent, level),
            wilson(referral.true_negative, referral.n_non_urgent, level))


def compute_metric_intervals(
    metrics: ClassificationMetrics,
    probabilities: np.ndarray,
    referral: ReferralMetrics | None = None,
    groups: Sequence[Hashable] | None = None,
    settings: BootstrapSettings = BootstrapSettings(),
) -> MetricIntervals:
    """Intervals for ``metrics`` (and ``referral``), computed from the same predictions.

    Args:
        metrics: from :func:`~octreport.evaluation.metrics.compute_classification_metrics`.
        probabilities: (N, K), the array those metrics were computed from.
        referral: the referral metrics of the same predictions, or None.
        groups: (N,) a patient (any hashable) per image, or None when unknown: images are then
            resampled one by one.
    """
    level = settings.level
    plan = StatisticsPlan(metrics.y_true, probabilities, metrics.class_names,
                          None if referral is None else referral.threshold)
    [distribution] = bootstrap_distributions([plan], groups, settings)
    _, n_units = cluster_index(groups, metrics.n_images)
    unit = "patient" if n_units < metrics.n_images else "image"
    method = f"bootstrap over {unit}s"

    def boot(key: str, value: float | None) -> Interval:
        bounds = None if value is None else percentile_interval(distribution[key], level)
        return Interval(value, None if bounds is None else bounds[0], None if bounds is None else bounds[1], method, level)

    confusion = metrics.confusion
    n = metrics.n_images
    per_class = []
    for k, row in enumerate(metrics.per_class):
        tp = int(confusion[k, k])
        tn = n - row.support - row.predicted_count + tp
        per_class.append(ClassIntervals(
            row.name,
            precision=wilson(tp, row.predicted_count, level),
            recall=wilson(tp, row.support, level),
            specificity=wilson(tn, n - row.support, level),
            f1=boot(f"per_class.{row.name}.f1", row.f1),
            roc_auc=boot(f"per_class.{row.name}.roc_auc", row.roc_auc),
        ))
    referral_intervals = None
    if referral is not None and "referral.weighted_error" in distribution:
        sensitivity, specificity = urgent_wilson(referral, level)
        referral_intervals = ReferralIntervals(
            urgent_sensitivity=sensitivity,
            urgent_specificity=specificity,
            urgent_roc_auc=boot("referral.urgent_roc_auc", referral.urgent_roc_auc),
            weighted_error=boot("referral.weighted_error", referral.weighted_error),
        )
    return MetricIntervals(
        settings=settings,
        n_images=n,
        unit=unit,
        n_units=n_units,
        accuracy=wilson(int(np.trace(confusion)), n, level),
        macro_precision=boot("macro.precision", metrics.macro.precision),
        macro_recall=boot("macro.recall", metrics.macro.recall),
        macro_f1=boot("macro.f1", metrics.macro.f1),
        weighted_precision=boot("weighted.precision", metrics.weighted.precision),
        weighted_f1=boot("weighted.f1", metrics.weighted.f1),
        macro_roc_auc=boot("macro_roc_auc", metrics.macro_roc_auc),
        per_class=tuple(per_class),
        referral=referral_intervals,
    )
