"""The data audit: leaked patients, exact and near duplicates, label conflicts, shortcuts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from octreport.data.data_audit import AuditedImage, audit_data
from octreport.data.image_facts import collect_image_facts, hamming, phash_bits
from octreport.data.near_duplicates import near_duplicate_pairs
from octreport.data.patients import read_patients_file
from octreport.data.shortcuts import one_feature_accuracy
from conftest import OCT_REAL
from octreport.errors import DataError

CLASSES = ("CNV", "NORMAL")


def _scan(seed: int, size=(96, 128)) -> np.ndarray:
    """A smooth random 'scan' (a few plane waves): distinct seeds give distinct low frequencies."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size[0], 0:size[1]] / np.array(size)[:, None, None]
    image = sum(rng.uniform(0.5, 1) * np.sin(2 * np.pi * (rng.uniform(0.5, 3) * y + rng.uniform(0.5, 3) * x) + rng.uniform(0, 6.3))
                for _ in range(6))
    return ((image - image.min()) / np.ptp(image) * 200 + 20).astype(np.uint8)


def _write(path: Path, pixels: np.ndarray, quality: int = 95) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, "L").save(path, "PNG" if path.suffix == ".png" else "JPEG", quality=quality)
    return path


def _audited(root: Path, paths: list[Path]) -> list[AuditedImage]:
    return [AuditedImage(p.relative_to(root).as_posix(), p.relative_to(root).parts[0], p.parent.name,
                         hashlib.sha256(p.read_bytes()).hexdigest()) for p in paths]


def test_phash_keeps_a_blurred_copy_close_and_a_flipped_image_far():
    image = _scan(3, (64, 64)).astype(float)
    blurred = (image + np.roll(image, 1, 0) + np.roll(image, 1, 1)) / 3
    hashes = phash_bits(np.stack([image, blurred, image[::-1], image * 0.5 + 40]))
    assert hamming(hashes[0], hashes[1]) <= 4
    assert hamming(hashes[0], hashes[3]) == 0  # brightness and contrast do not change the hash
    assert hamming(hashes[0], hashes[2]) >= 16


def test_bucketed_search_finds_exactly_the_pairs_an_all_pairs_search_finds():
    rng = np.random.default_rng(1)
    hashes = rng.integers(0, 2**63, size=400, dtype=np.uint64)
    hashes[10] = hashes[3] ^ np.uint64(0b1011)  # 3 bits apart
    hashes[20] = hashes[7] ^ np.uint64(1 << 40)  # 1 bit apart
    hashes[30] = hashes[7] ^ np.uint64(0b11111 << 20)  # 5 bits apart: beyond the threshold
    first, second, distance = near_duplicate_pairs(hashes, 4)
    all_pairs = hamming(hashes[:, None], hashes[None, :])
    i, j = np.nonzero(np.triu(all_pairs <= 4, 1))
    assert sorted(zip(first.tolist(), second.tolist())) == sorted(zip(i.tolist(), j.tolist()))
    assert {(3, 10, 3), (7, 20, 1)} <= set(zip(first.tolist(), second.tolist(), distance.tolist()))


def test_kermany_patient_shared_between_train_and_test_is_flagged(tmp_path):
    paths = [_write(tmp_path / "train/CNV/CNV-111-1.jpeg", _scan(1)), _write(tmp_path / "train/NORMAL/NORMAL-222-1.jpeg", _scan(2)),
             _write(tmp_path / "test/CNV/CNV-111-2.jpeg", _scan(3)), _write(tmp_path / "test/NORMAL/NORMAL-333-1.jpeg", _scan(4))]
    audit = audit_data(_audited(tmp_path, paths), CLASSES)
    assert audit.leaked_patients == 1
    shared = audit.shared_patients[0]
    assert shared.patient == "111" and dict(shared.images) == {"train": 1, "test": 1}
    assert "train/CNV/CNV-111-1.jpeg" in shared.examples
    assert audit.patients == {"train": 2, "test": 2}
    assert "patient 111" in audit.worst_finding()
    assert audit.to_dict()["leaked_patients"] == 1


