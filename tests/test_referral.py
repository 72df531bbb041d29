"""Kermany et al. 2018 referral metrics on constructed cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import brute_force_auc
from octreport.evaluation.metrics import compute_classification_metrics
from octreport.evaluation.referral import (
    KERMANY_2018_REFERENCE,
    compute_referral_metrics,
)

NAMES = ["CNV", "DME", "DRUSEN", "NORMAL"]
CNV, DME, DRUSEN, NORMAL = range(4)


def probabilities_for(predicted: list[int], n_classes: int = 4) -> np.ndarray:
    p = np.full((len(predicted), n_classes), 0.1)
    p[np.arange(len(predicted)), predicted] = 0.7
    return p


# Ten images; three errors:
#   CNV -> NORMAL (urgent seen as observation) costs 4
#   DME -> DRUSEN (urgent seen as routine) costs 2
#   DRUSEN -> NORMAL (any other error) costs 1
# weighted error = (4 + 2 + 1) / 10 = 0.7.
# Urgent cases: 3 CNV + 2 DME = 5, of which 3 are predicted CNV or DME -> sensitivity 3/5.
# Non-urgent cases: 2 DRUSEN + 3 NORMAL = 5, none predicted urgent -> specificity 5/5.
Y_TEN = [CNV, CNV, CNV, DME, DME, DRUSEN, DRUSEN, NORMAL, NORMAL, NORMAL]
PRED_TEN = [CNV, NORMAL, CNV, DME, DRUSEN, DRUSEN, NORMAL, NORMAL, NORMAL, NORMAL]


def test_weighted_error_and_counts_by_hand():
    metrics = compute_referral_metrics(np.array(Y_TEN), probabilities_for(PRED_TEN), NAMES)
    assert metrics is not None
    assert metrics.weighted_error == pytest.approx(0.7)
    assert metrics.total_penalty == 7
    assert (metrics.urgent_predicted_normal, metrics.urgent_predicted_drusen) == (1, 1)
    assert metrics.other_errors == 1
    assert metrics.accuracy == pytest.approx(0.7)
    assert (metrics.n_urgent, metrics.n_non_urgent) == (5, 5)
    assert (metrics.true_positive, metrics.false_negative) == (3, 2)
    assert (metrics.true_negative, metrics.false_positive) == (5, 0)
    assert metrics.urgent_sensitivity == pytest.approx(3 / 5)
    assert metrics.urgent_specificity == pytest.approx(1.0)


def test_cnv_dme_confusion_is_still_urgent_and_costs_one():
    # CNV -> DME and DME -> CNV are errors (1 each) but still urgent referrals (true positives).
    # NORMAL -> CNV is a false positive urgent referral (1). DRUSEN -> DRUSEN is right.
    # Weighted error 3 / 4; sensitivity 2/2; specificity 1/2.
    y = np.array([CNV, DME, NORMAL, DRUSEN])
    metrics = compute_referral_metrics(y, probabilities_for([DME, CNV, CNV, DRUSEN]), NAMES)
    assert metrics.weighted_error == pytest.approx(0.75)
    assert metrics.other_errors == 3
    assert metrics.urgent_sensitivity == 1.0
    assert metrics.urgent_specificity == pytest.approx(0.5)
    assert metrics.false_positive == 1


def test_urgent_auc_scores_with_the_sum_of_cnv_and_dme():
    # Urgent image A: P(CNV) = P(DME) = 0.3, predicted DRUSEN; urgent score 0.6.
    # Non-urgent image B: P(CNV) = 0.45, P(NORMAL) = 0.55; urgent score 0.45.
    # With the sum, A ranks above B (AUC 1); with the largest single urgent probability
    # (0.3 < 0.45) it would not (AUC 0).
    p = np.array([[0.3, 0.3, 0.4, 0.0], [0.45, 0.0, 0.0, 0.55]])
    metrics = compute_referral_metrics(np.array([CNV, NORMAL]), p, NAMES)
    assert metrics.urgent_roc_auc == pytest.approx(1.0)
    assert metrics.urgent_sensitivity == 0.0  # A is predicted DRUSEN: not referred urgently


def test_class_order_and_letter_case_do_not_matter():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, size=60)
    p = rng.dirichlet(np.ones(4), size=60)  # no exact ties: argmax does not depend on order
    canonical = compute_referral_metrics(y, p, NAMES)

    # Same data with columns in the order NORMAL, Drusen, dme, CNV and odd spacing.
    order = [NORMAL, DRUSEN, DME, CNV]
    new_index = {old: new for new, old in enumerate(order)}
    shuffled = compute_referral_metrics(
        np.array([new_index[v] for v in y]), p[:, order], [" Normal", "Drusen", "dme ", "CNV"]
    )
    assert shuffled == canonical
    urgent = (y == CNV) | (y == DME)
    assert canonical.urgent_roc_auc == pytest.approx(brute_force_auc(urgent, p[:, CNV] + p[:, DME]))


def test_accuracy_agrees_with_classification_metrics():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, size=50)
    p = rng.dirichlet(np.ones(4), size=50)
    referral = compute_referral_metrics(y, p, NAMES)
    assert referral.accuracy == compute_classification_metrics(y, p, NAMES).accuracy


@pytest.mark.parametrize(
    "names",
    [
        ["CNV", "DME", "DRUSEN"],
        ["CNV", "DME", "DRUSEN", "NORMAL", "OTHER"],
        ["cat", "dog", "cow", "pig"],
        ["CNV", "DME", "DRUSEN", "NORMALS"],
    ],
)
def test_other_class_sets_give_none(names):
    k = len(names)
    p = np.full((2, k), 1.0 / k)
    assert compute_referral_metrics(np.array([0, 1]), p, names) is None


def test_no_urgent_cases_leaves_sensitivity_and_auc_undefined():
    metrics = compute_referral_metrics(
        np.array([DRUSEN, NORMAL]), probabilities_for([DRUSEN, CNV]), NAMES
    )
    assert metrics.urgent_sensitivity is None
    assert metrics.urgent_roc_auc is None
    assert metrics.urgent_specificity == pytest.approx(0.5)


def test_to_dict_and_reference_are_json_ready():
    metrics = compute_referral_metrics(np.array(Y_TEN), probabilities_for(PRED_TEN), NAMES)
    data = json.loads(json.dumps(metrics.to_dict(), allow_nan=False))
    assert data["weighted_error"] == pytest.approx(0.7)
    assert data["urgent_sensitivity"] == pytest.approx(0.6)
    assert data["total_penalty"] == 7
    reference = json.loads(json.dumps(KERMANY_2018_REFERENCE.to_dict()))
    assert reference == {
        "source": "Kermany et al. 2018, Cell 172:1122, full model",
        "accuracy": 0.966,
        "urgent_sensitivity": 0.978,
        "urgent_specificity": 0.974,
        "weighted_error": 0.066,
        "urgent_roc_auc": 0.999,
    }
