"""--distribute: the TF_CONFIG checks, and the mirrored code path on two logical CPU devices."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, spawn, write_learnable_kermany
from octreport.config import TrainConfig
from octreport.models.distribute import check_tf_config, make_strategy
from octreport.errors import ConfigError

CLUSTER = {"cluster": {"worker": ["localhost:12345", "localhost:12346"]}, "task": {"type": "worker", "index": 1}}


def test_tf_config_is_checked_with_messages_that_say_what_to_do():
    assert check_tf_config({"TF_CONFIG": json.dumps(CLUSTER)}) == CLUSTER
    with pytest.raises(ConfigError, match="needs the TF_CONFIG environment variable.*--distribute mirrored"):
        check_tf_config({})
    with pytest.raises(ConfigError, match="not a valid cluster description"):
        check_tf_config({"TF_CONFIG": "{not json"})
    with pytest.raises(ConfigError, match="not a valid cluster description"):
        check_tf_config({"TF_CONFIG": json.dumps({"cluster": {}})})
    bad_index = {**CLUSTER, "task": {"type": "worker", "index": 2}}
    with pytest.raises(ConfigError, match="index 2 is not in its cluster"):
        check_tf_config({"TF_CONFIG": json.dumps(bad_index)})


def test_unknown_modes_are_refused_and_none_means_no_strategy():
    assert make_strategy("none") is None
    with pytest.raises(ConfigError, match="distribute must be one of"):
        TrainConfig(distribute="tpu")


def test_mirrored_on_two_logical_cpus_matches_one_device_and_runs_the_whole_job(tmp_path):
    """Evaluation and the layer audit split over two replicas (uneven last batches included) give
    the one-device results; ``octreport run --distribute mirrored`` trains and reports, on a data
    set whose last test batch leaves one of the two replicas no image."""
    # 9 test images in batches of 4: the last batch (one image) leaves one of two replicas no row.
    uneven = write_learnable_kermany(tmp_path / "uneven")
    for position, extra in enumerate(sorted((uneven / "test").glob("*/*.jpeg"))):
        if position % 16 not in (0, 5, 11):
            extra.unlink()
    assert len(list((uneven / "test").glob("*/*.jpeg"))) == 9
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tests" / "mirrored_child.py"), str(uneven), str(tmp_path / "runs")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert measured["replicas"] == 2
    assert measured["same_probabilities"] and measured["same_health"]
    # the running top-k per filter: the same images and positions, no padding row among them
    assert measured["same_top"]
    # octreport's multi-worker training loop trains as Model.fit does (same losses, same accuracy).
    assert measured["same_training"], (measured["by_fit"], measured["by_loop"])
    assert measured["indices"] == list(range(11)) and measured["images"] == 11
    # One epoch may leave the model at chance level: the built-in gate then exits 5 after the report.
    assert measured["run_exit"] in (0, 5)
    latest = tmp_path / "runs" / "latest"
    metrics = json.loads((latest / "metrics.json").read_text())
    assert metrics["classification"]["n_images"] == 9  # every image once, no padding row counted
    assert all(layer["images"] == 9 for layer in metrics["layer_health"])
    assert (latest / "report.html").is_file()
    assert "2 replica(s)" in (latest / "run.log").read_text()
    manifest = json.loads((latest / "manifest.json").read_text())
    assert "mirrored" in json.dumps(manifest)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_run_on_two_local_workers_writes_one_report(tmp_path):
    """Two processes on this machine stand in for two hosts: both train in lockstep (octreport's
    own loop, since Keras 3's fit fails there) and evaluate their shares; worker 0 writes the run."""
    data = write_learnable_kermany(tmp_path / "data")
    workers = [f"localhost:{port}" for port in free_ports(2)]
    args = ["run", "--data", str(data), "--out", "runs", "--distribute", "multi-worker", "--epochs", "2",
            "--image-size", "32", "--batch-size", "8", "--images-per-class", "1", "--maps-per-layer", "4",
            "--filters-per-layer", "4", "--errors-per-cell", "0", "--format", "html"]
    children = []
    for index in range(2):
        folder = tmp_path / f"worker{index}"
        folder.mkdir()
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        children.append((folder, spawn(args, folder, TF_CONFIG=json.dumps(tf_config))))
    outputs = [child.communicate(timeout=600)[0] for _, child in children]
    codes = [child.returncode for _, child in children]
    assert all(code in (0, 5) for code in codes), outputs  # 5: a two-epoch model may sit at chance level
    assert "2 replica(s)" in outputs[0]
    epochs = [[line.split("INFO", 1)[1].rsplit("(", 1)[0] for line in out.splitlines() if "INFO    epoch " in line] for out in outputs]
    assert len(epochs[0]) == 2 and epochs[0] == epochs[1], outputs  # same losses on both workers
    chief_run = tmp_path / "worker0" / "runs" / "latest"
    metrics = json.loads((chief_run / "metrics.json").read_text())
    assert metrics["classification"]["n_images"] == 48  # every test image, not only worker 0's share
    assert not (tmp_path / "worker1" / "runs").exists()
    assert "the chief worker writes the report" in outputs[1]
