"""Calibration (ECE, Brier, temperature scaling), the urgent-referral operating point and
selective prediction, on hand-computed cases and simulated models."""

from __future__ import annotations

import numpy as np
import pytest

from octreport.evaluation.calibration import (
    apply_temperature,
    brier_score,
    compute_calibration,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability_bins,
)
from octreport.evaluation.operating_point import roc_curve, selective_prediction, urgent_operating_point
from octreport.evaluation.referral import KERMANY_2018_REFERENCE, compute_referral_metrics

OCT = ("CNV", "DME", "DRUSEN", "NORMAL")


def test_ece_and_brier_by_hand():
    # Two classes. Confidence 0.9 twice (one right, one wrong) and 0.6 twice (both right):
    # bin 0.9-1.0: accuracy 0.5, confidence 0.9 -> |0.4| * 2/4; bin 0.6-0.7: accuracy 1, confidence 0.6 -> |0.4| * 2/4.
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    y = np.array([0, 1, 0, 1])
    assert expected_calibration_error(y, p) == pytest.approx(0.4)
    # Brier: (0.1^2 + 0.1^2), (0.9^2 + 0.9^2), (0.4^2 + 0.4^2), (0.4^2 + 0.4^2), mean.
    assert brier_score(y, p) == pytest.approx((0.02 + 1.62 + 0.32 + 0.32) / 4)
    assert negative_log_likelihood(y, p) == pytest.approx(-np.mean(np.log([0.9, 0.1, 0.6, 0.6])))
    bins = reliability_bins(p.max(axis=1), p.argmax(axis=1) == y)
    assert [b.count for b in bins] == [0, 0, 0, 0, 0, 0, 2, 0, 0, 2]
    assert (bins[9].accuracy, bins[9].mean_confidence) == pytest.approx((0.5, 0.9))
    assert bins[0].accuracy is None
    assert reliability_bins(np.array([1.0]), np.array([True]))[-1].count == 1  # confidence 1 lands in the last bin


