"""Deterministic, patient-disjoint splits and folds.

Kermany-named files (``CLASS-PATIENT-N.ext``) from one patient always land on the same side of a
split: a model must be judged on patients it has not seen. Files with other names are their own
group. Groups are dealt out in a seeded order to whichever part is furthest below its target share
of each class, so every part keeps roughly the class balance of the whole.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path, PurePath

import numpy as np

from octreport.data.layout import ImageItem

_KERMANY_NAME = re.compile(r"^(?P<cls>[A-Za-z]+)-(?P<patient>\d+)-(?P<n>\d+)$")


def patient_id(item: ImageItem) -> str:
    """The patient of a Kermany-named file, or the file's own path when the name has no patient."""
    return patient_of_path(item.path)


def patient_of_path(path: Path | str) -> str:
    """``patient:<ID>`` for a Kermany name ``CLASS-ID-N.ext``, else ``file:<path>`` (its own group)."""
    match = _KERMANY_NAME.match(PurePath(path).stem.strip())
    return f"patient:{match['patient']}" if match else f"file:{path}"


def partition_by_patient(
    items: Sequence[ImageItem], shares: Sequence[float], seed: int,
    patient_of: Callable[[ImageItem], str] | None = None,
) -> list[tuple[ImageItem, ...]]:
    """Partition ``items`` into ``len(shares)`` parts of about those shares, keeping patients whole.

    ``patient_of``: who an image belongs to (default :func:`patient_id`, from Kermany file names;
    a DICOM scan's PatientID, see :func:`octreport.data.dicom_headers.split_patient`).
    Deterministic for a given ``seed`` and input set (the input order does not matter).
    """
    patient_of = patient_of or patient_id
    if not shares or min(shares) < 0 or sum(shares) <= 0:
        raise ValueError(f"shares must be non-negative and not all zero, got {list(shares)}")
    weights = np.asarray(shares, dtype=float) / float(sum(shares))
    groups: dict[str, list[ImageItem]] = defaultdict(list)
    for item in sorted(items, key=lambda it: str(it.path)):
        groups[patient_of(item)].append(item)
    order = sorted(groups)
    np.random.default_rng(seed).shuffle(order)
    # Large groups first, so the small ones can even out the shares at the end.
    order.sort(key=lambda key: -len(groups[key]))

    class_totals = Counter(item.label for item in items)
    filled = [Counter() for _ in weights]
    parts: list[list[ImageItem]] = [[] for _ in weights]
    for key in order:
        group_classes = Counter(item.label for item in groups[key])
        deficits = [
            sum((weights[p] * class_totals[c] - filled[p][c]) * n for c, n in group_classes.items())
            for p in range(len(weights))
        ]
        target = int(np.argmax(deficits))
        parts[target].extend(groups[key])
        filled[target].update(group_classes)
    return [tuple(sorted(part, key=lambda it: str(it.path))) for part in parts]


def shared_patients(a: Sequence[ImageItem], b: Sequence[ImageItem]) -> set[str]:
    """Patients present in both ``a`` and ``b`` (empty for a correct split)."""
    return {patient_id(i) for i in a if patient_id(i).startswith("patient:")} & {
        patient_id(i) for i in b if patient_id(i).startswith("patient:")
    }
