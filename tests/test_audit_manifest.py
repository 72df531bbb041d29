"""Hashes, the data fingerprint and manifest.json: every hash recomputed here with hashlib directly."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import write_kermany
from octreport.cache import default_cache_dir
from octreport.data.fingerprint import dataset_fingerprint, fingerprint_prepared_data
from octreport.audit.gates import GateConfig, GateResult
from octreport.hashing import sha256_arrays, sha256_file, sha256_weights
from octreport.audit.manifest import (
    IN_MEMORY_NOTE, MANIFEST_KEYS, ModelIdentity, build_manifest, outcome_for, write_manifest,
)
from octreport.document.manifest import manifest_for_run
from octreport.config import ReportConfig, TrainConfig
from octreport.data.layout import ImageItem
from octreport.data.preprocessing import Preprocessing
from octreport.data.validation import SkippedFile
from octreport.errors import DataError

CLASSES = ("CNV", "DME", "NORMAL")


# ---------- hashing ----------


@pytest.mark.parametrize("size", [0, 1, 1000, 3 * 1024 + 5])
def test_sha256_file_streams_and_matches_hashlib(tmp_path, size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_file(path) == expected
    assert sha256_file(path, chunk=7) == expected  # many small reads give the same hash


def _independent_weights_hash(arrays) -> str:
    digest = hashlib.sha256()
    for i, a in enumerate(arrays):
        a = np.ascontiguousarray(a)
        shape = "x".join(map(str, a.shape)) or "scalar"
        digest.update(f"{i}:{a.dtype.name}:{shape}:{a.nbytes}\n".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def test_sha256_arrays_frames_dtype_shape_and_bytes():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.ones(4, dtype=np.int64)
    assert sha256_arrays([a, b]) == _independent_weights_hash([a, b])
    assert sha256_arrays([a, b]) != sha256_arrays([a.reshape(3, 2), b])          # shape counts
    assert sha256_arrays([a, b]) != sha256_arrays([a.astype(np.float64), b])     # dtype counts
    assert sha256_arrays([a, b]) != sha256_arrays([b, a])                         # order counts
    assert sha256_arrays([a.astype(">f4")]) == sha256_arrays([a])                # byte order does not
    assert sha256_arrays([np.float32(2.5)]) == _independent_weights_hash([np.float32(2.5)])


def _tiny_model(seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(2, 3)(inputs)
    x = keras.layers.BatchNormalization()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs)


def _restamp_zip(source: Path, target: Path, date_time=(2001, 2, 3, 4, 5, 6)) -> None:
    """The same archive members with other timestamps: different file bytes, same weights."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            fresh = zipfile.ZipInfo(info.filename, date_time=date_time)
            fresh.compress_type = info.compress_type
            new.writestr(fresh, old.read(info.filename))


def test_sha256_weights_ignores_zip_timestamps_and_sees_one_changed_weight(tmp_path):
    import keras

    model = _tiny_model()
    assert sha256_weights(model) == _independent_weights_hash([np.asarray(w) for w in model.get_weights()])
    first, second = tmp_path / "a.keras", tmp_path / "b.keras"
    model.save(first)
    _restamp_zip(first, second)
    assert sha256_file(first) != sha256_file(second)
    loaded_a, loaded_b = keras.models.load_model(first), keras.models.load_model(second)
    assert sha256_weights(loaded_a) == sha256_weights(loaded_b) == sha256_weights(model)

    weights = model.get_weights()
    before = [w.copy() for w in weights]
    weights[0].flat[0] += 1e-3
    changed = _tiny_model()
    changed.set_weights(weights)
    assert sha256_weights(changed) != sha256_weights(model)
    assert all(np.array_equal(w, b) for w, b in zip(model.get_weights(), before))  # model untouched


# ---------- fingerprint ----------


def _data_folder(root: Path) -> dict[str, list[ImageItem]]:
    """Small files standing in for images (the fingerprint never decodes them)."""
    splits: dict[str, list[ImageItem]] = {"train": [], "test": []}
    for split in splits:
        for label, name in enumerate(CLASSES):
            for n in range(3 if split == "train" else 2):
                path = root / split / name / f"{name}-{n}.jpeg"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(f"{split}/{name}/{n}".encode() * (n + 1))
                splits[split].append(ImageItem(path, label))
    return splits


