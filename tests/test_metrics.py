"""Classification metrics checked against numbers computed by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conftest import brute_force_auc
from octreport.evaluation.metrics import (
    binary_roc_auc,
    compute_classification_metrics,
)


def one_hot_probabilities(predicted: list[int], n_classes: int, top: float = 0.6) -> np.ndarray:
    """Probabilities whose argmax is ``predicted``; the rest shares 1 - top evenly."""
    rest = (1.0 - top) / (n_classes - 1)
    p = np.full((len(predicted), n_classes), rest)
    p[np.arange(len(predicted)), predicted] = top
    return p


# Three classes, ten images.
#   y_true    = 0 0 0 0 0 1 1 1 2 2      supports 5, 3, 2
#   predicted = 0 0 0 1 2 1 1 0 2 1
# Confusion matrix (rows true, columns predicted):
#   [[3, 1, 1],
#    [1, 2, 0],
#    [0, 1, 1]]          column sums 4, 4, 2; accuracy = (3 + 2 + 1) / 10 = 0.6
# Class 0: TP 3, FP 1, FN 2, TN 4 -> precision 3/4, recall 3/5, specificity 4/5, F1 6/9 = 2/3
# Class 1: TP 2, FP 2, FN 1, TN 5 -> precision 1/2, recall 2/3, specificity 5/7, F1 4/7
# Class 2: TP 1, FP 1, FN 1, TN 7 -> precision 1/2, recall 1/2, specificity 7/8, F1 2/4 = 1/2
# Macro precision (3/4 + 1/2 + 1/2) / 3 = 7/12; macro recall (3/5 + 2/3 + 1/2) / 3 = 53/90;
# macro F1 (2/3 + 4/7 + 1/2) / 3 = 73/126.
# Weighted precision (5 * 3/4 + 3 * 1/2 + 2 * 1/2) / 10 = 0.625; weighted recall = 0.6;
# weighted F1 (5 * 2/3 + 3 * 4/7 + 2 * 1/2) / 10 = 127/210.
# Chance level: the largest class is 5 of 10 images = 0.5.
Y_THREE = np.array([0, 0, 0, 0, 0, 1, 1, 1, 2, 2])
PRED_THREE = [0, 0, 0, 1, 2, 1, 1, 0, 2, 1]
NAMES_THREE = ["alpha", "beta", "gamma"]


@pytest.fixture
def three_class():
    probabilities = one_hot_probabilities(PRED_THREE, 3)
    return compute_classification_metrics(Y_THREE, probabilities, NAMES_THREE)


def test_confusion_matrix_and_accuracy_by_hand(three_class):
    np.testing.assert_array_equal(three_class.confusion, [[3, 1, 1], [1, 2, 0], [0, 1, 1]])
    np.testing.assert_array_equal(three_class.predicted, PRED_THREE)
    assert three_class.accuracy == pytest.approx(0.6)
    assert three_class.n_images == 10
    assert three_class.chance_level == pytest.approx(0.5)


def test_per_class_metrics_by_hand(three_class):
    expected = {  # precision, recall, specificity, F1, support, predicted
        "alpha": (3 / 4, 3 / 5, 4 / 5, 2 / 3, 5, 4),
        "beta": (1 / 2, 2 / 3, 5 / 7, 4 / 7, 3, 4),
        "gamma": (1 / 2, 1 / 2, 7 / 8, 1 / 2, 2, 2),
    }
    for row in three_class.per_class:
        precision, recall, specificity, f1, support, predicted = expected[row.name]
        assert row.precision == pytest.approx(precision)
        assert row.recall == pytest.approx(recall)
        assert row.specificity == pytest.approx(specificity)
        assert row.f1 == pytest.approx(f1)
        assert (row.support, row.predicted_count) == (support, predicted)


def test_macro_and_weighted_averages_by_hand(three_class):
    assert three_class.macro.precision == pytest.approx(7 / 12)
    assert three_class.macro.recall == pytest.approx(53 / 90)
    assert three_class.macro.f1 == pytest.approx(73 / 126)
    assert three_class.weighted.precision == pytest.approx(0.625)
    assert three_class.weighted.recall == pytest.approx(three_class.accuracy)
    assert three_class.weighted.f1 == pytest.approx(127 / 210)


def test_row_normalized_confusion(three_class):
    np.testing.assert_allclose(
        three_class.confusion_normalized,
        [[0.6, 0.2, 0.2], [1 / 3, 2 / 3, 0.0], [0.0, 0.5, 0.5]],
    )


def test_class_never_predicted_has_no_precision_and_zero_f1():
    # y = 0 0 1 1 2 2, predicted = 0 0 1 1 1 0: class 2 is never predicted.
    # Its precision is undefined (None); its recall is 0/2 = 0 and F1 = 2*0 / (0 + 0 + 2) = 0.
    # Macro precision is the mean over the defined values: class 0 is 2/3, class 1 is 2/3.
    y = np.array([0, 0, 1, 1, 2, 2])
    metrics = compute_classification_metrics(y, one_hot_probabilities([0, 0, 1, 1, 1, 0], 3), "abc")
    never = metrics.per_class[2]
    assert never.predicted_count == 0
    assert never.precision is None
    assert never.recall == 0.0
    assert never.f1 == 0.0
    assert metrics.macro.precision == pytest.approx(2 / 3)
    assert metrics.macro.f1 == pytest.approx((0.8 + 0.8 + 0.0) / 3)  # F1 of 0 and 1 is 4/5 each


def test_class_absent_from_test_split_has_no_recall_and_no_auc():
    # Classes: a b c; y has no c. c is predicted once (wrongly): no precision or F1 (c is not in this data).
    y = np.array([0, 0, 1, 1])
    metrics = compute_classification_metrics(y, one_hot_probabilities([0, 2, 1, 1], 3), "abc")
    absent = metrics.per_class[2]
    assert absent.support == 0
    assert absent.recall is None
    assert absent.roc_auc is None
    assert absent.precision is None and absent.f1 is None  # "not in this data", never 0
    assert metrics.classes_not_in_data == (absent.name,)
    assert absent.specificity == pytest.approx(3 / 4)
    np.testing.assert_array_equal(metrics.confusion_normalized[2], [0.0, 0.0, 0.0])
    # Macro recall over the two present classes: (1/2 + 1) / 2.
    assert metrics.macro.recall == pytest.approx(0.75)


def test_class_absent_and_never_predicted_has_no_f1():
    metrics = compute_classification_metrics(
        np.array([0, 1]), one_hot_probabilities([0, 1], 3), ["a", "b", "c"]
    )
    assert metrics.per_class[2].f1 is None
    assert metrics.per_class[2].precision is None
    assert metrics.macro.f1 == 1.0


def test_perfect_predictions():
    y = np.array([2, 0, 1, 1, 0, 2])
    metrics = compute_classification_metrics(y, one_hot_probabilities(list(y), 3, top=0.9), "xyz")
    assert metrics.accuracy == 1.0
    np.testing.assert_array_equal(metrics.confusion, np.diag([2, 2, 2]))
    np.testing.assert_array_equal(metrics.confusion_normalized, np.eye(3))
    for row in metrics.per_class:
        assert (row.precision, row.recall, row.specificity, row.f1, row.roc_auc) == (1, 1, 1, 1, 1)
    assert metrics.macro.f1 == metrics.weighted.f1 == 1.0


def test_collapsed_model_is_at_chance_level():
    # Always predicting the majority class: accuracy equals the chance level, 7/10.
    y = np.array([0] * 7 + [1] * 3)
    probabilities = one_hot_probabilities([0] * 10, 2)
    metrics = compute_classification_metrics(y, probabilities, ["big", "small"])
    assert metrics.chance_level == pytest.approx(0.7)
    assert metrics.accuracy == pytest.approx(metrics.chance_level)
    assert metrics.per_class[1].precision is None
    assert metrics.per_class[1].f1 == 0.0


def test_auc_small_case_by_hand():
    # Positives score 0.9 and 0.4; negatives 0.4, 0.1, 0.5.
    # 0.9 beats all three (3); 0.4 ties 0.4 (0.5), beats 0.1 (1), loses to 0.5 (0) -> 4.5 / 6.
    is_positive = np.array([True, True, False, False, False])
    scores = np.array([0.9, 0.4, 0.4, 0.1, 0.5])
    assert binary_roc_auc(is_positive, scores) == pytest.approx(0.75)
    assert binary_roc_auc(np.ones(3, bool), np.arange(3.0)) is None
    assert binary_roc_auc(np.zeros(3, bool), np.arange(3.0)) is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_class_auc_matches_pairwise_count_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=80)
    # Rounding to one decimal makes many tied scores.
    probabilities = np.round(rng.dirichlet(np.ones(4), size=80), 1)
    metrics = compute_classification_metrics(y, probabilities, ["a", "b", "c", "d"])
    for k, row in enumerate(metrics.per_class):
        assert row.roc_auc == pytest.approx(brute_force_auc(y == k, probabilities[:, k]))
    defined = [row.roc_auc for row in metrics.per_class]
    assert metrics.macro_roc_auc == pytest.approx(sum(defined) / 4)


def test_to_dict_is_json_ready_with_null_for_undefined():
    y = np.array([0, 0, 1, 1])
    metrics = compute_classification_metrics(y, one_hot_probabilities([0, 2, 1, 1], 3), "abc")
    data = json.loads(json.dumps(metrics.to_dict(), allow_nan=False))
    assert data["class_names"] == ["a", "b", "c"]
    assert data["n_images"] == 4
    assert data["accuracy"] == 0.75
    assert data["confusion_matrix"] == [[1, 0, 1], [0, 2, 0], [0, 0, 0]]
    assert data["confusion_matrix_normalized"][2] == [0.0, 0.0, 0.0]
    assert data["per_class"][2]["recall"] is None
    assert data["per_class"][2]["roc_auc"] is None
    assert set(data["per_class"][0]) == {
        "name", "support", "predicted", "precision", "recall", "specificity", "f1", "roc_auc"
    }
    assert set(data["macro"]) == set(data["weighted"]) == {"precision", "recall", "f1"}

    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        else:
            assert value is None or type(value) in (int, float, str, bool)
            assert not (isinstance(value, float) and math.isnan(value))

    walk(metrics.to_dict())


def test_result_arrays_are_read_only(three_class):
    with pytest.raises(ValueError):
        three_class.confusion[0, 0] = 99


@pytest.mark.parametrize(
    ("y", "p", "names", "message"),
    [
        (np.array([0, 1]), np.full((3, 2), 0.5), "ab", "expected"),
        (np.array([0, 2]), np.full((2, 2), 0.5), "ab", "0..1"),
        (np.array([], dtype=int), np.zeros((0, 2)), "ab", "no images"),
        (np.array([0.0, 1.0]), np.full((2, 2), 0.5), "ab", "integer"),
        (np.array([0, 1]), np.array([[0.5, np.nan], [0.5, 0.5]]), "ab", "NaN"),
        (np.array([0, 1]), np.full((2, 2), 0.5), ["a", "a"], "unique"),
    ],
)
def test_malformed_inputs_are_rejected(y, p, names, message):
    with pytest.raises(ValueError, match=message):
        compute_classification_metrics(y, p, names)
