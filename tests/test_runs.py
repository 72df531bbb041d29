"""Run folders for unattended use: unique names, atomic publish, failures and signals that leave no
half run, concurrent runs, the manifest, PDF attachments, gates and exit codes, comparing runs."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import spawn, write_learnable_kermany
from octreport.cli import main
from octreport.runfolder import LATEST, new_run_name, run_folder
from report_samples import contents_and_headings

# An HTML report that skips what these tests do not read (the filters' patches and maximisation,
# the heat-map checks, most bootstrap resamples, the errors gallery).
QUICK_REPORT = ["--format", "html", "--images-per-class", "1", "--maps-per-layer", "2", "--filters-per-layer", "2",
                "--errors-per-cell", "0", "--filter-views", "kernels", "--no-heatmap-checks", "--bootstrap-resamples", "100"]


def finished_runs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".") and not p.name.endswith(".failed"))


@pytest.fixture(scope="module")
def two_runs(audited_run, tmp_path_factory):
    """Two complete runs of the same data in one output root: the audited run (trained; a copy),
    then a report on its model that compares with it (HTML only: no test reads its PDF)."""
    run, data = audited_run
    base = tmp_path_factory.mktemp("runs")
    shutil.copytree(run, base / "out" / run.name)
    second = CliRunner().invoke(main, ["report", "--model", str(base / "out" / run.name / "model.keras"), "--data", str(data),
                                       "--out", str(base / "out"), "--images-per-class", "1", "--maps-per-layer", "4",
                                       "--compare-to", "latest", "--format", "html"])
    assert second.exit_code == 0, second.output
    return base, data


def test_run_names_sort_by_time_and_are_unique():
    now = time.time()
    names = {new_run_name(now) for _ in range(50)}
    assert len(names) == 50
    assert new_run_name(now) < new_run_name(now + 2)


def test_a_failed_run_is_marked_failed_and_latest_stays(tmp_path):
    with run_folder(tmp_path) as good:
        (good.work / "report.pdf").write_text("complete")
    with pytest.raises(RuntimeError):
        with run_folder(tmp_path) as bad:
            (bad.work / "report.pdf").write_text("half")
            raise RuntimeError("renderer crashed")
    assert os.readlink(tmp_path / LATEST) == good.final.name
    failed = [p for p in tmp_path.iterdir() if p.name.endswith(".failed")]
    assert len(failed) == 1 and (failed[0] / "run.log").read_text().count("run failed") == 1
    assert not any(p.name.startswith(".incomplete-") for p in tmp_path.iterdir())


def test_failure_mid_render_publishes_nothing(tmp_path, monkeypatch):
    import keras

    import octreport
    import octreport.pipeline.publish as write
    from octreport.errors import ReportError

    data = write_learnable_kermany(tmp_path / "data")
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(2, 3)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x)))

    def broken_pdf(*args, **kwargs):
        raise ReportError("injected failure while rendering the PDF")

    monkeypatch.setattr(write, "render_pdf", broken_pdf)
    with pytest.raises(ReportError, match="injected"):
        octreport.make_report(model, data, tmp_path / "out", images_per_class=1, maps_per_layer=2)
    out = tmp_path / "out"
    assert not (out / LATEST).exists()
    assert finished_runs(out) == []
    assert [p.suffix for p in out.iterdir()] == [".failed"]


def test_sigterm_during_a_run_leaves_no_half_run(tmp_path):
    data = write_learnable_kermany(tmp_path / "data")
    child = spawn(["run", "--data", str(data), "--out", "out", "--epochs", "400", "--patience", "400", "--image-size", "32"], tmp_path)
    out = tmp_path / "out"
    guard = threading.Timer(120, child.kill)  # a child that never gets to training fails the test, not hangs it
    guard.start()
    seen = []
    for line in child.stdout:  # until the first epoch is logged: the run is well into training
        seen.append(line)
        if "epoch 1/400" in line:
            break
    guard.cancel()
    assert any(p.name.startswith(".incomplete-") for p in out.iterdir()), "".join(seen)
    child.send_signal(signal.SIGTERM)
    rest, _ = child.communicate(timeout=120)
    output = "".join(seen) + rest
    assert child.returncode == 130, output
    assert "Interrupted" in output
    assert finished_runs(out) == [] and not (out / LATEST).exists()
    failed = [p for p in out.iterdir() if p.name.endswith(".failed")]
    assert len(failed) == 1 and (failed[0] / "run.log").is_file()


def test_two_runs_at_once_into_one_root_both_finish(tmp_path):
    data = write_learnable_kermany(tmp_path / "data")
    args = ["run", "--data", str(data), "--out", "out", "--epochs", "1", "--image-size", "16", *QUICK_REPORT]
    children = [spawn(args, tmp_path), spawn(args, tmp_path)]
    outputs = [child.communicate(timeout=300)[0] for child in children]
    # A one-epoch model may sit at chance level, which the built-in gate reports as exit code 5.
    assert all(child.returncode in (0, 5) for child in children), outputs
    runs = finished_runs(tmp_path / "out")
    assert len(runs) == 2
    assert all((run / "report.html").is_file() and (run / "manifest.json").is_file() for run in runs)
    assert os.readlink(tmp_path / "out" / LATEST) in {run.name for run in runs}


def test_manifest_identifies_model_data_and_code(two_runs):
    base, data = two_runs
    run = finished_runs(base / "out")[0]
    manifest = json.loads((run / "manifest.json").read_text())
    model_bytes = (run / "model.keras").read_bytes()
    assert manifest["model"]["file_sha256"] == hashlib.sha256(model_bytes).hexdigest()
    assert manifest["model"]["weights_sha256"]
    files = {f["path"]: f for f in manifest["data"]["files"]}
    some = next(iter(sorted(data.rglob("*.jpeg"))))
    entry = files[str(some.relative_to(data))]
    assert entry["sha256"] == hashlib.sha256(some.read_bytes()).hexdigest() and entry["size"] == some.stat().st_size
    for key in ("class_names", "preprocessing", "config", "command_line", "seed", "versions", "host",
                "started_at", "finished_at", "duration_seconds", "outcome"):
        assert key in manifest, key
    assert manifest["outcome"] == "passed"
    assert manifest["artifacts"]["metrics.json"] == hashlib.sha256((run / "metrics.json").read_bytes()).hexdigest()
    assert manifest["artifacts"]["model.keras"] == manifest["model"]["file_sha256"]
    assert {"tensorflow", "keras", "numpy", "matplotlib", "jinja2", "weasyprint", "octreport", "python"} <= set(manifest["versions"])


def test_pdf_carries_metrics_and_manifest(two_runs):
    from pypdf import PdfReader

    base, _ = two_runs
    run = finished_runs(base / "out")[0]
    reader = PdfReader(run / "report.pdf")
    attachments = reader.attachments
    assert json.loads(attachments["metrics.json"][0]) == json.loads((run / "metrics.json").read_text())
    assert json.loads(attachments["manifest.json"][0]) == json.loads((run / "manifest.json").read_text())
    assert reader.metadata.title.startswith("Model audit")


def test_second_report_compares_with_the_first(two_runs):
    base, _ = two_runs
    html = (base / "out" / LATEST / "report.html").read_text()
    assert 'id="comparison"' in html and "Comparison with an earlier run" in html
    # The second run loaded the first run's model on the same data: its identity is known and unchanged.
    identity = html.split('id="comparison-changes"')[1].split("</table>")[0]
    assert identity.count("<td>same</td>") == 3, identity  # model file, weights, data fingerprint
    result = CliRunner().invoke(main, ["compare", "previous", "latest", "--out", str(base / "out"),
                                       "--html", str(base / "cmp.html"), "--fail-on-regression", "0.5"])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and (base / "cmp.html").read_text().startswith("<!doctype html>")
    # Same model, same images: the runs are paired and nothing changed significantly.
    assert "Paired: both runs evaluated the same" in html
    assert "Paired: both runs evaluated the same" in result.output and "not significant (p = 1.000)" in result.output
    strict = CliRunner().invoke(main, ["compare", "previous", "latest", "--out", str(base / "out"),
                                       "--fail-on-regression", "0", "--regression-mode", "significant"])
    assert strict.exit_code == 0, strict.output


def test_runs_record_predictions_intervals_and_calibration(two_runs):
    from octreport.evaluation.predictions_file import read_predictions

    base, _ = two_runs
    trained, loaded = finished_runs(base / "out")
    metrics = json.loads((trained / "metrics.json").read_text())
    manifest = json.loads((trained / "manifest.json").read_text())
    predictions = read_predictions(trained / "predictions.csv")
    assert manifest["artifacts"]["predictions.csv"] == hashlib.sha256((trained / "predictions.csv").read_bytes()).hexdigest()
    assert len(predictions.paths) == metrics["classification"]["n_images"]
    right = predictions.probabilities.argmax(axis=1) == predictions.labels
    assert right.mean() == pytest.approx(metrics["classification"]["accuracy"])
    intervals = metrics["intervals"]
    assert intervals["unit"] == "patient" and intervals["n_units"] < intervals["n_images"]  # 2 scans per patient
    for entry in (intervals["accuracy"], intervals["macro"]["f1"], intervals["referral"]["weighted_error"]):
        assert set(entry) == {"value", "low", "high", "method"} and entry["low"] <= entry["value"] <= entry["high"]
    assert intervals["accuracy"]["method"] == "wilson"
    assert intervals["referral"]["urgent_roc_auc"]["method"] == "bootstrap over patients"
    calibration = metrics["calibration"]
    assert 0 <= calibration["ece"] <= 1 and 0 <= calibration["brier"] <= 2 and "it is right" in calibration["reading"]
    assert calibration["temperature_scaling"]["temperature"] > 0  # trained in the run: fitted on validation
    assert metrics["operating_point"]["used"]["rule"] == "predicted class CNV or DME"
    loaded_metrics = json.loads((loaded / "metrics.json").read_text())
    assert loaded_metrics["calibration"]["temperature_scaling"] is None
    assert "only for a model trained in this run" in loaded_metrics["calibration"]["temperature_note"]


def test_real_report_contents_read_as_their_headings(two_runs):
    base, _ = two_runs
    links, headings = contents_and_headings((base / "out" / LATEST / "report.html").read_text())
    anchors = [anchor for anchor, _ in links]
    assert {"comparison", "feature-maps", "appendix"} <= set(anchors) and any(a.startswith("class-") for a in anchors)
    assert [(anchor, headings.get(anchor)) for anchor, _ in links] == links


def test_gates_pass_fail_and_exit_codes(two_runs, tmp_path):
    from octreport.data.preprocessing import Preprocessing
    from octreport.models.architectures import build_model
    from octreport.models.io import save_model
    from octreport.models.metadata import ModelMetadata

    base, data = two_runs
    trained = finished_runs(base / "out")[0] / "model.keras"
    untrained = tmp_path / "untrained.keras"  # predicts about the same for every image: chance level
    save_model(build_model("notebook", (32, 32, 1), 4), untrained, ModelMetadata(("CNV", "DME", "DRUSEN", "NORMAL"), Preprocessing(32, 32, 1)))
    common = ["report", "--data", str(data), "--out", str(base / "gated"), *QUICK_REPORT]
    passing = CliRunner().invoke(main, [*common, "--model", str(trained), "--min-accuracy", "0.3", "--min-sensitivity", "CNV=0.3"])
    assert passing.exit_code == 0, passing.output
    failing = CliRunner().invoke(main, [*common, "--model", str(untrained), "--min-accuracy", "0.9", "--min-sensitivity", "DME=0.9"])
    assert failing.exit_code == 5, failing.output
    assert "quality gate(s) failed" in failing.output
    metrics = json.loads((base / "gated" / LATEST / "metrics.json").read_text())
    assert metrics["gates"]["passed"] is False
    verdicts = {g["name"]: g["passed"] for g in metrics["gates"]["results"]}
    assert not verdicts["above chance"] and not verdicts["accuracy"], verdicts
    html = (base / "gated" / LATEST / "report.html").read_text()
    assert "FAILED" in html and "Quality gates" in html
    unknown = CliRunner().invoke(main, [*common, "--model", str(trained), "--min-sensitivity", "XYZ=0.5"])
    assert unknown.exit_code == 2 and "XYZ" in unknown.output


def test_gate_on_lower_bound_fails_where_the_value_passes(two_runs, tmp_path):
    base, data = two_runs
    first = finished_runs(base / "out")[0]
    accuracy = json.loads((first / "metrics.json").read_text())["classification"]["accuracy"]
    common = ["report", "--model", str(first / "model.keras"), "--data", str(data), *QUICK_REPORT,
              "--min-accuracy", f"{accuracy:.6f}"]
    on_value = CliRunner().invoke(main, [*common, "--out", str(tmp_path / "value")])
    assert on_value.exit_code == 0, on_value.output
    on_bound = CliRunner().invoke(main, [*common, "--out", str(tmp_path / "bound"), "--gate-on", "lower-bound"])
    assert on_bound.exit_code == 5, on_bound.output
    assert "lower 95% bound of accuracy" in on_bound.output
    gate = json.loads((tmp_path / "bound" / LATEST / "metrics.json").read_text())["gates"]["results"][1]
    assert (gate["name"], gate["compared"], gate["passed"]) == ("accuracy", "lower bound", False)


def test_config_file_and_environment_fill_options(two_runs, tmp_path):
    base, data = two_runs
    model = finished_runs(base / "out")[0] / "model.keras"
    config = tmp_path / "octreport.toml"
    config.write_text(f'[report]\nimages-per-class = 1\nmaps-per-layer = 2\nformat = ["html"]\nout = "{tmp_path / "from-file"}"\n'
                      'filter-views = "kernels"\nheatmap-checks = false\nbootstrap-resamples = 100\nerrors-per-cell = 0\n')
    result = CliRunner().invoke(main, ["--config", str(config), "report", "--model", str(model), "--data", str(data)],
                                env={"OCTREPORT_REPORT_SEED": "3"})
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "from-file" / LATEST / "metrics.json").read_text())
    assert metrics["report_config"]["maps_per_layer"] == 2 and metrics["report_config"]["seed"] == 3
    assert not (tmp_path / "from-file" / LATEST / "report.pdf").exists()