def test_patients_csv_overrides_names_and_malformed_files_are_refused(tmp_path):
    paths = [_write(tmp_path / "train/CNV/a.jpeg", _scan(1)), _write(tmp_path / "test/CNV/b.jpeg", _scan(2)),
             _write(tmp_path / "train/NORMAL/c.jpeg", _scan(3)), _write(tmp_path / "test/NORMAL/d.jpeg", _scan(4))]
    csv = tmp_path / "patients.csv"
    csv.write_text("file,patient\ntrain/CNV/a.jpeg,P1\nb.jpeg,P1\nc.jpeg,P2\n")
    audit = audit_data(_audited(tmp_path, paths), CLASSES, patients=read_patients_file(csv))
    assert [p.patient for p in audit.shared_patients] == ["P1"] and audit.images_without_patient == 1
    assert audit_data(_audited(tmp_path, paths), CLASSES).patients is None  # no Kermany names: unknown
    for text in ("name,who\na.jpeg,P1\n", "file,patient\n", "file,patient\na.jpeg,\n", "file,patient\na.jpeg,P1\na.jpeg,P2\n"):
        csv.write_text(text)
        with pytest.raises(DataError, match="patients file"):
            read_patients_file(csv)


def test_byte_copies_across_and_within_splits_and_label_conflicts(tmp_path):
    paths = [_write(tmp_path / "train/CNV/CNV-1-1.jpeg", _scan(5)), _write(tmp_path / "train/NORMAL/NORMAL-2-1.jpeg", _scan(6)),
             _write(tmp_path / "test/NORMAL/NORMAL-3-1.jpeg", _scan(7)), _write(tmp_path / "test/CNV/CNV-4-1.jpeg", _scan(8))]
    copies = {"test/CNV/CNV-9-1.jpeg": paths[0],  # the same file in train and test, same class
              "test/CNV/CNV-4-2.jpeg": paths[3],  # twice within the test split
              "train/CNV/CNV-8-1.jpeg": paths[1]}  # a NORMAL image filed under CNV too: a label conflict
    for name, source in copies.items():
        (tmp_path / name).write_bytes(source.read_bytes())
    audit = audit_data(_audited(tmp_path, [*paths, *(tmp_path / name for name in copies)]), CLASSES)
    assert [g.files for g in audit.label_conflicts] == [
        (("train/CNV/CNV-8-1.jpeg", "train", "CNV"), ("train/NORMAL/NORMAL-2-1.jpeg", "train", "NORMAL"))]
    assert [g.files for g in audit.exact_across_splits] == [
        (("test/CNV/CNV-9-1.jpeg", "test", "CNV"), ("train/CNV/CNV-1-1.jpeg", "train", "CNV"))]
    assert sorted(g.files[0][0] for g in audit.exact_within_splits) == ["test/CNV/CNV-4-1.jpeg", "train/CNV/CNV-8-1.jpeg"]
    assert audit.worst_finding().startswith("1 label conflict") and "CNV-8-1.jpeg (CNV)" in audit.worst_finding()
    assert audit.duplicates_across_splits == 1
    document = audit.to_dict()
    assert (document["label_conflicts"], document["exact_duplicates_across_splits"], document["exact_duplicates_within_splits"]) == (1, 1, 2)


def test_reencoded_shifted_copy_is_a_near_duplicate_but_other_scans_of_its_patient_are_not_merged(tmp_path):
    wide = _scan(11, (240, 330))
    original, shifted = wide[:, :320], wide[:, 3:323]  # the same scene, 3 pixels to the side
    paths = [_write(tmp_path / "train/CNV/CNV-50-1.jpeg", original),
             _write(tmp_path / "test/CNV/CNV-60-1.jpeg", shifted, quality=70),  # a copy under another patient
             _write(tmp_path / "train/CNV/CNV-50-2.jpeg", _scan(12, (240, 320))),  # the same patient, another scan
             _write(tmp_path / "train/NORMAL/NORMAL-70-1.jpeg", _scan(13, (240, 320))),
             _write(tmp_path / "test/NORMAL/NORMAL-80-1.png", _scan(14, (240, 320)))]
    same_patient = _write(tmp_path / "train/CNV/CNV-50-3.jpeg", original, quality=60)  # near-identical, same patient
    paths.append(same_patient)
    images = _audited(tmp_path, paths)
    facts = collect_image_facts([tmp_path / image.path for image in images])
    assert facts.decoded.all() and list(facts.width) == [320] * 6 and list(facts.file_type).count("png") == 1
    audit = audit_data(images, CLASSES, facts)
    # One cluster: the copy under another patient (a pair across splits) and the same patient's
    # near-identical copy (a look-alike of its own patient, not counted as a duplicate).
    (cluster,) = audit.near_clusters
    members = sorted(i.path for i in cluster.images)
    assert members == ["test/CNV/CNV-60-1.jpeg", "train/CNV/CNV-50-1.jpeg", "train/CNV/CNV-50-3.jpeg"]
    assert (cluster.pairs, cluster.across_splits) == (2, 2) and audit.near_counts.same_patient == 1
    assert {cluster.example.first.path, cluster.example.second.path} >= {"test/CNV/CNV-60-1.jpeg"}
    assert not cluster.example.same_patient and audit.duplicates_across_splits == 2
    assert audit.to_dict()["near_duplicate_threshold_bits"] == 4


