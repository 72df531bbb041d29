"""Significance of a change between two runs: exact McNemar, the paired bootstrap, intervals compared."""

from __future__ import annotations

import numpy as np
import pytest

from octreport.evaluation.bootstrap import BootstrapSettings
from octreport.evaluation.paired import compare_intervals, mcnemar_exact, mcnemar_p_value, paired_tests
from run_documents import confident

OCT = ("CNV", "DME", "DRUSEN", "NORMAL")


def test_mcnemar_against_a_hand_computed_table():
    # 10 images right only in A, 2 only in B: P(X <= 2) for X ~ Bin(12, 1/2) is (1 + 12 + 66) / 4096.
    assert mcnemar_p_value(10, 2) == pytest.approx(2 * 79 / 4096)
    assert mcnemar_p_value(2, 10) == mcnemar_p_value(10, 2)
    assert mcnemar_p_value(0, 0) == 1.0 and mcnemar_p_value(3, 3) == 1.0
    assert mcnemar_p_value(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_p_value(5000, 5100) == pytest.approx(0.3245, abs=2e-3)  # large counts, no overflow
    a = np.array([True] * 10 + [False] * 2 + [True] * 30 + [False] * 8)
    b = np.array([False] * 10 + [True] * 2 + [True] * 30 + [False] * 8)
    result = mcnemar_exact(a, b)
    assert (result.n_images, result.only_a, result.only_b) == (50, 10, 2)
    assert result.p_value == pytest.approx(158 / 4096)


@pytest.fixture(scope="module")
def thousand():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 1000)
    right_a = rng.random(1000) < 0.9
    return y, right_a


def test_two_identical_runs_are_not_significant(thousand):
    y, right = thousand
    p = confident(y, right)
    tests = paired_tests(y, p, p, OCT, settings=BootstrapSettings(1000))
    assert tests and all(t.significant is False for t in tests.values() if t.significant is not None)
    assert tests["accuracy"].verdict == "not significant (p = 1.000)"
    assert tests["macro.f1"].low == tests["macro.f1"].high == 0


def test_a_drop_of_ten_points_on_a_thousand_paired_images_is_significant(thousand):
    y, right_a = thousand
    right_b = right_a.copy()
    right_b[np.flatnonzero(right_a)[:100]] = False  # 100 images right in A, wrong in B
    tests = paired_tests(y, confident(y, right_a), confident(y, right_b), OCT, settings=BootstrapSettings(1000))
    accuracy = tests["accuracy"]
    assert accuracy.method == "exact McNemar" and accuracy.significant and accuracy.p_value < 1e-20
    assert "100 right only in A, 0 right only in B" in accuracy.detail
    assert -0.125 < accuracy.low < -0.1 < accuracy.high < -0.075  # the interval of B - A around -10 points
    for key in ("macro.f1", "referral.weighted_error", "referral.urgent_roc_auc"):
        assert tests[key].significant, key
        assert tests[key].method == "paired bootstrap over images"
    assert tests["referral.weighted_error"].low > 0  # the error rose


def test_a_small_drop_is_not_significant(thousand):
    y, right_a = thousand
    right_b = right_a.copy()
    right_b[np.flatnonzero(right_a)[:6]] = False
    right_b[np.flatnonzero(~right_a)[:2]] = True
    tests = paired_tests(y, confident(y, right_a), confident(y, right_b), OCT, settings=BootstrapSettings(1000))
    assert tests["accuracy"].p_value == pytest.approx(mcnemar_p_value(6, 2)) and not tests["accuracy"].significant
    assert tests["accuracy"].verdict.startswith("not significant (p = 0.289")


def test_patients_drawn_together_in_the_paired_bootstrap(thousand):
    y, right_a = thousand
    right_b = right_a.copy()
    right_b[np.flatnonzero(right_a)[:40]] = False
    groups = [f"patient:{i // 10}" for i in range(1000)]
    tests = paired_tests(y, confident(y, right_a), confident(y, right_b), OCT, groups, BootstrapSettings(500))
    assert tests["macro.f1"].method == "paired bootstrap over patients"


def test_unpaired_runs_compare_their_intervals():
    apart = compare_intervals({"low": 0.80, "high": 0.86}, {"low": 0.90, "high": 0.95})
    overlap = compare_intervals({"low": 0.80, "high": 0.91}, {"low": 0.90, "high": 0.95})
    unknown = compare_intervals(None, {"low": 0.9, "high": 0.95})
    assert apart.significant and apart.method == "intervals compared (not paired)"
    assert overlap.significant is False and overlap.verdict == "not significant (the intervals overlap)"
    assert unknown.significant is None and unknown.verdict.startswith("not tested")


def test_the_paired_bootstrap_scores_urgent_calls_under_each_runs_rule():
    # 40 urgent scans scored 0.4 (argmax: DRUSEN, missed; the rule >= 0.3: referred) and 40 others at 0.1.
    from octreport.evaluation.bootstrap import StatisticsPlan, point_values
    from octreport.evaluation.referral import compute_referral_metrics

    y = np.array([0, 1] * 20 + [2, 3] * 20)
    p = np.array([[0.2, 0.2, 0.6, 0.0]] * 40 + [[0.05, 0.05, 0.1, 0.8]] * 40)
    for threshold in (None, 0.3):
        values, metrics = point_values(StatisticsPlan(y, p, OCT, threshold)), compute_referral_metrics(y, p, OCT, threshold)
        assert values["referral.urgent_sensitivity"] == metrics.urgent_sensitivity
        assert values["referral.urgent_specificity"] == metrics.urgent_specificity
    tests = paired_tests(y, p, p, OCT, settings=BootstrapSettings(200), referral_thresholds=(None, 0.3))
    sensitivity = tests["referral.urgent_sensitivity"]
    assert (sensitivity.low, sensitivity.high) == (1.0, 1.0)  # B finds every urgent scan, A none, in every resample
    assert sensitivity.significant and "40 right only in B" in sensitivity.detail
    specificity = tests["referral.urgent_specificity"]
    assert (specificity.low, specificity.high) == (0.0, 0.0) and not specificity.significant
    same = paired_tests(y, p, p, OCT, settings=BootstrapSettings(200), referral_thresholds=(0.3, 0.3))
    assert (same["referral.urgent_sensitivity"].low, same["referral.urgent_sensitivity"].high) == (0.0, 0.0)
