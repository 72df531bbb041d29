"""The numbers about a test split's predictions beyond the point metrics, computed together:
intervals, calibration, the urgent-referral operating point and selective prediction."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from octreport.evaluation.bootstrap import BootstrapSettings
from octreport.evaluation.calibration import CalibrationResult, compute_calibration
from octreport.evaluation.intervals import MetricIntervals, compute_metric_intervals
from octreport.evaluation.metrics import ClassificationMetrics
from octreport.evaluation.operating_point import (
    SelectivePrediction,
    UrgentOperatingPoint,
    selective_prediction,
    urgent_operating_point,
)
from octreport.evaluation.referral import ReferralMetrics


@dataclass(frozen=True, eq=False)
class PredictionStatistics:
    intervals: MetricIntervals
    calibration: CalibrationResult
    urgent: UrgentOperatingPoint | None
    """None unless the classes are the four OCT ones."""
    selective: SelectivePrediction


def compute_prediction_statistics(
    metrics: ClassificationMetrics,
    referral: ReferralMetrics | None,
    probabilities: np.ndarray,
    groups: Sequence[Hashable] | None = None,
    settings: BootstrapSettings = BootstrapSettings(),
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    no_validation_reason: str = "",
) -> PredictionStatistics:
    """Everything above for the predictions ``metrics`` was computed from.

    ``groups``: the patient of each image (None: images are independent). ``validation``:
    ``(y_val, p_val)`` to fit temperature scaling on, or None (``no_validation_reason`` says why).
    The operating point marks the rule ``referral`` was computed under.
    """
    y = metrics.y_true
    return PredictionStatistics(
        intervals=compute_metric_intervals(metrics, probabilities, referral, groups, settings),
        calibration=compute_calibration(y, probabilities, validation, no_validation_reason=no_validation_reason),
        urgent=urgent_operating_point(y, probabilities, metrics.class_names,
                                      rule_threshold=None if referral is None else referral.threshold),
        selective=selective_prediction(y, probabilities),
    )
