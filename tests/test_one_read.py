"""One read per image: a report opens each image file once for its bytes (and once before, to peek
at its first and last bytes), and those bytes give its hash, its facts and the model's input."""

from __future__ import annotations

import ast
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import write_class_folders
from octreport.data.files import FileReads
from octreport.data.image_facts import collect_image_facts
from octreport.data.layout import scan_dataset
from octreport.data.preprocessing import Preprocessing

PACKAGE = Path(__file__).resolve().parent.parent / "octreport"

_OPENED: list[str] = []
_WATCHING: list[Path] = []


def _count_opens(event: str, args: tuple) -> None:
    if event == "open" and _WATCHING and isinstance(args[0], (str, Path)):
        path = str(args[0])
        if path.startswith(str(_WATCHING[0])):
            _OPENED.append(path)


sys.addaudithook(_count_opens)  # audit hooks cannot be removed: it counts only while a test watches


@pytest.fixture
def opened():
    """Every file Python opens under the folder the test then appends to the list (a Counter)."""
    _OPENED.clear()
    yield _WATCHING
    _WATCHING.clear()


def test_a_report_opens_each_image_once_for_its_bytes(conv_model, tmp_path, opened):
    import octreport

    data = write_class_folders(tmp_path / "data", patients=3, per_patient=2, size=(48, 48))
    opened.append(data)
    outcome = octreport.make_report(conv_model, data, tmp_path / "out", images_per_class=1, formats=("html",),
                                    errors_per_cell=0, filter_views=("kernels",), heatmap_checks=False,
                                    bootstrap_resamples=100, maps_per_layer=2, filters_per_layer=2)
    _WATCHING.clear()
    images = sorted(str(p) for p in data.rglob("*.jpeg"))
    counts = Counter(_OPENED)
    metrics = json.loads(outcome.metrics_path.read_text())
    shown = {str(Path(s["path"])) for s in metrics["shown_images"]}
    assert len(shown) == 4 and set(counts) == set(images)
    # Each file: one peek before the run (is it whole?) and one read; a shown image is read again
    # to be drawn. Before issue 28, the hash took one more read of each (and TensorFlow two more).
    assert {p: counts[p] for p in images} == {p: 3 if p in shown else 2 for p in images}

    manifest = json.loads(outcome.manifest_path.read_text())
    by_path = {f["path"]: f for f in manifest["data"]["files"]}
    for path in images:
        record = by_path[str(Path(path).relative_to(data))]
        content = Path(path).read_bytes()
        assert record["sha256"] == hashlib.sha256(content).hexdigest() and record["size"] == len(content)


def test_a_training_run_opens_each_image_once_for_its_bytes(tmp_path, opened, monkeypatch):
    import octreport
    from octreport.config import TrainConfig
    from octreport.data import pipeline

    # TensorFlow's own file reader (tf.io.read_file, which the audit hook below cannot see) is
    # built only where decode_and_resize is traced: a run must never trace it.
    traced = []
    monkeypatch.setattr(pipeline, "decode_and_resize", lambda *args, **kwargs: traced.append(args))
    data = write_class_folders(tmp_path / "data", patients=8, per_patient=2, size=(48, 48))
    opened.append(data)
    train = TrainConfig(epochs=2, preprocessing=Preprocessing(16, 16, 1), early_stopping_patience=1)
    outcome = octreport.make_report(None, data, tmp_path / "out", train=train, images_per_class=1, formats=("html",),
                                    errors_per_cell=0, filter_views=("kernels",), heatmap_checks=False,
                                    bootstrap_resamples=100, maps_per_layer=2, filters_per_layer=2)
    _WATCHING.clear()
    assert traced == []
    images = sorted(str(p) for p in data.rglob("*.jpeg"))
    counts = Counter(_OPENED)
    shown = {str(Path(s["path"])) for s in json.loads(outcome.metrics_path.read_text())["shown_images"]}
    # One peek before the run and one read, whether the image is trained on (two epochs, the
    # validation predictions and the training profile from the decode cache), validated on or
    # evaluated; a shown image is read once more to be drawn.
    assert {p: counts[p] for p in images} == {p: 3 if p in shown else 2 for p in images}
    manifest = json.loads(outcome.manifest_path.read_text())
    assert {f["path"] for f in manifest["data"]["files"]} == {str(Path(p).relative_to(data)) for p in images}
    for record in manifest["data"]["files"]:
        assert record["sha256"] == hashlib.sha256((data / record["path"]).read_bytes()).hexdigest()
    sidecar = json.loads((outcome.run_dir / "model.octreport.json").read_text())
    trained_on = sum(json.loads(outcome.metrics_path.read_text())["data"]["counts"]["train"].values())
    assert sidecar["training_profile"]["n_images"] == trained_on and sidecar["training_profile"]["undecoded"] == 0