def test_fingerprint_lists_every_file_with_size_and_hash(tmp_path):
    splits = _data_folder(tmp_path / "data")
    skipped = [SkippedFile(tmp_path / "data" / "train" / "CNV" / "bad.jpeg", "empty file (0 bytes)")]
    fp = dataset_fingerprint(tmp_path / "data", splits, CLASSES, skipped)
    assert len(fp.files) == 15
    assert [r.path for r in fp.files] == sorted(r.path for r in fp.files)
    record = next(r for r in fp.files if r.path == "train/DME/DME-2.jpeg")
    content = (tmp_path / "data" / record.path).read_bytes()
    assert (record.split, record.class_name, record.size) == ("train", "DME", len(content))
    assert record.sha256 == hashlib.sha256(content).hexdigest()
    assert fp.counts() == {"train": {"CNV": 3, "DME": 3, "NORMAL": 3}, "test": {"CNV": 2, "DME": 2, "NORMAL": 2}}
    # The listing hash, recomputed from the documented canonical form.
    rows = sorted([r.path, r.split, r.class_name, r.size, r.sha256] for r in fp.files)
    listing = json.dumps({"class_names": list(CLASSES), "files": rows}, sort_keys=True, separators=(",", ":"))
    assert fp.sha256 == hashlib.sha256(listing.encode()).hexdigest()
    document = fp.to_dict()
    assert document["skipped"] == [{"path": "train/CNV/bad.jpeg", "reason": "empty file (0 bytes)"}]
    assert document["n_files"] == 15 and document["total_bytes"] == fp.total_bytes
    assert len(document["files"]) == 15 and "files" not in fp.to_dict(include_files=False)
    json.dumps(document)


def test_fingerprint_is_stable_under_order_and_location(tmp_path):
    splits = _data_folder(tmp_path / "data")
    reference = dataset_fingerprint(tmp_path / "data", splits, CLASSES).sha256
    shuffled = {split: random.Random(1).sample(items, len(items)) for split, items in reversed(list(splits.items()))}
    assert dataset_fingerprint(tmp_path / "data", shuffled, CLASSES, workers=1).sha256 == reference
    shutil.copytree(tmp_path / "data", tmp_path / "elsewhere")
    moved = {s: [ImageItem(tmp_path / "elsewhere" / i.path.relative_to(tmp_path / "data"), i.label) for i in items]
             for s, items in splits.items()}
    assert dataset_fingerprint(tmp_path / "elsewhere", moved, CLASSES).sha256 == reference


def test_fingerprint_changes_with_one_byte_a_split_or_a_label(tmp_path):
    splits = _data_folder(tmp_path / "data")
    before = dataset_fingerprint(tmp_path / "data", splits, CLASSES)
    target = splits["test"][0].path
    data = bytearray(target.read_bytes())
    data[0] ^= 1
    target.write_bytes(bytes(data))
    after = dataset_fingerprint(tmp_path / "data", splits, CLASSES)
    assert after.sha256 != before.sha256
    changed = [a.path for a, b in zip(after.files, before.files) if a != b]
    assert changed == [target.relative_to(tmp_path / "data").as_posix()]

    moved = {"train": splits["train"] + splits["test"][:1], "test": splits["test"][1:]}
    assert dataset_fingerprint(tmp_path / "data", moved, CLASSES).sha256 != after.sha256
    relabelled = {"train": [ImageItem(splits["train"][0].path, 2)] + splits["train"][1:], "test": splits["test"]}
    assert dataset_fingerprint(tmp_path / "data", relabelled, CLASSES).sha256 != after.sha256


def test_fingerprint_of_a_vanished_file_is_a_data_error(tmp_path):
    splits = _data_folder(tmp_path / "data")
    splits["train"][0].path.unlink()
    with pytest.raises(DataError, match="cannot read .*CNV-0.jpeg"):
        dataset_fingerprint(tmp_path / "data", splits, CLASSES)


def test_fingerprint_prepared_data_covers_train_val_and_test(tmp_path):
    from octreport.data.dataset import prepare_data

    data = prepare_data(write_kermany(tmp_path / "data"), seed=0)
    fp = fingerprint_prepared_data(data)
    assert len(fp.files) == len(data.train) + len(data.val) + len(data.test)
    assert {r.split for r in fp.files} == {"train", "val", "test"}
    assert fp.counts() == data.counts()
    assert fp.class_names == data.class_names


# ---------- manifest ----------

REQUIRED_KEYS = {
    "outcome", "started_at", "finished_at", "duration_seconds", "command_line", "seed", "model",
    "class_names", "preprocessing", "data", "config", "gates", "versions", "host",
}
VERSION_KEYS = {"python", "tensorflow", "keras", "numpy", "matplotlib", "jinja2", "weasyprint", "octreport"}


