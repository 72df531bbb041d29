"""Errors gallery: the most confident mistakes per confusion cell, and the worst cell."""

from __future__ import annotations

import json

import numpy as np
import pytest

from octreport.errors import ConfigError
from octreport.evaluation.errors_gallery import errors_gallery, worst_confusion

NAMES = ("CNV", "DME", "NORMAL")
# row: true class, probabilities -> predicted (arg-max)
Y_TRUE = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
PROBS = np.array([
    [0.9, 0.05, 0.05],  # 0 right
    [0.2, 0.7, 0.1],  # 0 -> 1, 0.7
    [0.1, 0.8, 0.1],  # 0 -> 1, 0.8
    [0.3, 0.6, 0.1],  # 0 -> 1, 0.6
    [0.1, 0.3, 0.6],  # 1 -> 2, 0.6
    [0.05, 0.05, 0.9],  # 1 -> 2, 0.9
    [0.1, 0.8, 0.1],  # 1 right
    [0.5, 0.0, 0.5],  # 2 -> 0 (tie: lowest index wins), 0.5
    [0.1, 0.1, 0.8],  # 2 right
    [0.0, 0.95, 0.05],  # 2 -> 1, 0.95
])
ITEMS = [f"img{i}.png" for i in range(10)]


def test_cells_cases_and_order():
    cells = errors_gallery(Y_TRUE, PROBS, ITEMS, NAMES, per_cell=2)
    assert [(c.true_class, c.predicted_class, c.count) for c in cells] == [
        (0, 1, 3), (1, 2, 2), (2, 0, 1), (2, 1, 1)]
    first = cells[0]
    assert (first.true_name, first.predicted_name) == ("CNV", "DME")
    assert [case.index for case in first.cases] == [2, 1]  # most confident first, capped at 2
    assert [case.confidence for case in first.cases] == [0.8, 0.7]
    assert first.cases[0].item == "img2.png" and first.cases[0].true_probability == 0.1
    np.testing.assert_array_equal(first.cases[0].probabilities, PROBS[2])
    assert first.mean_confidence == pytest.approx(0.7)  # over all 3 cases, not only those shown
    assert cells[2].cases[0].confidence == 0.5
    record = json.loads(json.dumps(first.to_dict()))
    assert record["count"] == 3 and record["mean_confidence"] == pytest.approx(0.7)
    assert (record["true"], record["predicted"]) == ("CNV", "DME")
    assert record["cases"] == [
        {"index": 2, "path": "img2.png", "confidence": 0.8, "true_probability": 0.1},
        {"index": 1, "path": "img1.png", "confidence": 0.7, "true_probability": 0.2},
    ]


def test_worst_confusion_count_then_confidence():
    cells = errors_gallery(Y_TRUE, PROBS, ITEMS, NAMES)
    assert (worst_confusion(cells).true_class, worst_confusion(cells).predicted_class) == (0, 1)
    # Two cells with 2 cases each: the one with the higher mean confidence wins.
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.4, 0.6], [0.3, 0.7], [0.9, 0.1], [0.8, 0.2]])
    tie = errors_gallery(y, probs, list("abcd"), ("A", "B"))
    assert [c.count for c in tie] == [2, 2]
    assert worst_confusion(tie).true_name == "B"  # mean 0.85 beats 0.65
    assert worst_confusion(errors_gallery([0, 1], [[0.9, 0.1], [0.2, 0.8]], "ab", ("A", "B"))) is None


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="N items"):
        errors_gallery(Y_TRUE, PROBS, ITEMS[:3], NAMES)
    with pytest.raises(ValueError, match="classes"):
        errors_gallery(Y_TRUE, PROBS, ITEMS, NAMES[:2])
    with pytest.raises(ValueError, match="class indices"):
        errors_gallery(Y_TRUE + 1, PROBS, ITEMS, NAMES)
    with pytest.raises(ConfigError, match="at least 1"):
        errors_gallery(Y_TRUE, PROBS, ITEMS, NAMES, per_cell=0)
    assert errors_gallery(np.zeros(0, int), np.zeros((0, 3)), [], NAMES) == ()