def test_the_decode_cache_gives_the_facts_of_their_own_pass_in_the_shuffled_order_training_used(tmp_path):
    from octreport.data.image_facts import collect_image_facts
    from octreport.data.pipeline import cache_order, fill_decode_cache, image_dataset

    data = write_class_folders(tmp_path / "data", patients=4, per_patient=3, size=(40, 24))
    items = list(scan_dataset(data).splits["all"])
    preprocessing = Preprocessing(16, 16, 1)
    facts, digests = fill_decode_cache(items, preprocessing, tmp_path / "cache", shuffle_seed=3)
    alone = collect_image_facts([item.path for item in items])
    for name in ("width", "height", "file_size", "mean_intensity", "phash", "decoded", "channels",
                 "intensity_percentiles"):
        np.testing.assert_array_equal(getattr(facts, name), getattr(alone, name), err_msg=name)
    assert set(digests) == {item.path for item in items}
    # The cache is read, not the files: the stream works with the files gone, in the shuffled order.
    for item in items:
        item.path.unlink()
    cached = image_dataset(items, preprocessing, 64, cache_file=tmp_path / "cache", with_index=True)
    (indices,) = [batch[2].numpy() for batch in cached]
    assert indices.tolist() == cache_order(len(items), 3).tolist() != list(range(len(items)))


def test_the_evaluation_pass_gives_the_same_facts_as_their_own_pass(conv_model, tmp_path):
    import keras

    from octreport.data.pipeline import image_dataset
    from octreport.engine.layer_health import predict_with_layer_health
    from octreport.engine.layers import discover_conv_layers
    from octreport.evaluation.predict import evaluate_files

    data = write_class_folders(tmp_path / "data", patients=2, per_patient=2, size=(40, 24))
    (data / "CNV" / "CNV-1000-9.jpeg").write_bytes(b"\xff\xd8\xff broken")  # read, hashed, not decoded
    items = scan_dataset(data).splits["all"]
    model = keras.models.load_model(conv_model)
    preprocessing = Preprocessing(16, 16, 1)
    layers = discover_conv_layers(model)
    kept = [i for i in items if i.path.name != "CNV-1000-9.jpeg"]
    # The same compiled step, first on batches that carry nothing past it (TensorFlow's reader).
    reference = predict_with_layer_health(model, layers, image_dataset(kept, preprocessing, 4, with_index=True))
    evaluated = evaluate_files(model, layers, items, preprocessing, batch_size=4)
    alone = collect_image_facts([item.path for item in items])
    for name in ("width", "height", "file_size", "mean_intensity", "phash", "decoded", "channels",
                 "intensity_percentiles"):
        np.testing.assert_array_equal(getattr(evaluated.facts, name), getattr(alone, name), err_msg=name)
    broken = [i for i, item in enumerate(items) if item.path.name == "CNV-1000-9.jpeg"]
    assert not evaluated.facts.decoded[broken].any() and evaluated.facts.decoded.sum() == len(items) - 1
    assert [s.path.name for s in evaluated.predictions.skipped] == ["CNV-1000-9.jpeg"]
    assert set(evaluated.digests) == {item.path for item in items}  # the broken file was read and hashed too
    np.testing.assert_allclose(evaluated.predictions.probabilities, reference.probabilities, rtol=1e-5, atol=1e-6)
    for mine, theirs in zip(evaluated.health, reference.health, strict=True):
        assert mine.images == theirs.images == len(kept)
        np.testing.assert_allclose(mine.channel_max, theirs.channel_max, rtol=1e-5)


def test_a_failure_of_what_else_a_read_gives_does_not_end_the_stream(tmp_path, caplog):
    data = write_class_folders(tmp_path / "data", patients=3, per_patient=2, size=(24, 24))
    paths = sorted(data.rglob("*.jpeg"))

    def on_read(path, raw):
        if path == paths[1]:
            raise RuntimeError("a header parser's bug")

    reads = FileReads(paths, on_read)
    assert [int(index) for _, index in reads.dataset().as_numpy_iterator()] == list(range(len(paths)))
    assert "header parser's bug" in caplog.text and set(reads.digests()) == set(paths)


def test_a_file_that_cannot_be_read_is_left_out_with_a_warning(tmp_path, caplog):
    paths = [tmp_path / "gone.jpeg"]
    reads = FileReads(paths)
    assert list(reads.dataset().as_numpy_iterator()) == []
    assert "cannot be read" in caplog.text and reads.digests() == {}


