"""octreport against a real MLflow tracking server (``mlflow server``: SQLite store, local artifact
root, a free port), started once for the module and read back through ``MlflowClient``."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from octreport.cli import main

pytest.importorskip("mlflow")

MODEL_NAME = "oct"
SMALL_REPORT = ["--images-per-class", "1", "--maps-per-layer", "4", "--filters-per-layer", "4", "--errors-per-cell", "0",
                "--no-heatmap-checks", "--filter-views", "kernels", "--format", "html"]


class TrackingServer:
    """``mlflow server`` in a child process; :meth:`stop` and :meth:`start` keep its store."""

    def __init__(self, root: Path):
        self.root = root
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self.child: subprocess.Popen | None = None

    def start(self) -> None:
        mlflow = Path(sys.executable).with_name("mlflow")
        command = [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
                   "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
                   "--default-artifact-root", str(self.root / "artifacts")]
        environment = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job runner: starts faster
        self.child = subprocess.Popen(command, cwd=self.root, env=environment, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise RuntimeError("mlflow server did not answer /health within 90 s")

    def stop(self) -> None:
        """Stop the server and its uvicorn worker (its own process group, started by :meth:`start`)."""
        if self.child is not None:
            os.killpg(self.child.pid, signal.SIGTERM)
            try:
                self.child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.child.pid, signal.SIGKILL)
                self.child.wait()
            self.child = None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = TrackingServer(tmp_path_factory.mktemp("mlflow-server"))
    running.start()
    yield running
    running.stop()


@pytest.fixture
def octreport(server, tmp_path, monkeypatch):
    """``octreport ARGS`` in this process, against the server, with the model cache in ``tmp_path``."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def invoke(*args: str):
        return CliRunner().invoke(main, list(args))

    return invoke


def client(server):
    from mlflow import MlflowClient

    return MlflowClient(server.uri)


def run_id_of(output: str) -> str:
    return output.split("MLflow run ")[1].split()[0]


def test_a_trained_run_registered_then_audited_by_its_registry_uri(server, octreport, audited_run, tmp_path, capfd,
                                                                   weights_cache, monkeypatch):
    trained_run, data = audited_run
    published = octreport("publish", str(trained_run), "--mlflow", "--mlflow-register", MODEL_NAME)
    assert published.exit_code == 0, published.output
    tracking = client(server)
    trained = tracking.get_run(run_id_of(published.output))
    # publish again, registering under another name: the run already logged gets the version
    again = octreport("publish", str(trained_run), "--mlflow", "--mlflow-register", "oct-copy")
    assert again.exit_code == 0 and "already logged" in again.output and "registered as oct-copy version 1" in again.output
    assert tracking.get_model_version("oct-copy", "1").run_id == trained.info.run_id
    same = octreport("publish", str(trained_run), "--mlflow", "--mlflow-register", MODEL_NAME)
    assert f"registered as {MODEL_NAME} version 1" in same.output  # the version it already has, not a new one
    assert [v.version for v in tracking.search_model_versions(f"name = '{MODEL_NAME}'")] == ["1"]
    history = json.loads((trained_run / "metrics.json").read_text())["training"]["history"]
    assert [m.value for m in tracking.get_metric_history(trained.info.run_id, "train.loss")] == pytest.approx(history["loss"])
    assert tracking.get_model_version(MODEL_NAME, "1").run_id == trained.info.run_id
    assert {"report.pdf", "report.html", "model"} <= {entry.path for entry in tracking.list_artifacts(trained.info.run_id)}
    import pypdf

    pdf = Path(tracking.download_artifacts(trained.info.run_id, "report.pdf", str(tmp_path)))
    assert pdf.read_bytes() == (trained_run / "report.pdf").read_bytes()
    assert pypdf.PdfReader(pdf).pages[0].extract_text().startswith("Model audit: ")

    tracking.set_model_version_tag(MODEL_NAME, "1", "octreport.accuracy_low", "left by an earlier audit")
    capfd.readouterr()
    result = octreport("report", "--model", f"models:/{MODEL_NAME}/1", "--data", str(data), "--out", str(tmp_path / "runs"),
                       "--mlflow", "--min-accuracy", "0.5", "--quiet", *SMALL_REPORT)
    assert result.exit_code == 0, result.output
    run_dir = (tmp_path / "runs" / "latest").resolve()
    assert result.stdout.splitlines() == [str(run_dir / "report.html")]  # what a script reads, alone on stdout
    # --quiet: nothing on stderr, neither through click nor written to the process's stderr (MLflow's
    # own log handler, the download's progress bar)
    assert result.stderr == "" and capfd.readouterr().err == ""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["model"]["source"] == f"models:/{MODEL_NAME}/1"
    assert manifest["model"]["registry"]["version"] == "1" and manifest["model"]["registry"]["run_id"] == trained.info.run_id
    assert manifest["model"]["registry"]["tracking_uri"] == server.uri
    assert Path(manifest["model"]["file"]).is_relative_to(weights_cache / "mlflow")  # OCTREPORT_CACHE_DIR
    assert manifest["model"]["weights_sha256"] == json.loads((trained_run / "manifest.json").read_text())["model"]["weights_sha256"]

    tags = tracking.get_model_version(MODEL_NAME, "1").tags
    logged = tracking.get_run(tags["octreport.audit_run_id"])
    assert logged.info.run_name == run_dir.name and logged.info.status == "FINISHED"
    values = logged.data.metrics
    assert values["accuracy"] == metrics["classification"]["accuracy"]
    assert values["accuracy.low"] == metrics["intervals"]["accuracy"]["low"]
    assert values["referral.urgent_sensitivity.high"] == metrics["intervals"]["referral"]["urgent_sensitivity"]["high"]
    assert values["calibration.brier"] == metrics["calibration"]["brier"]
    assert logged.data.params["report.images_per_class"] == "1"
    assert logged.data.params["gates.min_accuracy"] == "0.5"
    assert logged.data.tags["octreport.gate.accuracy"] == "passed"
    assert logged.data.tags["octreport.model_uri"] == f"models:/{MODEL_NAME}/1"
    assert logged.data.tags["octreport.run_folder"] == str(run_dir)
    names = {entry.path for entry in tracking.list_artifacts(logged.info.run_id)}
    assert {"report.html", "metrics.json", "manifest.json", "predictions.csv", "model_card.json"} <= names

    assert tags["octreport.gates"] == "passed" and float(tags["octreport.accuracy"]) == metrics["classification"]["accuracy"]
    low = metrics["intervals"]["accuracy"]["low"]
    assert float(tags["octreport.accuracy_low"]) == pytest.approx(low, abs=1e-4)  # not the stale tag
    assert tags["octreport.kind"] == "report" and tags["octreport.class_subset"] == "no"
    assert tags["octreport.evaluated_classes"] == ",".join(metrics["data"]["class_names"])

    shutil.rmtree(weights_cache / "mlflow")  # verify fetches the recorded version again, from the recorded server
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    verified = octreport("verify", str(run_dir))
    assert verified.exit_code == 0, verified.output
    assert f"fetched again from MLflow (models:/{MODEL_NAME}/1 at {server.uri})" in verified.output
    shutil.rmtree(weights_cache / "mlflow")  # a server that is not there: not checked, exit 7 under --strict
    dead = octreport("verify", str(run_dir), "--strict", "--mlflow-tracking-uri", "http://127.0.0.1:9")
    assert dead.exit_code == 7, dead.output
    assert "could not be fetched again" in dead.output and "Traceback" not in dead.output


