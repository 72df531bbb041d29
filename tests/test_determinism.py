"""Reproducible training: the same seed, data and machine give bit-identical weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT, SAMPLE_DATA
from test_cli import sample_slice


def train_in_a_new_process(data, out, *extra) -> np.ndarray:
    """``octreport train`` as a user runs it; returns every weight of the saved model, flattened."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    args = ["train", "--data", str(data), "--out", str(out), "--epochs", "2", "--image-size", "32", "--quiet", *extra]
    done = subprocess.run([sys.executable, "-m", "octreport", *args], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    import keras  # reading the saved file here is exact; only the training needs a fresh process

    model = keras.models.load_model(out, compile=False)
    return np.concatenate([np.ravel(w) for w in model.get_weights()])


@pytest.mark.skipif(not SAMPLE_DATA.joinpath("train").is_dir(), reason="sample_data not generated")
def test_two_trainings_with_the_same_seed_give_identical_weights(tmp_path):
    data = sample_slice(tmp_path, per_class=6)
    first = train_in_a_new_process(data, tmp_path / "a" / "model.keras")
    second = train_in_a_new_process(data, tmp_path / "b" / "model.keras")
    assert first.size > 1000 and np.array_equal(first, second)
    other_seed = train_in_a_new_process(data, tmp_path / "c" / "model.keras", "--seed", "1")
    assert not np.array_equal(first, other_seed)  # the comparison can tell models apart
    sidecar = json.loads((tmp_path / "a" / "model.octreport.json").read_text())
    assert sidecar["training"]["deterministic"] is True