def _read_file_calls() -> list[str]:
    """``module:function`` of every call of ``tf.io.read_file`` / ``Image.open`` / ``sha256_file``
    in the package: readers of image files that do not go through octreport.data.files."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
            for node in _own_nodes(function):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
                    name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
                    if name in ("read_file", "sha256_file") or (name == "open" and isinstance(node.func, ast.Attribute)
                                                                and getattr(node.func.value, "id", "") == "Image"):
                        found.append(f"{path.relative_to(PACKAGE).with_suffix('')}:{function.name}:{name}")
    return sorted(set(found))


def _own_nodes(function: ast.FunctionDef):
    """The nodes of ``function`` outside the functions defined in it."""
    stack = [node for node in function.body if not isinstance(node, ast.FunctionDef)]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(child for child in ast.iter_child_nodes(node) if not isinstance(child, ast.FunctionDef))


def test_image_files_are_read_only_where_the_design_says():
    assert _read_file_calls() == [
        "audit/manifest:hash_artifacts:sha256_file",  # the run's own files and the model file
        "audit/manifest:identify_model:sha256_file",
        "audit/verify:check_folder_files:sha256_file",  # verify: a past run's files and model
        "audit/verify:check_model_file:sha256_file",
        "data/fingerprint:describe:sha256_file",  # only files the run has not read (verify, tests)
        "data/pipeline:decode_and_resize:read_file",  # the uncached stream: predictions that audit nothing
        "engine/visuals:_model_scale:open",  # --occlusion: the header of a shown image
    ]


QUICK = dict(images_per_class=1, formats=("html",), errors_per_cell=0, filter_views=("kernels",), heatmap_checks=False,
             bootstrap_resamples=100, maps_per_layer=2, filters_per_layer=2, class_names=("CNV", "DME", "DRUSEN", "NORMAL"))


def _shown(outcome) -> set[str]:
    """The images a labelled report shows (read once more to be drawn)."""
    return {str(Path(s["path"])) for s in json.loads(outcome.metrics_path.read_text())["shown_images"]}


def _shown_in_screening(outcome, files: list[str]) -> set[str]:
    """The scans a screening page shows: named above its data section (no shown_images in its metrics.json)."""
    html = (outcome.run_dir / "report.html").read_text()
    return {p for p in files if Path(p).name in html.split('id="data"')[0]}


def test_a_screening_run_opens_each_scan_once_for_its_bytes(conv_model, tmp_path, opened):
    import octreport
    from conftest import write_image

    data = tmp_path / "scans"
    for i in range(5):
        write_image(data / f"scan-{i}.jpeg", size=(40, 40), seed=i)
    opened.append(data)
    outcome = octreport.make_report(conv_model, data, tmp_path / "out", **QUICK)
    _WATCHING.clear()
    counts = Counter(_OPENED)
    images = sorted(str(p) for p in data.glob("*.jpeg"))
    shown = _shown_in_screening(outcome, images)
    assert set(counts) == set(images) and 1 <= len(shown) < len(images)
    # One peek before the run, one read for hash, facts and prediction; a shown scan is read again
    # to be drawn. Before, image facts, TensorFlow's reader and the fingerprint each read it.
    assert {p: counts[p] for p in images} == {p: 3 if p in shown else 2 for p in images}
    manifest = json.loads(outcome.manifest_path.read_text())
    for record in manifest["data"]["files"]:
        content = (data / record["path"]).read_bytes()
        assert record["sha256"] == hashlib.sha256(content).hexdigest()


def _dicom_scans(folder: Path, n: int = 4) -> list[str]:
    from dicom_files import gradient, write_dicom

    return sorted(str(write_dicom(folder / f"scan-{i}.dcm", np.roll(gradient(), 3 * i, axis=1),
                                  patient_id=f"ID-{i % 2}")) for i in range(n))


def test_a_dicom_screening_run_opens_each_file_twice_and_takes_its_header_from_the_one_read(conv_model, tmp_path,
                                                                                            opened):
    import octreport

    data = tmp_path / "dicom"
    files = _dicom_scans(data)
    opened.append(data)
    outcome = octreport.make_report(conv_model, data, tmp_path / "out", **QUICK)
    _WATCHING.clear()
    counts = Counter(_OPENED)
    shown = _shown_in_screening(outcome, files)
    assert set(counts) == set(files) and shown
    # One header-only parse before the run (is it a B-scan a decoder reads?), one read for the hash,
    # facts, prediction and header facts (patient, device); a shown scan is read again to be drawn.
    # Before: the check decoded the whole file, the header tables opened it twice, then the read.
    assert {p: counts[p] for p in files} == {p: 3 if p in shown else 2 for p in files}
    metrics = json.loads(outcome.metrics_path.read_text())
    assert metrics["data_shift"]["evaluated_profile"]["devices"] == {"Heidelberg Engineering Spectralis": 4}
    assert metrics["data_audit"]["patients_per_split"] == {"test": 2}  # two PatientIDs, from the same bytes
    manifest = json.loads(outcome.manifest_path.read_text())
    assert len(manifest["data"]["files"]) == 4


def test_a_labelled_dicom_report_opens_each_file_twice(conv_model, tmp_path, opened):
    import octreport

    data = tmp_path / "dicom"
    files = [f for c in ("CNV", "DME", "DRUSEN", "NORMAL") for f in _dicom_scans(data / c, 1)]
    opened.append(data)
    outcome = octreport.make_report(conv_model, data, tmp_path / "out", **QUICK)
    _WATCHING.clear()
    counts = Counter(_OPENED)
    shown = _shown(outcome)
    assert set(counts) == set(files)
    # The header-only check before the run, then the one read (hash, facts, prediction, and the
    # header's patient and device); a shown scan once more to be drawn. Before: 5 and 4.
    assert {p: counts[p] for p in files} == {p: 3 if p in shown else 2 for p in files}
    metrics = json.loads(outcome.metrics_path.read_text())
    assert metrics["data_audit"]["patient_source"].startswith("DICOM PatientID")
