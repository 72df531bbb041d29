"""A data folder made ready for training and evaluation: checked files and patient-disjoint splits."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from octreport.data.layout import CLASS_FOLDER_LAYOUT, EXPECTED_LAYOUT, ImageItem, scan_dataset
from octreport.data.splits import partition_by_patient
from octreport.data.validation import SkippedFile, partition_usable
from octreport.errors import DataError

log = logging.getLogger(__name__)


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
    outside_links: tuple[Path, ...] = ()  # symbolic links out of the data folder, skipped
    test_note: str = ""
    """Where the test split comes from, for a run that only evaluates a model (no training)."""

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
) -> PreparedData:
    """Scan ``root``, drop damaged files (named in warnings) and make any missing split.

    Splits already on disk are kept as they are. A missing ``val/`` is carved from ``train/``
    (``val_fraction`` of it); a class-folder layout is cut into train/val/test. Every split made
    here keeps each patient on one side (see :mod:`octreport.data.splits`).
    """
    scanned = scan_dataset(root, follow_symlinks)
    usable: dict[str, tuple[ImageItem, ...]] = {}
    skipped: list[SkippedFile] = []
    for split, items in scanned.splits.items():
        usable[split], bad = partition_usable(items)
        skipped.extend(bad)
        _require_every_class(scanned.class_names, usable[split], f"{scanned.root} ({split})")

    if scanned.layout == CLASS_FOLDER_LAYOUT:
        rest, test = partition_by_patient(usable["all"], [1 - test_fraction, test_fraction], seed)
        train, val = partition_by_patient(rest, [1 - val_fraction, val_fraction], seed)
        note = (
            f"class folders only: split by octreport into train/val/test "
            f"({1 - test_fraction:.0%} of patients for train+val, of which {val_fraction:.0%} for validation; "
            f"{test_fraction:.0%} for test), patient-disjoint, seed {seed}"
        )
        test_note = (f"class folders only: the test split is {test_fraction:.0%} of the patients, cut by octreport "
                     f"(patient-disjoint, seed {seed}); the other images were not used")
    elif "val" in usable:
        train, val, test = usable["train"], usable["val"], usable["test"]
        note = "train/, val/ and test/ as found on disk"
        test_note = "test/ as found on disk; train/ and val/ were not used"
    else:
        train, val = partition_by_patient(usable["train"], [1 - val_fraction, val_fraction], seed)
        test = usable["test"]
        note = (
            f"train/ and test/ as found on disk; validation carved from train/ "
            f"({val_fraction:.0%} of patients, patient-disjoint, seed {seed})"
        )
        test_note = "test/ as found on disk; train/ was not used"
    for name, items in (("train", train), ("validation", val), ("test", test)):
        if not items:
            raise DataError(
                f"The {name} split of '{scanned.root}' is empty: too few images (or patients) to split. "
                f"Add images or provide the split as a folder. {EXPECTED_LAYOUT}"
            )
    return PreparedData(
        scanned.root, scanned.layout, scanned.class_names, train, val, test,
        tuple(skipped), scanned.ignored_files, note, scanned.outside_links, test_note,
    )


def _require_every_class(class_names: tuple[str, ...], items: tuple[ImageItem, ...], where: str) -> None:
    present = {item.label for item in items}
    empty = [name for label, name in enumerate(class_names) if label not in present]
    if empty:
        raise DataError(
            f"No usable images of class {', '.join(empty)} in {where}: every file there was skipped. "
            f"See the warnings above. {EXPECTED_LAYOUT}"
        )
