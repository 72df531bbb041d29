"""Confidence intervals: Wilson against published values, the bootstrap's coverage on simulated
data, the patient-level (cluster) bootstrap, seeds and settings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from octreport.config import ReportConfig
from octreport.errors import ConfigError
from octreport.evaluation.bootstrap import (
    BootstrapSettings,
    StatisticsPlan,
    bootstrap_distributions,
    percentile_interval,
    point_values,
)
from octreport.evaluation.intervals import (
    compute_metric_intervals,
    mean_interval,
    student_t_quantile,
    wilson_interval,
)
from octreport.evaluation.metrics import binary_roc_auc, compute_classification_metrics
from octreport.evaluation.referral import PENALTY, compute_referral_metrics

OCT = ("CNV", "DME", "DRUSEN", "NORMAL")


# ---------- Wilson and t ----------


@pytest.mark.parametrize("successes, trials, low, high", [
    # Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3 (Wilson score, no continuity correction).
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_matches_newcombe_1998(successes, trials, low, high):
    got = wilson_interval(successes, trials, 0.95)
    assert got == pytest.approx((low, high), abs=5e-5)


def test_wilson_edges_and_level():
    assert wilson_interval(0, 0) is None
    low, high = wilson_interval(20, 20)
    assert high == 1.0 and wilson_interval(0, 7)[0] == 0.0  # exactly, not 0.9999999999999999
    assert low == pytest.approx(20 / (20 + 1.959964**2), abs=1e-6)  # 0.8389
    narrow, wide = wilson_interval(45, 50, 0.9), wilson_interval(45, 50, 0.99)
    assert wide[0] < narrow[0] < 0.9 < narrow[1] < wide[1]
    with pytest.raises(ValueError):
        wilson_interval(5, 4)


def test_student_t_quantiles_match_the_table():
    assert student_t_quantile(0.975, 4) == pytest.approx(2.7764, abs=1e-4)
    assert student_t_quantile(0.975, 1) == pytest.approx(12.7062, abs=1e-3)
    assert student_t_quantile(0.95, 30) == pytest.approx(1.6973, abs=1e-4)
    assert student_t_quantile(0.025, 4) == pytest.approx(-2.7764, abs=1e-4)
    mean, low, high = mean_interval([0.910, 0.905, 0.960, 0.945, 0.955])  # the README's five CV folds
    assert mean == pytest.approx(0.935) and (low, high) == pytest.approx((0.9030, 0.9670), abs=1e-4)


# ---------- the bootstrap statistics ----------


def random_predictions(n: int, k: int = 4, seed: int = 0, skill: float = 2.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += skill
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


def test_unit_weights_give_the_metrics_themselves():
    y, p = random_predictions(300)
    p[:40] = np.round(p[:40], 1)  # ties in the scores
    values = point_values(StatisticsPlan(y, p, OCT))
    metrics, referral = compute_classification_metrics(y, p, OCT), compute_referral_metrics(y, p, OCT)
    assert values["accuracy"] == pytest.approx(metrics.accuracy)
    assert values["macro.f1"] == pytest.approx(metrics.macro.f1)
    assert values["weighted.f1"] == pytest.approx(metrics.weighted.f1)
    assert values["macro_roc_auc"] == pytest.approx(metrics.macro_roc_auc)
    for row in metrics.per_class:
        for name in ("precision", "recall", "specificity", "f1", "roc_auc"):
            assert values[f"per_class.{row.name}.{name}"] == pytest.approx(getattr(row, name)), (row.name, name)
    for name in ("urgent_sensitivity", "urgent_specificity", "urgent_roc_auc", "weighted_error"):
        assert values[f"referral.{name}"] == pytest.approx(getattr(referral, name)), name


def test_integer_weights_equal_repeating_the_images():
    y, p = random_predictions(60, seed=3)
    p = np.round(p, 1)  # many ties
    weights = np.random.default_rng(1).integers(0, 3, size=(5, 60)).astype(float)
    got = StatisticsPlan(y, p, OCT)(weights)
    for row, w in enumerate(weights):
        repeated = np.repeat(np.arange(60), w.astype(int))
        expected_auc = binary_roc_auc(y[repeated] == 0, p[repeated, 0])
        expected_error = compute_referral_metrics(y[repeated], p[repeated], OCT).weighted_error
        assert got["per_class.CNV.roc_auc"][row] == pytest.approx(expected_auc)
        assert got["referral.weighted_error"][row] == pytest.approx(expected_error)


# ---------- coverage on simulated data ----------


def coverage(estimates_and_truth, level: float) -> float:
    hits = [low <= truth <= high for (low, high), truth in estimates_and_truth]
    return float(np.mean(hits))


def binormal_auc_intervals(n_sets: int, level: float, per_group: int = 50, shift: float = 1.0):
    """Positives N(shift, 1), negatives N(0, 1): the true AUC is Phi(shift / sqrt 2)."""
    truth = 0.5 * (1 + math.erf(shift / 2))
    settings = BootstrapSettings(resamples=400, level=level, seed=0)
    found = []
    for seed in range(n_sets):
        rng = np.random.default_rng(1000 + seed)
        y = np.r_[np.zeros(per_group, int), np.ones(per_group, int)]
        score = 1 / (1 + np.exp(-(rng.normal(size=2 * per_group) + shift * y)))
        plan = StatisticsPlan(y, np.c_[1 - score, score], ("negative", "positive"))
        [dist] = bootstrap_distributions([plan], None, BootstrapSettings(400, level, seed))
        found.append((percentile_interval(dist["per_class.positive.roc_auc"], level), truth))
    return found


def test_bootstrap_auc_intervals_cover_the_true_auc_at_the_stated_rate():
    # 300 simulated test sets; the binomial standard error of a 95% coverage is 1.3 points, so
    # [0.90, 0.99] is more than 3.5 of them either side: a right method cannot miss it by chance,
    # and a method that ignores the level or resamples wrongly (zero-width or half-width
    # intervals cover about 0% or 70%) cannot reach it.
    assert 0.90 <= coverage(binormal_auc_intervals(300, 0.95), 0.95) <= 0.99
    # The level is honoured: an 80% interval covers about 80% (se 2.3 points).
    assert 0.72 <= coverage(binormal_auc_intervals(300, 0.80), 0.80) <= 0.88


def test_bootstrap_weighted_error_intervals_cover_the_true_error():
    rng_truth = np.random.default_rng(7)
    cells = rng_truth.dirichlet(np.ones(16) * 0.3) * 0.3 + np.eye(4).ravel() * 0.7 / 4  # mostly right
    cells /= cells.sum()
    truth = float((cells.reshape(4, 4) * PENALTY).sum())
    found = []
    for seed in range(300):
        rng = np.random.default_rng(seed)
        draws = rng.choice(16, size=200, p=cells)
        y, predicted = draws // 4, draws % 4
        p = np.full((200, 4), 0.1)
        p[np.arange(200), predicted] = 0.7
        [dist] = bootstrap_distributions([StatisticsPlan(y, p, OCT)], None, BootstrapSettings(400, 0.95, seed))
        found.append((percentile_interval(dist["referral.weighted_error"], 0.95), truth))
    assert 0.90 <= coverage(found, 0.95) <= 0.99


# ---------- patients ----------


def test_cluster_bootstrap_widens_the_interval_when_scans_are_duplicated_per_patient():
    y, p = random_predictions(120, seed=5, skill=1.2)
    copies = 5
    y5, p5 = np.repeat(y, copies), np.repeat(p, copies, axis=0)
    patients = [f"patient:{i}" for i in np.repeat(np.arange(120), copies)]
    settings = BootstrapSettings(1000, 0.95, 0)

    def width(interval):
        return interval.high - interval.low

    def macro_f1(y_, p_, groups=None):
        metrics = compute_classification_metrics(y_, p_, OCT)
        return compute_metric_intervals(metrics, p_, compute_referral_metrics(y_, p_, OCT), groups, settings)

    once = macro_f1(y, p)
    as_images = macro_f1(y5, p5)
    as_patients = macro_f1(y5, p5, patients)
    assert (as_images.unit, as_patients.unit, as_patients.n_units) == ("image", "patient", 120)
    for name in ("macro_f1", "macro_roc_auc"):
        a, b, c = (width(getattr(r, name)) for r in (once, as_images, as_patients))
        assert c > 1.8 * b, name          # drawing scans one by one: about 1/sqrt(5) as wide
        assert c == pytest.approx(a, rel=0.25), name  # drawing patients: as wide as 120 independent scans
    a, c = width(once.referral.urgent_roc_auc), width(as_patients.referral.urgent_roc_auc)
    assert c == pytest.approx(a, rel=0.3)
    assert "bootstrap over patients" == as_patients.macro_f1.method and "patients" in as_patients.describe()


def test_intervals_record_their_methods_and_are_seeded():
    y, p = random_predictions(200, seed=2)
    metrics, referral = compute_classification_metrics(y, p, OCT), compute_referral_metrics(y, p, OCT)
    first = compute_metric_intervals(metrics, p, referral, settings=BootstrapSettings(500, 0.95, 4))
    again = compute_metric_intervals(metrics, p, referral, settings=BootstrapSettings(500, 0.95, 4))
    other = compute_metric_intervals(metrics, p, referral, settings=BootstrapSettings(500, 0.95, 5))
    assert first.to_dict() == again.to_dict()
    assert first.macro_f1.low != other.macro_f1.low
    correct = int((metrics.predicted == y).sum())
    assert (first.accuracy.low, first.accuracy.high) == pytest.approx(wilson_interval(correct, 200))
    assert first.accuracy.method == "wilson" and first.referral.weighted_error.method == "bootstrap over images"
    document = first.to_dict()
    assert document["accuracy"] == {"value": metrics.accuracy, "low": first.accuracy.low,
                                    "high": first.accuracy.high, "method": "wilson"}
    assert set(document["per_class"]["DME"]) == {"precision", "recall", "specificity", "f1", "roc_auc"}
    assert document["level"] == 0.95 and document["resamples"] == 500
    for interval in (first.macro_f1, first.macro_roc_auc, first.referral.urgent_roc_auc, first.referral.weighted_error):
        assert interval.low <= interval.value <= interval.high


def test_a_statistic_undefined_in_most_resamples_gets_no_interval():
    values = np.r_[np.full(60, np.nan), np.linspace(0, 1, 40)]
    assert percentile_interval(values, 0.95) is None
    assert percentile_interval(np.linspace(0, 1, 101), 0.9) == pytest.approx((0.05, 0.95))


@pytest.mark.parametrize("resamples, level, match", [
    (50, 0.95, "resamples"), (200_000, 0.95, "resamples"), (2000, 1.0, "confidence level"), (2000, 0.3, "confidence level"),
])
def test_interval_settings_are_validated(resamples, level, match):
    with pytest.raises(ConfigError, match=match):
        BootstrapSettings(resamples, level)
    with pytest.raises(ConfigError, match=match):
        ReportConfig(bootstrap_resamples=resamples, ci_level=level)
    assert ReportConfig(seed=3).bootstrap == BootstrapSettings(2000, 0.95, 3)


def test_urgent_sensitivity_of_every_urgent_case_found_is_not_a_point():
    """50 of 50 urgent cases found: the interval is Wilson's, not a collapsed bootstrap [1, 1]."""
    y = np.repeat(np.arange(4), 25)
    p = np.full((100, 4), 0.02)
    p[np.arange(100), y] = 0.94
    metrics, referral = compute_classification_metrics(y, p, OCT), compute_referral_metrics(y, p, OCT)
    urgent = compute_metric_intervals(metrics, p, referral).referral.urgent_sensitivity
    assert urgent.value == 1.0 and urgent.high == pytest.approx(1.0)
    assert urgent.low == pytest.approx(0.9287, abs=1e-3) and urgent.method == "wilson"