def test_a_class_readable_from_the_width_is_a_shortcut(tmp_path):
    paths = []
    for split, count in (("train", 8), ("test", 6)):
        for n in range(count):
            for c, name in enumerate(CLASSES):
                seed = hash((split, n, c)) % 10_000
                paths.append(_write(tmp_path / f"{split}/{name}/{name}-{n}{c}{split[1]}-1.jpeg", _scan(seed, (64, 96 + 32 * c))))
    images = _audited(tmp_path, paths)
    audit = audit_data(images, CLASSES, collect_image_facts([tmp_path / i.path for i in images]))
    by_feature = {s.feature: s for s in audit.shortcuts}
    assert by_feature["width"].flagged and by_feature["width"].accuracy == 1.0 and by_feature["width"].chance == 0.5
    assert not by_feature["height"].flagged and not by_feature["file type"].flagged
    assert "width" in audit.to_dict()["flagged_shortcuts"]


def test_one_feature_classifier_at_chance_when_the_feature_says_nothing():
    rng = np.random.default_rng(0)
    accuracy, chance = one_feature_accuracy(rng.random(200), rng.integers(0, 2, 200), rng.random(100), np.r_[np.zeros(60), np.ones(40)])
    assert chance in (0.6, 0.4) and abs(accuracy - 0.5) < 0.2


@pytest.mark.skipif(not OCT_REAL.is_dir(), reason="../shared/oct-real is not present")
def test_oct_real_scans_filed_under_two_patients_are_found():
    """The README of oct-real says some scans are filed twice under different patient IDs: the
    audit finds them as near-duplicates at distance 0 (re-encoded: the bytes differ)."""
    paths = sorted(OCT_REAL.glob("*/*.jpeg"))
    images = [AuditedImage(p.relative_to(OCT_REAL).as_posix(), "all", p.parent.name, hashlib.sha256(p.read_bytes()).hexdigest())
              for p in paths]
    audit = audit_data(images, ("CNV", "DME", "DRUSEN", "NORMAL"), collect_image_facts(paths))
    assert audit.near_counts.pairs == 26 and audit.near_cluster_count == 26  # 25 copies at 0 bits, one look-alike at 4
    assert all(c.size == 2 for c in audit.near_clusters) and len(audit.near_clusters) == 20
    assert not audit.duplicate_groups and not audit.label_conflicts
    copies = {(c.example.first.path, c.example.second.path) for c in audit.near_clusters if c.example.distance == 0}
    assert len(copies) >= 19
    assert dict(audit.image_sizes)["1024x496"] == 942


def test_data_gates_pass_at_the_threshold_fail_above_it_and_fail_closed_when_unmeasured():
    from octreport.audit.gates import GateConfig, data_gates

    config = GateConfig(max_leaked_patients=1, max_duplicates=0)
    document = {"data_audit": {"leaked_patients": 1, "duplicates_across_splits": 2, "patients_per_split": {"train": 3}}}
    leaked, duplicates = data_gates(document, config)
    assert leaked.passed and leaked.value == 1
    assert not duplicates.passed and duplicates.message == "duplicates across splits 2 exceeds the maximum 0"
    unknown = {"data_audit": {"leaked_patients": 0, "duplicates_across_splits": 0, "patients_per_split": None}}
    assert not data_gates(unknown, config)[0].passed and "no image has a known patient" in data_gates(unknown, config)[0].message
    assert [g.passed for g in data_gates({}, config)] == [False, False]
    assert data_gates(document, GateConfig()) == []
    with pytest.raises(Exception, match="whole number"):
        GateConfig(max_duplicates=-1)
