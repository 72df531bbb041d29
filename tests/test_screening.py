"""Unlabelled scans: the screening report (what the model would do with them, no accuracy), and
``--fail-on-shift`` as a gate, labelled or not."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import OCT_CLASSES, write_class_folders, write_image

from octreport.cli import main
from octreport.evaluation.screening import screen_predictions

QUICK = ["--format", "html", "--images-per-class", "1", "--maps-per-layer", "2", "--filters-per-layer", "2",
         "--filter-views", "kernels", "--errors-per-cell", "0", "--no-heatmap-checks", "--bootstrap-resamples", "100"]


def test_screening_counts_predictions_referrals_and_deferrals():
    probabilities = np.array([
        [0.95, 0.02, 0.02, 0.01],  # CNV, sure
        [0.10, 0.60, 0.20, 0.10],  # DME, 0.6
        [0.05, 0.05, 0.10, 0.80],  # NORMAL, 0.8
        [0.30, 0.20, 0.45, 0.05],  # DRUSEN, 0.45
    ])
    screening = screen_predictions(probabilities, OCT_CLASSES)
    assert screening.predicted_counts == (1, 1, 1, 1)
    assert dict(screening.referral_counts) == {"urgent referral": 2, "routine referral": 1, "observation": 1}
    assert [(d.threshold, d.count) for d in screening.deferrals] == [(0.5, 1), (0.7, 2), (0.9, 3)]
    assert screening.confidence_counts.tolist() == [0, 0, 0, 0, 1, 0, 1, 0, 1, 1]
    assert screening.median_confidence == pytest.approx((0.6 + 0.8) / 2)
    assert screen_predictions(probabilities[:, :2] / probabilities[:, :2].sum(1, keepdims=True), "ab").referral_counts is None


@pytest.fixture(scope="module")
def profiled_model(tmp_path_factory):
    """A tiny model (16x16x1 in, the four OCT classes out) with a sidecar that names its classes and
    records the acquisition profile of 32x32 grayscale JPEG training scans."""
    import keras

    from octreport.data.acquisition_profile import profile_from_facts
    from octreport.data.image_facts import collect_image_facts
    from octreport.data.preprocessing import Preprocessing
    from octreport.models.io import save_model
    from octreport.models.metadata import ModelMetadata

    base = tmp_path_factory.mktemp("profiled")
    paths = [write_image(base / "train" / f"scan-{i}.jpeg", seed=i) for i in range(12)]
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))
    path = base / "model.keras"
    save_model(model, path, ModelMetadata(OCT_CLASSES, Preprocessing(16, 16, 1),
                                          training_profile=profile_from_facts(collect_image_facts(paths))))
    return path


def _scans(folder, n=6, size=(32, 32)):
    for i in range(n):
        write_image(folder / f"scan-{i}.jpeg", size=size, seed=100 + i)
    return folder


def _report(model, data, out, *extra):
    return CliRunner().invoke(main, ["report", "--model", str(model), "--data", str(data), "--out", str(out), *QUICK, *extra])


def test_a_folder_of_unlabelled_scans_gives_a_screening_report(profiled_model, tmp_path):
    data = _scans(tmp_path / "scans")
    (data / "notes.txt").write_text("not a scan")
    result = _report(profiled_model, data, tmp_path / "runs", "--fail-on-shift")
    assert result.exit_code == 0, result.output  # the training kind of scan: no shift
    assert "no labels, no accuracy" in result.output
    run = (tmp_path / "runs" / "latest").resolve()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["kind"] == "screening" and "classification" not in metrics
    assert metrics["screening"]["labels"] is None and metrics["screening"]["n_images"] == 6
    assert sum(metrics["screening"]["predicted_counts"].values()) == 6
    assert sum(metrics["screening"]["referral_counts"].values()) == 6
    assert metrics["data_shift"]["material"] is False
    assert metrics["gates"]["results"][0]["name"] == "data shift" and metrics["gates"]["passed"]
    with open(run / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and all(row["true_class"] == "" for row in rows)
    assert {row["predicted_class"] for row in rows} <= set(OCT_CLASSES)
    html = (run / "report.html").read_text()
    assert "These scans have no labels: this report claims no accuracy" in html
    for heading in ("What the model would do with these scans", "Data shift", "Feature maps", "Where the model looks"):
        assert heading in html
    assert "Gates" in html and "accuracy</" not in html
    verify = CliRunner().invoke(main, ["verify", str(run)])
    assert verify.exit_code == 0, verify.output


def test_fail_on_shift_fails_scans_of_another_size_labelled_or_not(profiled_model, tmp_path):
    wide = _scans(tmp_path / "wide", size=(24, 64))
    result = _report(profiled_model, wide, tmp_path / "runs", "--fail-on-shift")
    assert result.exit_code == 5, result.output
    assert "the scans differ materially from the training scans" in result.output
    labelled = write_class_folders(tmp_path / "labelled", OCT_CLASSES, patients=1, per_patient=1, size=(24, 64))
    result = _report(profiled_model, labelled, tmp_path / "runs", "--fail-on-shift")
    assert result.exit_code == 5 and "differ materially" in result.output, result.output
    assert (tmp_path / "runs" / "latest" / "report.html").is_file()  # a gate: the report is still written


def test_unlabelled_option_screens_class_folders_too(profiled_model, tmp_path):
    data = write_class_folders(tmp_path / "graded", ("DME", "NORMAL"), patients=2, per_patient=1)
    result = _report(profiled_model, data, tmp_path / "runs", "--unlabelled")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "runs" / "latest" / "metrics.json").read_text())
    assert metrics["kind"] == "screening" and metrics["screening"]["n_images"] == 4


def test_a_model_that_cannot_name_its_classes_is_refused_before_a_run_folder(conv_model, tmp_path):
    data = _scans(tmp_path / "scans", n=2)
    result = _report(conv_model, data, tmp_path / "runs")
    assert result.exit_code == 4 and "Give the model's classes in output order with --class-names" in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    result = _report(conv_model, data, tmp_path / "runs", "--class-map", "healthy=NORMAL", "--class-names",
                     ",".join(OCT_CLASSES))
    assert result.exit_code == 2 and "unlabelled scans are read without them" in result.output


def test_images_named_by_image_and_sentinels_are_the_shown_scans(profiled_model, tmp_path):
    data = _scans(tmp_path / "scans", n=4)
    chosen = write_image(tmp_path / "elsewhere" / "chosen-scan.jpeg", seed=7)
    result = _report(profiled_model, data, tmp_path / "runs", "--image", str(chosen))
    assert result.exit_code == 0, result.output
    html = (tmp_path / "runs" / "latest" / "report.html").read_text()
    assert "chosen-scan.jpeg" in html and "scan-0.jpeg" not in html
    sentinels = tmp_path / "sentinels.txt"
    sentinels.write_text("# the scans every run shows\nscan-2.jpeg\n")
    result = _report(profiled_model, data, tmp_path / "runs", "--sentinels", str(sentinels))
    assert result.exit_code == 0, result.output
    html = (tmp_path / "runs" / "latest" / "report.html").read_text()
    assert "scan-2.jpeg" in html and not any(f"scan-{i}.jpeg" in html for i in (0, 1, 3))


@pytest.mark.parametrize("option, value, named", [
    ("--compare-to", "latest", "--compare-to"),
    ("--groups", "groups.csv", "--groups"),
])
def test_options_a_screening_run_cannot_honour_are_refused_before_a_run_folder(profiled_model, tmp_path, option, value,
                                                                              named):
    data = _scans(tmp_path / "scans", n=2)
    (tmp_path / "groups.csv").write_text("file,group\nscan-0.jpeg,a\nscan-1.jpeg,b\n")
    if option == "--groups":
        value = str(tmp_path / value)
    result = _report(profiled_model, data, tmp_path / "runs", option, value)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and named in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_screening_run_over_every_frame_of_a_dicom_volume(profiled_model, tmp_path):
    from dicom_files import gradient, write_dicom

    data = tmp_path / "incoming"
    write_dicom(data / "volume.dcm", np.stack([gradient() // (k + 1) for k in range(3)]), frames=True)
    write_dicom(data / "single.dcm", gradient())
    for frames, names in (("center", ["single.dcm", "volume.dcm"]),
                          ("all", ["single.dcm", "volume.dcm#0", "volume.dcm#1", "volume.dcm#2"])):
        result = _report(profiled_model, data, tmp_path / frames, "--dicom-frames", frames)
        assert result.exit_code == 0, result.output
        run = tmp_path / frames / "latest"
        with open(run / "predictions.csv", newline="") as f:
            assert sorted(row["path"] for row in csv.DictReader(f)) == names
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["screening"]["n_images"] == len(names)
        assert sum(metrics["data_audit"]["counts"]["test"].values()) == 2  # the data audit counts files, not frames
        assert metrics["data_audit"]["exact_duplicate_groups"] == 0  # frames are not copies of their file


def test_screening_applies_a_referral_threshold_and_counts_argmax_beside():
    from octreport.evaluation.referral_rule import OVERRIDE, ReferralRule

    probabilities = np.array([
        [0.95, 0.02, 0.02, 0.01],  # CNV: urgent under both rules
        [0.20, 0.15, 0.05, 0.60],  # NORMAL by argmax; P(CNV) + P(DME) = 0.35: urgent at a 0.3 threshold
        [0.05, 0.05, 0.80, 0.10],  # DRUSEN: routine under both
        [0.30, 0.25, 0.00, 0.45],  # NORMAL by argmax, 0.55: urgent at 0.3
    ])
    screening = screen_predictions(probabilities, OCT_CLASSES, ReferralRule(threshold=0.3, source=OVERRIDE))
    assert dict(screening.referral_counts) == {"urgent referral": 3, "routine referral": 1, "observation": 0}
    assert dict(screening.argmax_referral_counts) == {"urgent referral": 1, "routine referral": 1, "observation": 2}
    entry = screening.to_dict()
    assert entry["referral_rule"]["threshold"] == 0.3 and entry["referral_rule"]["source"] == OVERRIDE
    assert entry["argmax_referral_counts"]["urgent referral"] == 1
    high = screen_predictions(probabilities, OCT_CLASSES, ReferralRule(threshold=0.9, source=OVERRIDE))
    assert dict(high.referral_counts) == {"urgent referral": 1, "routine referral": 1, "observation": 2}
    assert screen_predictions(probabilities, OCT_CLASSES).rule is None  # no rule given: argmax, as before


STORED_RULE = {"rule": "P(CNV) + P(DME) >= 0", "threshold": 0.0, "source": "validation", "target_sensitivity": 0.95,
               "split": "validation", "n_images": 150, "n_urgent": 60, "n_non_urgent": 90,
               "sensitivity": {"value": 1.0, "low": 0.94, "high": 1.0, "method": "wilson"},
               "specificity": {"value": 0.0, "low": 0.0, "high": 0.04, "method": "wilson"},
               "bandwidth_logits": 0.5, "method": "kernel-smoothed", "note": ""}


def test_a_screening_run_applies_the_models_stored_rule_and_the_override(profiled_model, tmp_path):
    import shutil

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copy(profiled_model, model_dir / "model.keras")
    sidecar = json.loads(profiled_model.with_name("model.octreport.json").read_text())
    sidecar["referral_rule"] = STORED_RULE  # threshold 0: every scan is urgent
    (model_dir / "model.octreport.json").write_text(json.dumps(sidecar))
    data = _scans(tmp_path / "scans")

    result = _report(model_dir / "model.keras", data, tmp_path / "stored")
    assert result.exit_code == 0, result.output
    run = (tmp_path / "stored" / "latest").resolve()
    screening = json.loads((run / "metrics.json").read_text())["screening"]
    assert screening["referral_rule"]["source"] == "validation" and screening["referral_rule"]["threshold"] == 0.0
    assert screening["referral_counts"]["urgent referral"] == 6
    with open(run / "predictions.csv", newline="") as f:
        argmax_urgent = sum(row["predicted_class"] in ("CNV", "DME") for row in csv.DictReader(f))
    assert screening["argmax_referral_counts"]["urgent referral"] == argmax_urgent
    html = (run / "report.html").read_text()
    assert "urgent when P(CNV) + P(DME) &gt;= 0 (chosen on the validation split)" in html
    assert "Chosen when the model was trained, on its validation split (150 scans)" in html
    assert "the predicted class alone (argmax" in html

    result = _report(model_dir / "model.keras", data, tmp_path / "override", "--referral-threshold", "1")
    assert result.exit_code == 0, result.output
    run = (tmp_path / "override" / "latest").resolve()
    metrics = json.loads((run / "metrics.json").read_text())
    rule = metrics["screening"]["referral_rule"]
    assert rule["source"] == "--referral-threshold" and rule["threshold"] == 1.0
    assert rule["note"] == "The model's stored rule (P(CNV) + P(DME) >= 0) is not used."
    assert metrics["screening"]["referral_counts"]["urgent referral"] == 0  # a tiny untrained model: never that sure
    assert json.loads((run / "manifest.json").read_text())["config"]["report"]["referral_threshold"] == 1.0
    assert "Set for this report with --referral-threshold 1" in (run / "report.html").read_text()


def test_referral_threshold_is_refused_for_a_screening_run_without_the_oct_classes(conv_model, tmp_path):
    data = _scans(tmp_path / "scans", n=2)
    result = _report(conv_model, data, tmp_path / "runs", "--class-names", "a,b,c,d", "--referral-threshold", "0.2")
    assert result.exit_code == 2 and "Error: --referral-threshold needs the four OCT classes" in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_screening_run_of_a_registry_model_keeps_its_registry_entry_in_the_manifest(profiled_model, tmp_path,
                                                                                       monkeypatch):
    from dataclasses import replace

    import octreport.pipeline.screening_run as screening_run
    from octreport.audit.gates import GateConfig
    from octreport.config import ReportConfig, TrainConfig

    registry = {"uri": "models:/oct/3", "name": "oct", "version": "3", "run_id": "abc123"}
    real = screening_run.given_model

    def from_registry(*args, **kwargs):  # as model_stage gives a models:/ model: its entry in .registry
        return replace(real(*args, **kwargs), registry=registry)

    data = _scans(tmp_path / "scans", n=2)
    config = ReportConfig(out_root=str(tmp_path / "runs"), formats=("html",), images_per_class=1, maps_per_layer=2,
                          filters_per_layer=2, filter_views=("kernels",), errors_per_cell=0, heatmap_checks=False)
    monkeypatch.setattr(screening_run, "given_model", from_registry)
    outcome = screening_run.run_screening(data_dir=data, model=profiled_model, train_config=TrainConfig(),
                                          config=config, gate_config=GateConfig(), command_line="test",
                                          started_at="2026-01-01T00:00:00Z")
    manifest = json.loads(outcome.published_paths[3].read_text())
    assert manifest["model"]["registry"] == registry
