"""What a run folder becomes in MLflow (read from its metrics.json and manifest.json, no server),
the [mlflow] table of the configuration file, and the MLflow options without the extra installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

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


def _copy_of_run(run_dir, target, edit_manifest=None, edit_metrics=None):
    import shutil

    shutil.copytree(run_dir, target, ignore=shutil.ignore_patterns("*.keras"))
    for name, edit in (("manifest.json", edit_manifest), ("metrics.json", edit_metrics)):
        if edit is not None:
            document = json.loads((target / name).read_text())
            edit(document)
            (target / name).write_text(json.dumps(document))
    return target


def test_the_dicom_salt_and_credentials_stay_in_the_run_folder(audited_run, tmp_path):
    def salted(manifest):
        manifest["config"]["report"]["dicom_salt"] = "s3cret-salt"
        manifest["command_line"] = ("octreport report --dicom-salt s3cret-salt --mlflow-tracking-uri "
                                    "https://me:pa55word@mlflow.example.org")

    run = _copy_of_run(audited_run[0], tmp_path / "run", salted)
    before = (run / "manifest.json").read_bytes()
    record = read_run_folder(run)
    assert "report.dicom_salt" not in record.params and record.params["report.dicom_salt_set"] == "true"
    assert not any("s3cret" in value for value in record.params.values())
    uploaded = record.replaced_artifacts["manifest.json"]
    assert b"s3cret" not in uploaded and b"pa55word" not in uploaded
    manifest = json.loads(uploaded)
    assert manifest["config"]["report"]["dicom_salt"] == "(set; not logged)"
    assert manifest["command_line"].endswith("--dicom-salt '***' --mlflow-tracking-uri https://mlflow.example.org")
    assert (run / "manifest.json").read_bytes() == before  # the run folder is never written
    plain = read_run_folder(audited_run[0])
    assert plain.params["report.dicom_salt_set"] == "false" and plain.replaced_artifacts is None


def test_the_uploaded_pdf_embeds_the_masked_manifest(audited_run, tmp_path):
    from octreport.audit.mlflow_tracking import _log_artifacts
    from octreport.audit.pdf_attachments import read_attachments

    def salted(manifest):
        manifest["config"]["report"]["dicom_salt"] = "s3cret-salt"

    run = _copy_of_run(audited_run[0], tmp_path / "run", salted)
    pdf_before = (run / "report.pdf").read_bytes()
    record = read_run_folder(run)
    uploaded = {}

    class Client:  # what MlflowClient.log_artifact and log_dict receive
        def log_artifact(self, run_id, path):
            uploaded[Path(path).name] = Path(path).read_bytes()

        def log_dict(self, run_id, value, name):
            uploaded[name] = json.dumps(value).encode()

    _log_artifacts(Client(), "RUN", record)
    assert {"report.pdf", "manifest.json", "metrics.json"} <= set(uploaded)
    assert not any(b"s3cret" in content for content in uploaded.values())
    (tmp_path / "uploaded.pdf").write_bytes(uploaded["report.pdf"])
    attached = read_attachments(tmp_path / "uploaded.pdf")
    assert attached["manifest.json"] == uploaded["manifest.json"]
    assert attached["metrics.json"] == (run / "metrics.json").read_bytes()
    assert (run / "report.pdf").read_bytes() == pdf_before


def test_credentials_are_taken_out_of_uris_and_command_lines(monkeypatch):
    from octreport.audit.mlflow_record import masked_command_line, without_credentials
    from octreport.cli import _command_line

    assert without_credentials("https://user:pw@host:5000/x and http://tok@h") == "https://host:5000/x and http://h"
    assert without_credentials("models:/oct@candidate me@example.org") == "models:/oct@candidate me@example.org"
    assert masked_command_line("octreport run --dicom-salt=abc") == "octreport run '--dicom-salt=***'"
    monkeypatch.setattr(sys, "argv", ["octreport", "report", "--mlflow-tracking-uri", "https://u:p@mlflow.example.org"])
    assert _command_line() == "octreport report --mlflow-tracking-uri https://mlflow.example.org"


@pytest.mark.parametrize("edit", [
    lambda m: m["classification"]["per_class"][0].pop("name"),
    lambda m: m["classification"].__setitem__("per_class", {"CNV": 1}),
    lambda m: m["layer_health"][0].__setitem__("dead_filters", "many"),
    lambda m: m["gates"]["results"].__setitem__(0, ["a list"]),
    lambda m: m.__setitem__("intervals", [1, 2]),
])
def test_a_run_folder_not_shaped_as_octreport_writes_it_is_a_clear_error(audited_run, tmp_path, edit):
    run = _copy_of_run(audited_run[0], tmp_path / "run", edit_metrics=edit)
    with pytest.raises(ConfigError, match="not shaped as octreport writes it"):
        read_run_folder(run)
    (run / "metrics.json").write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(ConfigError, match="nests deeper"):
        read_run_folder(run)
    (run / "metrics.json").write_text("[1]")
    with pytest.raises(ConfigError, match="holds a list, expected an object"):
        read_run_folder(run)


def test_every_audit_tag_is_written_on_every_audit(audited_run, tmp_path):
    from dataclasses import replace

    from octreport.audit.mlflow_tracking import audit_tags

    record = read_run_folder(audited_run[0])
    tags = audit_tags(record, "RUN")
    assert tags["octreport.kind"] == "run" and tags["octreport.gates"] == "passed"
    assert tags["octreport.class_subset"] == "no"
    bare = replace(record, metrics={}, gates_passed=None, evaluated_classes=("CNV", "NORMAL"), kind="report")
    tags = audit_tags(bare, "RUN")
    assert set(tags) == set(audit_tags(record, "RUN"))  # the same keys whatever the audit had: none left stale
    assert tags["octreport.accuracy"] == tags["octreport.accuracy_low"] == "n/a"
    assert tags["octreport.gates"] == "none"
    assert tags["octreport.evaluated_classes"] == "CNV,NORMAL"
    assert tags["octreport.class_subset"] == f"yes: 2 of the model's {len(record.all_classes)} classes"


def test_the_model_cache_is_octreports_cache_folder(tmp_path, monkeypatch):
    from octreport.audit.mlflow_models import cache_root

    monkeypatch.setenv("OCTREPORT_CACHE_DIR", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env" / "mlflow"
    assert cache_root(tmp_path / "given") == tmp_path / "given" / "mlflow"


def test_a_version_another_process_fetched_first_is_used_and_an_unwritable_cache_named(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    import mlflow.artifacts

    from octreport.audit import mlflow_models

    folder = tmp_path / "cache" / "models" / "oct" / "1"

    def the_other_process_wins(artifact_uri, dst_path, tracking_uri):
        (Path(dst_path) / "mine.keras").write_bytes(b"mine")
        folder.mkdir(parents=True)
        (folder / "theirs.keras").write_bytes(b"theirs")

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", the_other_process_wins)
    mlflow_models._download("models:/oct/1", folder, "http://server", "http://server")
    assert sorted(p.name for p in folder.iterdir()) == ["theirs.keras"]
    assert [p.name for p in folder.parent.iterdir()] == ["1"]  # no scratch folder left

    import errno

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    locked = tmp_path / "locked" / "models" / "oct" / "1"
    with monkeypatch.context() as patch:
        patch.setattr(mlflow_models.tempfile, "mkdtemp", read_only)
        with pytest.raises(ConfigError, match=f"model cache folder {locked.parent}.* cannot be written.*--cache-dir"):
            mlflow_models._download("models:/oct/1", locked, "http://s", "http://s")
    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", read_only)  # the disk fills while downloading
    with pytest.raises(ConfigError, match="Read-only file system"):
        mlflow_models._download("models:/oct/1", locked, "http://s", "http://s")


def test_verify_says_not_checked_when_the_registry_model_cannot_be_fetched(monkeypatch):
    from octreport.audit import mlflow_models
    from octreport.audit.verify import find_model
    from octreport.errors import TrackingUnavailable

    asked = []

    def down(uri, tracking_uri=None, cache_dir=None):
        asked.append(tracking_uri)
        raise TrackingUnavailable("the server could not be reached")

    monkeypatch.setattr(mlflow_models, "fetch_model", down)
    manifest = {"model": {"file": "/gone/model.keras", "source": "models:/oct/1",
                          "registry": {"pinned_uri": "models:/oct/1", "tracking_uri": "https://recorded"}}}
    found, how = find_model(Path("/nowhere"), manifest, None)
    assert found is None and "could not be fetched again" in how and "https://recorded" in how
    find_model(Path("/nowhere"), manifest, None, "https://given")
    assert asked == ["https://recorded", "https://given"]


@pytest.mark.parametrize("store", ["file:///{tmp}/mlruns", "bogus://nowhere"])
def test_a_store_mlflow_refuses_is_a_warning_and_exit_9_not_a_traceback(audited_run, tmp_path, store):
    """MLflow 3 refuses a file store (and an unknown scheme) when the client is made: the run folder
    stays as it is and the catch-up command is named, as for a server that is down."""
    run_dir, _ = audited_run
    uri = store.format(tmp=tmp_path)
    result = CliRunner().invoke(main, ["publish", str(run_dir), "--mlflow", "--mlflow-tracking-uri", uri])
    assert result.exit_code == 9, result.output
    assert "Traceback" not in result.output and "octreport publish" in result.output
