"""Performance per acquisition group: the evaluated images split by image size (``"512x496"``) or by
a user's groups (device, site; :mod:`octreport.data.groups`), with accuracy and, for the four OCT
classes, urgent-referral sensitivity and specificity (:mod:`octreport.evaluation.referral`), each
with its Wilson interval and the number of images behind it.

Every group is kept, however small: a group of 3 scans is shown with n = 3 and an interval as wide
as that deserves, never hidden or pooled, since a small group is often the one that differs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from octreport.data.groups import NOT_LISTED
from octreport.evaluation.intervals import Interval, wilson
from octreport.evaluation.referral import oct_class_order, urgent_calls

BY_SIZE = "image size"
"""The grouping by stored size, width x height in pixels."""


@dataclass(frozen=True)
class GroupRow:
    """One group: ``n`` images, ``correct`` of them classified right; ``urgent_sensitivity`` over its
    ``n_urgent`` CNV and DME scans and ``urgent_specificity`` over its ``n_non_urgent`` others (None
    when the classes are not the four OCT ones; an Interval of None when the group has no such scan)."""

    group: str
    n: int
    correct: int
    accuracy: Interval
    n_urgent: int = 0
    n_non_urgent: int = 0
    urgent_sensitivity: Interval | None = None
    urgent_specificity: Interval | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group, "n": self.n, "correct": self.correct, "accuracy": self.accuracy.to_dict(),
            "n_urgent": self.n_urgent, "n_non_urgent": self.n_non_urgent,
            "urgent_sensitivity": None if self.urgent_sensitivity is None else self.urgent_sensitivity.to_dict(),
            "urgent_specificity": None if self.urgent_specificity is None else self.urgent_specificity.to_dict(),
        }


@dataclass(frozen=True)
class GroupMetrics:
    """The rows of one grouping (``grouping``: :data:`BY_SIZE`, or where the groups came from),
    largest group first and :data:`~octreport.data.groups.NOT_LISTED` last."""

    grouping: str
    rows: tuple[GroupRow, ...]
    referral: bool
    level: float = 0.95

    @property
    def not_listed(self) -> int:
        """Evaluated images the groups file did not list."""
        return next((row.n for row in self.rows if row.group == NOT_LISTED), 0)

    def to_dict(self) -> dict[str, Any]:
        return {"grouping": self.grouping, "referral": self.referral, "level": self.level,
                "interval": "wilson", "not_listed": self.not_listed, "groups": [row.to_dict() for row in self.rows]}


def compute_group_metrics(
    labels: np.ndarray, predicted: np.ndarray, class_names: Sequence[str], groups: Sequence[str], grouping: str,
    level: float = 0.95, called_urgent: np.ndarray | None = None,
) -> GroupMetrics:
    """Per-group metrics of predictions. ``labels``/``predicted``: ``(N,)`` class indices into
    ``class_names``; ``groups``: ``N`` group names, aligned. ``called_urgent``: ``(N,)`` the referral
    rule's urgent calls (:func:`~octreport.evaluation.referral.urgent_calls`); None: the predicted
    class is CNV or DME."""
    labels, predicted = np.asarray(labels, np.int64), np.asarray(predicted, np.int64)
    names = np.asarray(list(groups), dtype=object)
    if not labels.shape == predicted.shape == names.shape:
        raise ValueError(f"labels {labels.shape}, predictions {predicted.shape} and groups {names.shape} must align")
    order = oct_class_order(class_names)
    urgent = None if order is None else np.isin(labels, order[:2])
    if order is not None and called_urgent is None:  # the predicted class decides: urgent_calls on it, one-hot
        called_urgent = urgent_calls(np.eye(len(class_names))[predicted], class_names, None)
    counts = Counter(names.tolist())
    rows = []
    for group in sorted(counts, key=lambda g: (g == NOT_LISTED, -counts[g], g)):
        mine = names == group
        correct = int((labels[mine] == predicted[mine]).sum())
        row = GroupRow(group, int(mine.sum()), correct, wilson(correct, int(mine.sum()), level))
        if urgent is not None:
            cases, others = mine & urgent, mine & ~urgent
            row = GroupRow(
                row.group, row.n, row.correct, row.accuracy, int(cases.sum()), int(others.sum()),
                wilson(int((cases & called_urgent).sum()), int(cases.sum()), level),
                wilson(int((others & ~called_urgent).sum()), int(others.sum()), level),
            )
        rows.append(row)
    return GroupMetrics(grouping, tuple(rows), order is not None, level)
