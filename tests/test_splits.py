"""Patient-disjoint, deterministic splits."""

from __future__ import annotations

from pathlib import Path

from octreport.data.layout import ImageItem
from octreport.data.splits import partition_by_patient, patient_id, shared_patients


def items_for(patients: int, per_patient: int, classes: int = 4) -> list[ImageItem]:
    return [
        ImageItem(Path(f"/d/C{c}/C{c}-{100 * c + p}-{n}.jpeg"), c)
        for c in range(classes)
        for p in range(patients)
        for n in range(1, per_patient + 1)
    ]


def test_patient_id_from_kermany_names():
    assert patient_id(ImageItem(Path("x/CNV-1016042-3.jpeg"), 0)) == "patient:1016042"
    assert patient_id(ImageItem(Path("x/DRUSEN-22-1.png"), 0)) == "patient:22"
    assert patient_id(ImageItem(Path("x/scan_17.jpeg"), 0)).startswith("file:")


def test_every_patient_on_one_side_and_nothing_lost():
    items = items_for(patients=20, per_patient=3)
    train, test = partition_by_patient(items, [0.8, 0.2], seed=0)
    assert not shared_patients(train, test)
    assert sorted(map(str, (i.path for i in train + test))) == sorted(str(i.path) for i in items)


def test_shares_and_class_balance_are_close_to_the_target():
    items = items_for(patients=25, per_patient=2)
    train, test = partition_by_patient(items, [0.8, 0.2], seed=1)
    assert abs(len(test) - 0.2 * len(items)) <= 4
    for c in range(4):
        assert 8 <= sum(1 for i in test if i.label == c) <= 12


def test_deterministic_for_a_seed_and_input_order_does_not_matter():
    items = items_for(patients=15, per_patient=2)
    first = partition_by_patient(items, [0.7, 0.3], seed=5)
    again = partition_by_patient(list(reversed(items)), [0.7, 0.3], seed=5)
    other = partition_by_patient(items, [0.7, 0.3], seed=6)
    assert first == again
    assert first != other


def test_same_patient_id_across_classes_stays_together():
    items = [ImageItem(Path(f"/d/A/A-9999-{n}.jpeg"), 0) for n in range(3)] + [
        ImageItem(Path(f"/d/B/B-9999-{n}.jpeg"), 1) for n in range(3)
    ] + items_for(patients=10, per_patient=1, classes=2)
    parts = partition_by_patient(items, [0.5, 0.5], seed=0)
    sides = [k for k, part in enumerate(parts) for i in part if "-9999-" in i.path.name]
    assert len(set(sides)) == 1


def test_k_folds_cover_each_patient_exactly_once():
    items = items_for(patients=30, per_patient=2)
    folds = partition_by_patient(items, [1] * 5, seed=0)
    assert sum(len(f) for f in folds) == len(items)
    for a in range(5):
        for b in range(a + 1, 5):
            assert not shared_patients(folds[a], folds[b])
