"""Shortcut check: can one trivial image property predict the label?

For each property (width, height, file type, file size, mean intensity) a one-feature classifier
is fitted on the training split and scored on the test split: a property with at most
:data:`MAX_CATEGORIES` distinct values is treated as categories (each predicts its most frequent
training class), a continuous one is cut at the training split's deciles (each bin predicts its
most frequent training class). Chance is the accuracy of always predicting the training split's
most frequent class. A property whose accuracy is at least :data:`SHORTCUT_MARGIN` above chance
is flagged: the class can be read from it, so a model may have learned it instead of the retina.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

SHORTCUT_MARGIN = 0.25
MAX_CATEGORIES = 12
MIN_TEST_IMAGES = 10
_BINS = 10


@dataclass(frozen=True)
class ShortcutResult:
    """``accuracy`` of the one-feature classifier on ``n_test`` test images, beside ``chance``."""

    feature: str
    accuracy: float
    chance: float
    n_test: int
    flagged: bool

    def to_dict(self) -> dict:
        return {"feature": self.feature, "accuracy": self.accuracy, "chance": self.chance,
                "n_test": self.n_test, "flagged": self.flagged}


def one_feature_accuracy(train_values, train_labels, test_values, test_labels) -> tuple[float, float]:
    """(accuracy, chance) of the one-feature classifier described in the module docstring."""
    train_values, test_values = np.asarray(train_values), np.asarray(test_values)
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    majority = Counter(train_labels.tolist()).most_common(1)[0][0]
    chance = float(np.mean(test_labels == majority))
    train_keys, test_keys = _keys(train_values, test_values)
    vote: dict = {}
    for key in np.unique(train_keys):
        vote[key] = Counter(train_labels[train_keys == key].tolist()).most_common(1)[0][0]
    predicted = np.array([vote.get(key, majority) for key in test_keys.tolist()])
    return float(np.mean(predicted == test_labels)), chance


def _keys(train_values: np.ndarray, test_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Category keys: the values themselves when few, else the training deciles' bin numbers."""
    if train_values.dtype == object or len(np.unique(train_values)) <= MAX_CATEGORIES:
        return train_values.astype(str), test_values.astype(str)
    edges = np.unique(np.quantile(train_values.astype(float), np.linspace(0, 1, _BINS + 1)[1:-1]))
    return np.searchsorted(edges, train_values, side="right"), np.searchsorted(edges, test_values, side="right")


def shortcut_check(features: dict[str, tuple[np.ndarray, np.ndarray]], train_labels, test_labels) -> tuple[ShortcutResult, ...]:
    """One :class:`ShortcutResult` per feature; ``features`` maps a name to (train values, test values).
    Empty when either split is empty; never flagged with fewer than :data:`MIN_TEST_IMAGES` test images."""
    if len(train_labels) == 0 or len(test_labels) == 0:
        return ()
    results = []
    for name, (train_values, test_values) in features.items():
        accuracy, chance = one_feature_accuracy(train_values, train_labels, test_values, test_labels)
        flagged = len(test_labels) >= MIN_TEST_IMAGES and accuracy >= chance + SHORTCUT_MARGIN
        results.append(ShortcutResult(name, accuracy, chance, len(test_labels), flagged))
    return tuple(results)
