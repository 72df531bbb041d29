"""What a run folder becomes in MLflow (read from its metrics.json and manifest.json, no server),
the [mlflow] table of the configuration file, and the MLflow options without the extra installed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, write_class_folders
from octreport.audit.config_file import load_config_file_and_card
from octreport.audit.mlflow_record import flatten_params, metric_name, read_run_folder
from octreport.cli import main
from octreport.errors import ConfigError


def test_a_run_folder_as_an_mlflow_run(audited_run):
    run_dir, _ = audited_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    record = read_run_folder(run_dir)

    assert record.run_name == run_dir.name
    intervals, calibration = metrics["intervals"], metrics["calibration"]
    assert record.metrics["accuracy"] == metrics["classification"]["accuracy"]
    assert record.metrics["accuracy.low"] == intervals["accuracy"]["low"]
    assert record.metrics["accuracy.high"] == intervals["accuracy"]["high"]
    assert record.metrics["macro.f1.low"] == intervals["macro"]["f1"]["low"]
    for name in metrics["data"]["class_names"]:
        assert record.metrics[f"per_class.{name}.recall.low"] == intervals["per_class"][name]["recall"]["low"]
        assert f"per_class.{name}.precision.high" in record.metrics
    for name in ("urgent_sensitivity", "urgent_specificity", "weighted_error"):
        assert record.metrics[f"referral.{name}"] == metrics["referral"][name]
        assert record.metrics[f"referral.{name}.low"] == intervals["referral"][name]["low"]
    assert record.metrics["calibration.ece"] == calibration["ece"]
    assert record.metrics["calibration.brier"] == calibration["brier"]
    assert record.metrics["heatmap.gradcam.deletion_area"] == metrics["heatmap_checks"]["faithfulness"]["mean"]["gradcam"]["deletion_area"]
    assert record.metrics["layer_health.dead_filters"] == sum(row["dead_filters"] for row in metrics["layer_health"])
    assert record.metrics["data_audit.leaked_patients"] == metrics["data_audit"]["leaked_patients"]

    assert record.step_metrics["train.loss"] == tuple(metrics["training"]["history"]["loss"])
    assert record.params["train.epochs"] == str(manifest["config"]["train"]["epochs"])
    assert record.params["report.formats"] == '["html", "pdf"]'
    assert record.tags["octreport.version"] == manifest["versions"]["octreport"]
    assert record.tags["octreport.run_folder"] == str(run_dir)
    assert record.tags["octreport.model_weights_sha256"] == manifest["model"]["weights_sha256"]
    assert record.tags["octreport.data_sha256"] == manifest["data"]["sha256"]
    assert record.tags["octreport.gate.above chance"] == "passed"
    assert record.tags["octreport.exit_code"] == "0"
    assert {p.name for p in record.artifacts} == {"report.pdf", "report.html", "metrics.json", "manifest.json", "predictions.csv"}
    assert record.model_file == run_dir / "model.keras" and record.registry_model is None


def test_params_are_flattened_and_names_kept_to_what_mlflow_takes():
    assert flatten_params({"train": {"lr": 0.001, "prep": {"height": 32}, "note": None}, "s": "x"}) == {
        "train.lr": "0.001", "train.prep.height": "32", "train.note": "null", "s": "x"}
    assert metric_name("per_class.CNV+1.recall") == "per_class.CNV_1.recall"
    long = flatten_params({"report": {"image_paths": ["x" * 100] * 100}})["report.image_paths"]
    assert len(long) == 6000 and long.endswith("...")


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="not a finished octreport run folder"):
        read_run_folder(tmp_path)


def test_the_mlflow_table_of_the_configuration_file(tmp_path):
    path = tmp_path / "octreport.toml"
    path.write_text('[mlflow]\nlog = true\nexperiment = "nightly"\n\n[report]\nmlflow-experiment = "other"\n')
    default_map, _ = load_config_file_and_card(path, main)
    assert default_map["run"]["mlflow"] is True and default_map["audit-data"]["mlflow_experiment"] == "nightly"
    assert default_map["report"]["mlflow_experiment"] == "other"  # a command's table wins
    path.write_text("[mlflow]\nlogging = true\n")
    with pytest.raises(ConfigError, match="unknown key 'logging' in \\[mlflow\\].*experiment"):
        load_config_file_and_card(path, main)


BLOCK_MLFLOW = "import sys; sys.modules['mlflow'] = None; from octreport.cli import main; main()"


@pytest.mark.parametrize("extra", [["--mlflow"], ["--model", "models:/oct/1"]])
def test_without_the_extra_the_mlflow_options_are_refused_before_any_work(tmp_path, extra):
    data = write_class_folders(tmp_path / "data", patients=1, per_patient=1)
    command = ["report", "--model", str(tmp_path / "m.keras"), "--data", str(data), "--out", str(tmp_path / "runs")]
    done = subprocess.run([sys.executable, "-c", BLOCK_MLFLOW, *command, *extra], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2, done.stderr
    assert 'pip install "octreport[mlflow]"' in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()
