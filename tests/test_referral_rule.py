"""The urgent-referral threshold chosen on validation (evaluation/referral_rule), on hand-made scores."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest

from octreport.errors import ConfigError
from octreport.evaluation.referral import compute_referral_metrics, urgent_calls
from octreport.evaluation.referral_rule import (
    MIN_BANDWIDTH,
    NONE,
    OVERRIDE,
    VALIDATION,
    ReferralRule,
    applied_rule,
    check_referral_override,
    choose_referral_threshold,
    silverman_bandwidth,
    smoothed_sensitivity,
)
from octreport.models.metadata import ModelMetadata
from octreport.data.preprocessing import Preprocessing

OCT = ("CNV", "DME", "DRUSEN", "NORMAL")


def scored(urgent_logits, other_logits, seed: int = 0):
    """Labels and probabilities whose urgent score P(CNV) + P(DME) is sigmoid(logit); urgent scans
    alternate CNV, DME and the others DRUSEN, NORMAL."""
    logits = np.r_[urgent_logits, other_logits].astype(np.float64)
    score = 1 / (1 + np.exp(-logits))
    n_urgent = len(urgent_logits)
    y = np.r_[np.arange(n_urgent) % 2, 2 + np.arange(len(other_logits)) % 2]
    p = np.stack([score / 2, score / 2, (1 - score) / 2, (1 - score) / 2], axis=1)
    return y, p


def test_known_curve_large_sample_reaches_the_target_on_new_scans():
    # Urgent logits N(1.5, 1): the smoothed curve is N(1.5, 1 + h^2), so the threshold's logit is
    # 1.5 - 1.645 sqrt(1 + h^2) (below 0, so under the 0.5 cap), and on the population it catches a
    # little more than 95%.
    rng = np.random.default_rng(1)
    y, p = scored(rng.normal(1.5, 1, 4000), rng.normal(-2, 1, 4000))
    rule = choose_referral_threshold(y, p, OCT, target=0.95)
    h = rule.bandwidth
    expected = 1.5 - NormalDist().inv_cdf(0.95) * np.sqrt(1 + h * h)
    logit = np.log(rule.threshold / (1 - rule.threshold))
    assert logit == pytest.approx(expected, abs=0.06) and rule.note == ""
    population_sensitivity = 1 - NormalDist(1.5, 1).cdf(logit)
    assert 0.95 <= population_sensitivity <= 0.97
    assert rule.sensitivity.value == pytest.approx(population_sensitivity, abs=0.01)
    assert rule.source == VALIDATION and rule.split == "validation" and rule.n_urgent == 4000


def test_sixty_urgent_scans_all_confident_err_toward_sensitivity():
    # 60 urgent scans all confidently right (scores >= 0.999): the empirical 95% point is the third
    # lowest urgent score (it gives up 3 of 60 on purpose); the smoothed one lies below it.
    rng = np.random.default_rng(2)
    urgent = rng.uniform(7, 12, 60)
    y, p = scored(urgent, rng.normal(-4, 1.5, 90))
    rule = choose_referral_threshold(y, p, OCT)
    third_lowest = 1 / (1 + np.exp(-np.sort(urgent)[2]))
    assert rule.threshold < third_lowest
    assert rule.sensitivity.value >= 58 / 60 and rule.sensitivity.low < 0.95  # Wilson: 60 scans are no certainty
    assert rule.specificity.value == 1.0
    assert rule.n_urgent == 60 and rule.n_non_urgent == 90 and rule.n_images == 150


def test_sixty_urgent_scans_reach_the_target_more_often_than_the_empirical_point():
    # Over 200 validation splits of 60 urgent scans with logits N(2, 1): the population sensitivity
    # of the smoothed threshold reaches 95% far more often, and varies less, than that of the
    # empirical point (the highest threshold catching 57 of 60: the fourth lowest urgent score).
    rng = np.random.default_rng(3)
    smoothed, empirical = [], []
    for _ in range(200):
        urgent = rng.normal(2, 1, 60)
        y, p = scored(urgent, rng.normal(-2, 1, 90))
        rule = choose_referral_threshold(y, p, OCT)
        smoothed.append(1 - NormalDist(2, 1).cdf(np.log(rule.threshold / (1 - rule.threshold))))
        empirical.append(1 - NormalDist(2, 1).cdf(np.sort(urgent)[3]))
    smoothed, empirical = np.array(smoothed), np.array(empirical)
    assert np.mean(smoothed >= 0.95) >= np.mean(empirical >= 0.95) + 0.1
    assert np.percentile(smoothed, 5) > np.percentile(empirical, 5) + 0.02
    assert smoothed.std() < empirical.std()


def test_dropping_one_scan_moves_the_threshold_a_little():
    rng = np.random.default_rng(8)
    y, p = scored(rng.normal(2, 1, 60), rng.normal(-2, 1, 90))
    full = choose_referral_threshold(y, p, OCT).threshold
    lowest = int(np.argmin(np.where(y < 2, p[:, 0] + p[:, 1], np.inf)))
    keep = np.arange(len(y)) != lowest
    assert 0 < choose_referral_threshold(y[keep], p[keep], OCT).threshold - full < 0.05


def test_ties_are_handled_and_order_does_not_matter():
    # Saturated scores tie exactly (float32 softmax at 1): the bandwidth falls back to its floor.
    y, p = scored([16.0] * 40 + [3.0] * 10, [-16.0] * 50)
    rule = choose_referral_threshold(y, p, OCT)
    assert 0 < rule.threshold < 1
    assert rule.bandwidth >= MIN_BANDWIDTH
    order = np.random.default_rng(4).permutation(len(y))
    assert choose_referral_threshold(y[order], p[order], OCT).threshold == pytest.approx(rule.threshold, rel=1e-9)
    assert silverman_bandwidth(np.full(30, 5.0)) == MIN_BANDWIDTH


def test_smoothed_sensitivity_is_the_kernel_average():
    assert smoothed_sensitivity(np.array([0.0]), 1.0, 0.0) == pytest.approx(0.5)
    assert smoothed_sensitivity(np.array([0.0, 2.0]), 1.0, 1.0) == pytest.approx(0.5)
    assert smoothed_sensitivity(np.array([1.0]), 1.0, 0.0) == pytest.approx(NormalDist().cdf(1.0))


def test_a_class_absent_from_validation_falls_back_to_argmax_with_a_note():
    rng = np.random.default_rng(5)
    y, p = scored(rng.normal(2, 1, 60), rng.normal(-2, 1, 60))
    y[y == 1] = 0  # no DME left
    rule = choose_referral_threshold(y, p, OCT)
    assert rule.threshold is None and rule.source == VALIDATION
    assert "no DME scan" in rule.note and "predicted class" in rule.note
    assert rule.text == "predicted class CNV or DME"


def test_too_few_urgent_scans_for_the_target_fall_back_to_argmax():
    rng = np.random.default_rng(6)
    y, p = scored(rng.normal(2, 1, 19), rng.normal(-2, 1, 30))
    rule = choose_referral_threshold(y, p, OCT, target=0.95)
    assert rule.threshold is None and "19 urgent scans, fewer than the 20" in rule.note
    y, p = scored(rng.normal(2, 1, 20), rng.normal(-2, 1, 30))
    assert choose_referral_threshold(y, p, OCT, target=0.95).threshold is not None


def test_other_classes_have_no_rule_and_bad_targets_are_refused():
    y, p = scored([1.0] * 30, [-1.0] * 30)
    assert choose_referral_threshold(y, p, ("a", "b", "c", "d")) is None
    with pytest.raises(ValueError):
        choose_referral_threshold(y, p, OCT, target=1.0)
    with pytest.raises(ConfigError, match="four OCT classes"):
        check_referral_override(0.2, ("a", "b", "c", "d"))
    check_referral_override(None, ("a", "b", "c", "d"))


def test_the_rule_survives_the_sidecar_and_applies_as_stored_overridden_or_absent():
    rng = np.random.default_rng(7)
    y, p = scored(rng.normal(2, 1, 60), rng.normal(-2, 1, 90))
    rule = choose_referral_threshold(y, p, OCT)
    metadata = ModelMetadata(OCT, Preprocessing(), referral_rule=rule)
    again = ModelMetadata.from_dict(metadata.to_dict()).referral_rule
    assert again == rule
    assert "validation split (150 scans)" in again.provenance() and "target sensitivity of 95%" in again.provenance()
    assert applied_rule(rule, None, OCT) is rule
    override = applied_rule(rule, 0.3, OCT)
    assert override.threshold == 0.3 and override.source == OVERRIDE and rule.text in override.note
    none = applied_rule(None, None, OCT)
    assert none.threshold is None and none.source == NONE and "no stored referral threshold" in none.note
    assert applied_rule(rule, 0.3, ("a", "b", "c", "d")) is None
    assert ModelMetadata.from_dict({**metadata.to_dict(), "referral_rule": None}).referral_rule is None
    assert ReferralRule.from_dict(rule.to_dict()).threshold == rule.threshold


def test_referral_metrics_follow_the_rule_and_keep_the_four_class_numbers():
    # Scores 0.9, 0.3 (urgent) and 0.4, 0.1 (others); argmax calls only 0.9 urgent.
    y = np.array([0, 1, 2, 3])
    score = np.array([0.9, 0.3, 0.4, 0.1])
    p = np.stack([score, np.zeros(4), 1 - score, np.zeros(4)], axis=1)
    argmax = compute_referral_metrics(y, p, OCT)
    ruled = compute_referral_metrics(y, p, OCT, threshold=0.25)
    assert (argmax.urgent_sensitivity, argmax.urgent_specificity) == (0.5, 1.0)
    assert (ruled.urgent_sensitivity, ruled.urgent_specificity) == (1.0, 0.5)
    assert ruled.threshold == 0.25 and argmax.threshold is None
    assert (ruled.accuracy, ruled.weighted_error) == (argmax.accuracy, argmax.weighted_error)
    assert urgent_calls(p, OCT, 0.25).tolist() == [True, True, True, False]
    assert urgent_calls(p, OCT, None).tolist() == [True, False, False, False]


def test_paired_tests_compare_each_run_under_its_own_rule():
    from octreport.evaluation.bootstrap_settings import BootstrapSettings
    from octreport.evaluation.paired import paired_tests

    y = np.repeat(np.arange(4), 10)
    p = np.full((40, 4), 0.1)
    p[np.arange(40), y] = 0.7  # every scan right; the others' urgent score is 0.2
    tests = paired_tests(y, p, p, OCT, settings=BootstrapSettings(200), referral_thresholds=(0.15, None))
    assert tests["referral.urgent_specificity"].detail == "0 right only in A, 20 right only in B"
    assert tests["referral.urgent_sensitivity"].detail == "0 right only in A, 0 right only in B"
    assert paired_tests(y, p, p, OCT, settings=BootstrapSettings(200))["referral.urgent_specificity"].detail.startswith("0 right only in A, 0")


@pytest.mark.parametrize("stored", [
    {"source": "validation", "threshold": 7},
    {"source": "validation", "threshold": float("nan")},
    {"source": "validation", "threshold": "nan"},
    {"source": "validation", "threshold": -0.1},
    {"source": "guessed", "threshold": 0.3},
    {"threshold": 0.3},
    {"source": "validation", "threshold": 0.3, "target_sensitivity": 1.5},
    {"source": "validation", "threshold": 0.3, "n_urgent": -2},
    {"source": "validation", "threshold": 0.3, "sensitivity": {"value": 2, "low": 0, "high": 1}},
])
def test_a_hand_written_rule_that_is_wrong_is_refused_by_the_sidecar_loader(stored, tmp_path):
    import json

    from octreport.errors import ModelError
    from octreport.models.metadata import read_metadata, sidecar_path

    model = tmp_path / "m.keras"
    metadata = ModelMetadata(OCT, Preprocessing()).to_dict()
    sidecar_path(model).write_text(json.dumps({**metadata, "referral_rule": stored}, allow_nan=True))
    with pytest.raises(ModelError, match="referral_rule") as refused:
        read_metadata(model)
    assert refused.value.exit_code == 4


def test_a_hand_written_rule_with_fields_left_out_loads_and_describes_itself():
    rule = ReferralRule.from_dict({"source": "validation", "threshold": 0.3})
    assert rule.threshold == 0.3 and rule.target_sensitivity is None and rule.split is None
    text = rule.provenance()
    assert "validation split" in text and "None" not in text and "target" not in text
    assert ReferralRule.from_dict({"source": "--referral-threshold"}).provenance().startswith("Set for this report")
    rng = np.random.default_rng(7)
    chosen = choose_referral_threshold(*scored(rng.normal(2, 1, 60), rng.normal(-2, 1, 90)), OCT)
    assert "on the validation split it was chosen on: optimistic" in chosen.provenance()


def test_predictions_csv_records_the_rules_urgent_call_and_reads_files_without_it():
    from octreport.evaluation.predictions_file import parse_predictions_csv, predictions_csv, run_predictions

    y = np.array([0, 1, 2, 3])
    score = np.array([0.9, 0.3, 0.4, 0.1])
    p = np.stack([score, np.zeros(4), 1 - score, np.zeros(4)], axis=1)
    paths = ["test/CNV/a.jpeg", "test/DME/b.jpeg", "test/DRUSEN/c.jpeg", "-test/NORMAL/d.jpeg"]
    record = run_predictions(paths, y, p, OCT, urgent_calls(p, OCT, 0.25))
    text = predictions_csv(record)
    lines = text.splitlines()
    assert lines[0].endswith(",p:NORMAL,urgent") and [line[-1] for line in lines[1:]] == ["1", "1", "1", "0"]
    back = parse_predictions_csv(text)
    assert back.urgent.tolist() == [True, True, True, False] and back.paths == tuple(paths)
    np.testing.assert_allclose(back.probabilities, p)
    older = predictions_csv(run_predictions(paths, y, p, OCT))  # other classes, or runs before the column
    assert not older.splitlines()[0].endswith("urgent") and parse_predictions_csv(older).urgent is None
    with pytest.raises(Exception, match="urgent must be 0 or 1"):
        parse_predictions_csv(text.replace(",1\n", ",yes\n", 1))


def test_a_threshold_above_one_half_is_capped_so_that_likely_urgent_scans_are_always_referred():
    # A validation split the model separates well: every urgent score near 1, so the smoothed
    # 95% point lies far above 0.5; capped, a scan more likely urgent than not is referred.
    rng = np.random.default_rng(3)
    n = 60
    y = np.array([0] * n + [1] * n + [2] * n + [3] * n)
    urgent_p = 1 / (1 + np.exp(-rng.normal(9, 1, 2 * n)))
    rest = 1 / (1 + np.exp(-rng.normal(-9, 1, 2 * n)))
    score = np.concatenate([urgent_p, rest])
    p = np.stack([score / 2, score / 2, (1 - score) / 2, (1 - score) / 2], axis=1)
    rule = choose_referral_threshold(y, p, OCT)
    assert rule.threshold == 0.5 and "capped at 0.5" in rule.note and "capped at 0.5" in rule.provenance()
    assert rule.sensitivity.value == 1.0
    assert ReferralRule.from_dict(rule.to_dict()).note == rule.note