def test_the_server_down_then_back(server, octreport, kermany_dir, tmp_path):
    data = kermany_dir
    server.stop()
    started = time.monotonic()
    result = octreport("audit-data", "--data", str(data), "--out", str(tmp_path / "audits"), "--mlflow", "--format", "html")
    seconds = time.monotonic() - started
    run_dir = (tmp_path / "audits" / "latest").resolve()
    assert result.exit_code == 9, result.output
    assert "Warning: logging to the MLflow tracking server" in result.output and "could not be reached" in result.output
    assert {"metrics.json", "manifest.json", "report.html"} <= {p.name for p in run_dir.iterdir()}
    assert seconds < 30, f"a dead server took {seconds:.0f} s to give up"

    server.start()
    caught_up = octreport("publish", str(run_dir), "--mlflow")
    assert caught_up.exit_code == 0, caught_up.output
    again = octreport("publish", str(run_dir), "--mlflow")
    assert "already logged" in again.output and run_id_of(again.output) == run_id_of(caught_up.output)
    logged = client(server).get_run(run_id_of(caught_up.output))
    assert logged.data.tags["octreport.kind"] == "data-audit"
    leaked = json.loads((run_dir / "metrics.json").read_text())["data_audit"]["leaked_patients"]
    assert logged.data.metrics["data_audit.leaked_patients"] == leaked


class _RefusesEveryone(http.server.BaseHTTPRequestHandler):
    """A proxy in front of a tracking server that refuses these credentials (HTTP 401)."""

    def do_GET(self):
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="mlflow"')
        self.end_headers()
        self.wfile.write(b"Unauthorized")

    do_POST = do_GET

    def log_message(self, *args):
        pass


def test_refused_credentials_leave_the_run_folder_alone_and_exit_9(audited_run, monkeypatch):
    run_dir, _ = audited_run
    before = sorted((p.name, p.stat().st_mtime_ns) for p in run_dir.iterdir())
    proxy = http.server.HTTPServer(("127.0.0.1", 0), _RefusesEveryone)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "someone")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
    try:
        result = CliRunner().invoke(main, ["publish", str(run_dir), "--mlflow", "--mlflow-tracking-uri",
                                           f"http://someone:in-the-uri@127.0.0.1:{proxy.server_port}"])
    finally:
        proxy.shutdown()
    assert result.exit_code == 9, result.output
    assert "the server refused the credentials" in result.output and "wrong" not in result.output
    assert f"http://127.0.0.1:{proxy.server_port}" in result.output and "in-the-uri" not in result.output
    assert sorted((p.name, p.stat().st_mtime_ns) for p in run_dir.iterdir()) == before