def _manifest(tmp_path, **changes):
    splits = _data_folder(tmp_path / "data")
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    arguments = dict(
        model=ModelIdentity("m.keras", "net", tmp_path / "m.keras", "f" * 64, "w" * 64),
        data=dataset_fingerprint(tmp_path / "data", splits, CLASSES),
        class_names=CLASSES,
        preprocessing=Preprocessing(48, 48).to_dict(),
        train_config=TrainConfig(epochs=3, seed=7).to_dict(),
        report_config=ReportConfig(seed=9).to_dict(),
        command_line="octreport run --epochs 3",
        started_at=started,
        finished_at=started + timedelta(seconds=92.5),
        outcome="passed",
        gates=(GateResult("accuracy", 0.9, 0.95, True, "ok"),),
        gate_config=GateConfig(min_accuracy=0.9),
    )
    arguments.update(changes)
    return build_manifest(**arguments)


def test_manifest_has_every_required_key(tmp_path):
    manifest = _manifest(tmp_path)
    assert REQUIRED_KEYS <= set(manifest) and set(manifest) == set(MANIFEST_KEYS)
    assert VERSION_KEYS <= set(manifest["versions"])
    assert {"hostname", "platform", "cpu_count"} <= set(manifest["host"])
    assert manifest["model"]["file_sha256"] == "f" * 64 and manifest["model"]["weights_sha256"] == "w" * 64
    assert manifest["data"]["sha256"] and len(manifest["data"]["files"]) == 15
    assert manifest["config"]["train"]["epochs"] == 3 and manifest["config"]["report"]["seed"] == 9
    assert manifest["config"]["gates"]["min_accuracy"] == 0.9
    assert manifest["seed"] == {"train": 7, "report": 9}
    assert (manifest["started_at"], manifest["finished_at"]) == ("2026-01-02T03:04:05+00:00", "2026-01-02T03:05:37.500+00:00")
    assert manifest["duration_seconds"] == 92.5
    assert manifest["gates"][0]["passed"] and manifest["gates_passed"] is True
    json.dumps(manifest)


def test_manifest_for_an_in_memory_model_and_a_failed_run(tmp_path):
    identity = ModelIdentity("in-memory model 'net'", "net", None, None, "w" * 64)
    manifest = _manifest(tmp_path, model=identity, data=None, gates=(), outcome=outcome_for(error=ValueError("boom")))
    assert manifest["model"]["file"] is None and manifest["model"]["file_sha256"] is None
    assert manifest["model"]["file_note"] == IN_MEMORY_NOTE
    assert manifest["data"] is None and manifest["gates_passed"] is None
    assert manifest["outcome"] == "error: ValueError: boom"


def test_outcome_names():
    passed, failed = GateResult("a", 0.5, 0.6, True, ""), GateResult("b", 0.5, 0.4, False, "")
    assert outcome_for([passed]) == "passed"
    assert outcome_for([passed, failed]) == "failed gates"
    assert outcome_for([passed], KeyboardInterrupt()).startswith("error: KeyboardInterrupt")


def test_write_manifest_is_atomic_json(tmp_path):
    manifest = _manifest(tmp_path)
    path = write_manifest(tmp_path / "manifest.json", manifest)
    assert json.loads(path.read_text(encoding="utf-8")) == manifest
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_manifest_for_run_hashes_the_model_file_and_weights(tmp_path):
    model = _tiny_model()
    model.save(tmp_path / "model.keras")
    (tmp_path / "metrics.json").write_text("{}", encoding="utf-8")
    data = SimpleNamespace(class_names=CLASSES)
    results = SimpleNamespace(
        model=model, model_path=tmp_path / "model.keras", model_source="trained in this run", data=data,
        preprocessing=Preprocessing(8, 8), train_config=None, report_config=ReportConfig(),
        command_line="octreport run", started_at="2026-01-02T03:04:05+00:00", input_scale=None, model_registry=None,
        visuals=SimpleNamespace(filters=()),
    )
    manifest = manifest_for_run(
        results, finished_at="2026-01-02T03:04:15+00:00", outcome="passed", fingerprint=None,
        train_config=TrainConfig(seed=3), artifacts=[tmp_path / "metrics.json", tmp_path / "report.pdf"],
    )
    assert manifest["model"]["file_sha256"] == hashlib.sha256((tmp_path / "model.keras").read_bytes()).hexdigest()
    assert manifest["model"]["weights_sha256"] == sha256_weights(model)
    assert manifest["artifacts"] == {"metrics.json": hashlib.sha256(b"{}").hexdigest()}  # report.pdf does not exist
    assert manifest["seed"]["train"] == 3 and manifest["duration_seconds"] == 10
    assert manifest["cache"] == {"folder": str(default_cache_dir()), "parts": {}}