def simulated(n: int, seed: int, overconfidence: float = 1.0, k: int = 4):
    """A model whose true class probabilities are softmax(z); ``overconfidence`` > 1 sharpens what it reports."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=2.0, size=(n, k))
    truth = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(truth, axis=1)).sum(axis=1)  # drawn from the true probabilities
    reported = np.exp(overconfidence * z)
    return y, reported / reported.sum(axis=1, keepdims=True)


def test_a_perfectly_calibrated_model_has_ece_near_zero_and_an_overconfident_one_does_not():
    y, p = simulated(20_000, seed=0)
    assert expected_calibration_error(y, p) < 0.015
    y, p = simulated(20_000, seed=0, overconfidence=3.0)
    assert expected_calibration_error(y, p) > 0.1
    result = compute_calibration(y, p)
    assert "overconfident" in result.reading and "it is right" in result.reading
    assert result.temperature is None


def test_temperature_scaling_lowers_validation_nll_and_never_changes_the_argmax():
    y_val, p_val = simulated(3000, seed=1, overconfidence=3.0)
    y_test, p_test = simulated(3000, seed=2, overconfidence=3.0)
    t = fit_temperature(y_val, p_val)
    assert t == pytest.approx(3.0, rel=0.15)  # undoes the sharpening
    assert negative_log_likelihood(y_val, apply_temperature(p_val, t)) < negative_log_likelihood(y_val, p_val) - 0.05
    for p in (p_val, p_test):
        assert np.array_equal(apply_temperature(p, t).argmax(axis=1), p.argmax(axis=1))
    result = compute_calibration(y_test, p_test, validation=(y_val, p_val))
    scaling = result.temperature
    assert scaling.val_nll_after < scaling.val_nll_before and scaling.test_ece_after < result.ece / 2
    assert "T = " in result.temperature_note and "Reported only" in result.temperature_note
    # A calibrated model keeps T close to 1.
    y_cal, p_cal = simulated(5000, seed=3)
    assert fit_temperature(y_cal, p_cal) == pytest.approx(1.0, abs=0.1)


def test_temperature_scaling_never_does_worse_than_leaving_the_model_alone():
    y = np.array([0, 1, 0, 1])
    p = np.array([[0.6, 0.4], [0.4, 0.6], [0.6, 0.4], [0.4, 0.6]])  # right every time: sharper is better
    t = fit_temperature(y, p)
    assert t < 1 and negative_log_likelihood(y, apply_temperature(p, t)) <= negative_log_likelihood(y, p)


# ---------- operating points ----------


def test_roc_curve_by_hand():
    fpr, tpr, thresholds = roc_curve(np.array([1, 1, 0, 1, 0]), np.array([0.9, 0.8, 0.8, 0.4, 0.1]))
    assert thresholds.tolist() == [np.inf, 0.9, 0.8, 0.4, 0.1]
    assert tpr.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1, 1])
    assert fpr.tolist() == pytest.approx([0, 0, 0.5, 0.5, 1])


def oct_predictions(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    logits = rng.normal(size=(n, 4))
    logits[np.arange(n), y] += 2.5
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


def test_urgent_operating_point_marks_the_used_and_the_published_point():
    y, p = oct_predictions()
    names = ("NORMAL", "CNV", "DRUSEN", "DME")  # any order: CNV and DME are found by name
    point = urgent_operating_point(y, p, names)
    referral = compute_referral_metrics(y, p, names)
    assert point.used.true_positive_rate == pytest.approx(referral.urgent_sensitivity)
    assert 1 - point.used.false_positive_rate == pytest.approx(referral.urgent_specificity)
    assert point.roc_auc == pytest.approx(referral.urgent_roc_auc)
    assert point.reference.true_positive_rate == KERMANY_2018_REFERENCE.urgent_sensitivity
    score = p[:, 1] + p[:, 3]
    urgent = (y == 1) | (y == 3)
    half = next(r for r in point.rows if r.threshold == 0.5)
    assert half.sensitivity == pytest.approx(((score >= 0.5) & urgent).sum() / urgent.sum())
    assert half.specificity == pytest.approx(((score < 0.5) & ~urgent).sum() / (~urgent).sum())
    sensitivities = [r.sensitivity for r in point.rows]
    assert sensitivities == sorted(sensitivities, reverse=True)  # thresholds ascend: sensitivity can only fall
    match = point.reference_match
    assert match.sensitivity >= KERMANY_2018_REFERENCE.urgent_sensitivity
    assert ((score >= match.threshold + 1e-9) & urgent).sum() / urgent.sum() < KERMANY_2018_REFERENCE.urgent_sensitivity
    assert point.false_positive_rate[0] == 0 and point.true_positive_rate[-1] == 1
    assert urgent_operating_point(y, p, ("a", "b", "c", "d")) is None


def test_selective_prediction_by_hand():
    # Confidence order: 0.95 (right), 0.9 (wrong), 0.8 (right), 0.7 (right), 0.6 (wrong)
    p = np.array([[0.95, 0.05], [0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    y = np.array([0, 0, 0, 1, 1])
    selective = selective_prediction(y, p, referred_shares=(0.0, 0.2, 0.4, 0.8, 1.0))
    assert [(r.n_kept, r.accuracy) for r in selective.rows] == [(5, 0.6), (4, 0.75), (3, 2 / 3), (1, 1.0), (0, None)]
    assert selective.accuracy.tolist() == pytest.approx([1.0, 0.5, 2 / 3, 0.75, 0.6])
    y, p = oct_predictions(1000)
    rows = selective_prediction(y, p).rows
    assert rows[0].accuracy < rows[2].accuracy  # referring the least confident helps a sensible model
    assert "Refer the 10% least confident" in selective_prediction(y, p).reading
