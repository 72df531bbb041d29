"""Reproducible training: the same seed, data and machine give bit-identical weights."""

from __future__ import annotations

import json

import numpy as np


def weights(model_file) -> np.ndarray:
    """Every weight of a saved model, flattened (reading the file here is exact; only the training
    needs a fresh process)."""
    import keras

    model = keras.models.load_model(model_file, compile=False)
    return np.concatenate([np.ravel(w) for w in model.get_weights()])


def test_two_trainings_with_the_same_seed_give_identical_weights(train_command_runs):
    for code, output, _ in train_command_runs.values():
        assert code == 0, output
    first, second, other_seed = (weights(train_command_runs[name][2]) for name in ("a", "b", "c"))
    assert first.size > 1000 and np.array_equal(first, second)
    assert not np.array_equal(first, other_seed)  # the comparison can tell models apart
    sidecar = json.loads(train_command_runs["a"][2].with_name("model.octreport.json").read_text())
    assert sidecar["training"]["deterministic"] is True
