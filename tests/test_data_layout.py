"""Reading image folders in both layouts, with the quirks of the real published folders."""

from __future__ import annotations


import pytest

from conftest import OCT_CLASSES, write_class_folders, write_image, write_kermany
from octreport.data.dataset import prepare_data
from octreport.data.layout import CLASS_FOLDER_LAYOUT, KERMANY_LAYOUT, scan_dataset
from octreport.errors import DataError


def test_kermany_layout_classes_sorted_and_splits_found(kermany_dir):
    scanned = scan_dataset(kermany_dir)
    assert scanned.layout == KERMANY_LAYOUT
    assert scanned.class_names == OCT_CLASSES
    assert set(scanned.splits) == {"train", "test"}
    assert len(scanned.splits["train"]) == 4 * 4 * 2
    labels = {scanned.class_names[i.label] for i in scanned.splits["test"] if i.path.parent.name == "DME"}
    assert labels == {"DME"}


def test_class_folder_layout(tmp_path):
    write_class_folders(tmp_path / "d", classes=("cat", "dog", "eel"))
    scanned = scan_dataset(tmp_path / "d")
    assert scanned.layout == CLASS_FOLDER_LAYOUT
    assert scanned.class_names == ("cat", "dog", "eel")
    assert len(scanned.splits["all"]) == 3 * 8


def test_quirks_of_the_published_folders(tmp_path):
    root = tmp_path / "OCT2017 "
    # Train uses upper case, test the mixed case of the real download, plus a trailing space.
    write_class_folders(root / "train", classes=OCT_CLASSES)
    for name, folder in zip(OCT_CLASSES, ("CNV", "DME ", "Drusen", "Normal")):
        write_image(root / "test" / folder / f"{name}-9{len(folder)}-1.jpeg", size=(496, 512))
        write_image(root / "test" / folder / f"{name}-8{len(folder)}-1.png", size=(496, 1536), mode="RGB")
        write_image(root / "test" / folder / f"{name}-7{len(folder)}-1.jpeg", size=(496, 768))
        write_image(root / "test" / folder / f"{name}-6{len(folder)}-1.jpeg", size=(496, 1024), mode="RGB")
    (root / "train" / "CNV" / ".DS_Store").write_bytes(b"\x00\x01")
    (root / "test" / "Normal" / "notes.txt").write_text("not an image")
    (root / ".DS_Store").write_bytes(b"\x00")
    scanned = scan_dataset(root)
    assert scanned.class_names == OCT_CLASSES
    assert len(scanned.splits["test"]) == 16
    assert {p.name for p in scanned.ignored_files} == {".DS_Store", "notes.txt"}


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: None, "does not exist"),
        (lambda root: root.mkdir(), "has no class folders"),
        (lambda root: (root / "CNV").mkdir(parents=True) or (root / "DME").mkdir(), "holds no JPEG or PNG images"),
        (lambda root: write_class_folders(root / "train"), "no test/ folder"),
        (lambda root: write_class_folders(root, classes=("ONLY",)), "only one class"),
    ],
)
def test_unusable_folders_are_refused_with_the_folder_and_layout(tmp_path, make, message):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(DataError) as error:
        scan_dataset(root)
    assert message in str(error.value)
    assert str(root) in str(error.value)
    assert "Expected either" in str(error.value) or "only one class" in str(error.value)


def test_missing_class_in_test_split_is_refused(tmp_path):
    root = tmp_path / "data"
    write_class_folders(root / "train")
    write_class_folders(root / "test", classes=OCT_CLASSES[:3])
    with pytest.raises(DataError, match="lacks class folder"):
        scan_dataset(root)


def test_damaged_files_are_skipped_named_and_counted(kermany_dir, caplog):
    test_cnv = kermany_dir / "test" / "CNV"
    (test_cnv / "CNV-5-1.jpeg").write_bytes(b"")
    (test_cnv / "CNV-6-1.jpeg").write_text("<html>not an image</html>")
    whole = (test_cnv / "CNV-1000-1.jpeg").read_bytes()
    (test_cnv / "CNV-7-1.jpeg").write_bytes(whole[: len(whole) // 2])
    data = prepare_data(kermany_dir)
    reasons = {s.path.name: s.reason for s in data.skipped}
    assert reasons == {
        "CNV-5-1.jpeg": "empty file (0 bytes)",
        "CNV-6-1.jpeg": "not a JPEG or PNG image",
        "CNV-7-1.jpeg": "truncated JPEG (no end-of-image marker)",
    }
    assert all(name in caplog.text for name in reasons)
    assert len(data.test) == 4 * 8


def test_class_whose_files_are_all_damaged_is_refused(kermany_dir):
    for path in (kermany_dir / "test" / "DME").iterdir():
        path.write_bytes(b"")
    with pytest.raises(DataError, match="No usable images of class DME"):
        prepare_data(kermany_dir)


def test_val_is_carved_from_train_patient_disjoint(kermany_dir):
    data = prepare_data(kermany_dir, seed=3, val_fraction=0.25)
    train_patients = {i.path.stem.rsplit("-", 1)[0] for i in data.train}
    val_patients = {i.path.stem.rsplit("-", 1)[0] for i in data.val}
    assert val_patients and not train_patients & val_patients
    assert {i.path for i in data.test} == {p for p in (kermany_dir / "test").rglob("*.jpeg")}
    assert "validation carved from train" in data.split_note


def test_existing_val_folder_is_used_as_is(tmp_path):
    root = write_kermany(tmp_path / "d", splits=("train", "val", "test"))
    data = prepare_data(root)
    assert {i.path.parent.parent.name for i in data.val} == {"val"}
