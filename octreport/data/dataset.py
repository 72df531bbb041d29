"""A data folder made ready for training and evaluation: checked files and patient-disjoint splits."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from octreport.data.layout import (
    CLASS_FOLDER_LAYOUT, EXPECTED_LAYOUT, KERMANY_LAYOUT, SPLIT_NAMES, ImageItem, ScannedDataset, layout_of, scan_dataset,
    scan_unlabelled,
)
from octreport.data.dicom_headers import split_patient
from octreport.data.splits import partition_by_patient
from octreport.data.validation import SkippedFile, partition_usable
from octreport.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SPLIT_AUTO, SPLIT_TEST, SPLIT_ALL = "auto", "test", "all"
SPLIT_CHOICES = (SPLIT_AUTO, SPLIT_TEST, SPLIT_ALL)
"""What a run that only evaluates a model evaluates (``--split``): ``test`` the test split (a
Kermany layout's ``test/``; 20% of a class-folder layout's patients, cut as a training run would
cut them), ``all`` every image of the folder, ``auto`` ``all`` for class folders and ``test`` for a
Kermany layout."""


@dataclass(frozen=True)
class PreparedData:
    """Usable images per split, with what was skipped and how the splits were made."""

    root: Path
    layout: str
    class_names: tuple[str, ...]
    train: tuple[ImageItem, ...]
    val: tuple[ImageItem, ...]
    test: tuple[ImageItem, ...]
    skipped: tuple[SkippedFile, ...]
    ignored_files: tuple[Path, ...]
    split_note: str
    """How the splits were made; for a run that only evaluates a model, which images ``test`` holds and why."""
    outside_links: tuple[Path, ...] = ()  # symbolic links out of the data folder, skipped
    evaluated_split: str = SPLIT_TEST
    """``test`` or ``all``: which images ``test`` holds (see :data:`SPLIT_CHOICES`); a training run's
    is always ``test``."""
    class_folders: tuple[str | None, ...] = ()
    """For data relabelled to a model's classes (:func:`octreport.data.class_map.relabel_to_model`):
    the folder that holds each of ``class_names``, None for a class the data lacks; empty when the
    class names are the folders' own."""

    def classes_present(self, split: str = "test") -> tuple[str, ...]:
        """The classes with at least one image in ``split``, in class order."""
        labels = {item.label for item in self.split(split)}
        return tuple(name for label, name in enumerate(self.class_names) if label in labels)

    def split(self, name: str) -> tuple[ImageItem, ...]:
        return {"train": self.train, "val": self.val, "test": self.test}[name]

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per class for each split: ``{split: {class_name: count}}``."""
        result = {}
        for split in ("train", "val", "test"):
            per_class = {name: 0 for name in self.class_names}
            for item in self.split(split):
                per_class[self.class_names[item.label]] += 1
            result[split] = per_class
        return result


def prepare_data(
    root: Path | str, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.2, follow_symlinks: bool = False,
    *, training: bool = True, split: str = SPLIT_AUTO,
) -> PreparedData:
    """Scan ``root``, drop damaged files (named in warnings) and make any missing split.

    For training (``training``): splits already on disk are kept as they are; a missing ``val/``
    is carved from ``train/`` (``val_fraction`` of it); a class-folder layout is cut into
    train/val/test. Every split made here keeps each patient on one side (see
    :mod:`octreport.data.splits`). ``split`` must then be ``auto`` or ``test``.

    For a run that only evaluates a model (not ``training``), ``test`` holds what ``split`` says
    (:data:`SPLIT_CHOICES`). A Kermany layout then needs only ``test/`` for ``test``: ``train``
    and ``val`` are filled as for training where the folder allows it (for the data audit, never
    evaluated), else left empty; with ``all`` they are empty.
    """
    if split not in SPLIT_CHOICES:
        raise ConfigError(f"--split must be one of {', '.join(SPLIT_CHOICES)}, got '{split}'.")
    if training and split == SPLIT_ALL:
        raise ConfigError(
            "--split all evaluates every image of the data folder, but this run trains a model on some of them. "
            "Give --model to evaluate a trained model on a whole folder, or leave --split out."
        )
    if training:
        return _prepare_for_training(root, seed, val_fraction, test_fraction, follow_symlinks)
    return _prepare_for_evaluation(root, seed, val_fraction, test_fraction, follow_symlinks, split)


def prepare_unlabelled(root: Path | str, follow_symlinks: bool = False) -> PreparedData:
    """Every usable image under ``root``, without labels, as the evaluated set (``test``) of a
    screening run; damaged files skipped and named."""
    scanned = scan_unlabelled(root, follow_symlinks)
    usable, skipped = partition_usable(scanned.splits["all"])
    if not usable:
        raise DataError(f"No usable image in '{scanned.root}': every file there was skipped. See the warnings above.")
    note = "unlabelled scans: every image under the folder screened (no labels, so no accuracy is claimed)"
    return _prepared(scanned, (), (), usable, tuple(skipped), note, SPLIT_ALL)


def _scan_usable(root: Path | str, follow_symlinks: bool, splits: tuple[str, ...] | None = None):
    """The scanned folder, its usable images per split and the damaged files skipped."""
    scanned = scan_dataset(root, follow_symlinks, splits)
    usable: dict[str, tuple[ImageItem, ...]] = {}
    skipped: list[SkippedFile] = []
    for name, items in scanned.splits.items():
        usable[name], bad = partition_usable(items)
        skipped.extend(bad)
        if splits is None:  # training needs every class; evaluated data may lack some (see data/class_map.py)
            _require_every_class(scanned.class_names, usable[name], f"{scanned.root} ({name})")
    if splits is not None and not any(usable.values()):
        raise DataError(f"No usable image in '{scanned.root}': every file there was skipped. See the warnings above.")
    return scanned, usable, tuple(skipped)


def _prepare_for_training(root, seed, val_fraction, test_fraction, follow_symlinks) -> PreparedData:
    scanned, usable, skipped = _scan_usable(root, follow_symlinks)
    if scanned.layout == CLASS_FOLDER_LAYOUT:
        rest, test = partition_by_patient(usable["all"], [1 - test_fraction, test_fraction], seed, split_patient)
        train, val = partition_by_patient(rest, [1 - val_fraction, val_fraction], seed, split_patient)
        note = (
            f"class folders only: split by octreport into train/val/test "
            f"({1 - test_fraction:.0%} of patients for train+val, of which {val_fraction:.0%} for validation; "
            f"{test_fraction:.0%} for test), patient-disjoint, seed {seed}"
        )
    elif "val" in usable:
        train, val, test = usable["train"], usable["val"], usable["test"]
        note = "train/, val/ and test/ as found on disk"
    else:
        train, val = partition_by_patient(usable["train"], [1 - val_fraction, val_fraction], seed, split_patient)
        test = usable["test"]
        note = (
            f"train/ and test/ as found on disk; validation carved from train/ "
            f"({val_fraction:.0%} of patients, patient-disjoint, seed {seed})"
        )
    for name, items in (("train", train), ("validation", val), ("test", test)):
        if not items:
            raise DataError(
                f"The {name} split of '{scanned.root}' is empty: too few images (or patients) to split. "
                f"Add images or provide the split as a folder. {EXPECTED_LAYOUT}"
            )
    return _prepared(scanned, train, val, test, skipped, note, SPLIT_TEST)


def _prepare_for_evaluation(root, seed, val_fraction, test_fraction, follow_symlinks, split) -> PreparedData:
    """``test`` holds the images a loaded model is evaluated on; with ``--split test``, ``train``
    and ``val`` hold what a training run would have trained on, when the folder has them, for the
    data audit alone (a patient or a copy shared with them is worth knowing about)."""
    kermany = layout_of(root) == KERMANY_LAYOUT  # the layout decides what "auto" means
    if split == SPLIT_AUTO:
        split = SPLIT_TEST if kermany else SPLIT_ALL
    if split == SPLIT_TEST:
        return _evaluate_test_split(root, seed, val_fraction, test_fraction, follow_symlinks, kermany)
    scanned, usable, skipped = _scan_usable(root, follow_symlinks, SPLIT_NAMES)
    if kermany:
        found = ", ".join(f"{name}/" for name in SPLIT_NAMES if name in usable)
        test = tuple(sorted((item for items in usable.values() for item in items), key=lambda i: str(i.path)))
        note = f"every image of {found} evaluated together (--split all; no training in this run)"
    else:
        test = usable["all"]
        note = "class folders only: every image evaluated (--split all; no training in this run)"
    return _prepared(scanned, (), (), test, skipped, note, SPLIT_ALL)


def _evaluate_test_split(root, seed, val_fraction, test_fraction, follow_symlinks, kermany: bool) -> PreparedData:
    try:
        split_as_trained = _prepare_for_training(root, seed, val_fraction, test_fraction, follow_symlinks)
    except DataError as error:
        if not kermany:
            raise
        # test/ is all an evaluation needs: a missing or malformed train/ or val/ only narrows the audit.
        scanned, usable, skipped = _scan_usable(root, follow_symlinks, ("test",))
        note = (f"test/ as found on disk (--split test); the rest of the folder was not read, so the data audit covers "
                f"test/ alone ({str(error).split('. ')[0]})")
        return _prepared(scanned, (), (), usable["test"], skipped, note, SPLIT_TEST)
    if kermany:
        note = "test/ as found on disk (--split test); train/ and val/ were not evaluated, only audited for shared patients and copies"
    else:
        note = (f"class folders only: the test split is {test_fraction:.0%} of the patients, cut by octreport as a training "
                f"run would cut it (--split test; patient-disjoint, seed {seed}); the other images were not evaluated")
    return replace(split_as_trained, split_note=note)


def _prepared(scanned: ScannedDataset, train, val, test, skipped, note, evaluated_split) -> PreparedData:
    return PreparedData(
        scanned.root, scanned.layout, scanned.class_names, tuple(train), tuple(val), tuple(test),
        tuple(skipped), scanned.ignored_files, note, scanned.outside_links, evaluated_split,
    )


def _require_every_class(class_names: tuple[str, ...], items: tuple[ImageItem, ...], where: str) -> None:
    present = {item.label for item in items}
    empty = [name for label, name in enumerate(class_names) if label not in present]
    if empty:
        raise DataError(
            f"No usable images of class {', '.join(empty)} in {where}: every file there was skipped. "
            f"See the warnings above. {EXPECTED_LAYOUT}"
        )
