"""The rough edges a new user met: help texts, what `sample-data` prints, a model without a
classification head, the data folder's name in the report, and a Python API as quiet as the CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import click
import pytest
from click.testing import CliRunner

from conftest import REPO_ROOT, write_kermany
from octreport.cli import main

# TensorFlow's C++ log lines (absl's "E0000 00:00:..." and TSL's "2026-... I tensorflow/...") and the
# CUDA probing messages a CPU-only machine prints.
TF_NOISE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d|tensorflow/core|tensorflow/compiler|cuInit|cuda_|oneDNN|absl::",
                      re.MULTILINE)


def test_every_option_of_every_command_has_help_text():
    missing = [
        f"{name} {param.opts[-1]}"
        for name, command in main.commands.items()
        for param in command.params
        if isinstance(param, click.Option) and not (param.help or "").strip()
    ]
    missing += [param.opts[-1] for param in main.params if isinstance(param, click.Option) and not (param.help or "").strip()]
    assert missing == []


def test_sample_data_prints_counts_for_a_person_not_a_dict(tmp_path, monkeypatch):
    import octreport.data.synthetic

    counts = {"train": {"CNV": 200, "DME": 200, "DRUSEN": 200, "NORMAL": 200},
              "test": {"CNV": 25, "DME": 25, "DRUSEN": 25, "NORMAL": 25}}
    monkeypatch.setattr(octreport.data.synthetic, "write_sample_dataset", lambda out, seed, overwrite: counts)
    result = CliRunner().invoke(main, ["sample-data", "--out", str(tmp_path / "my data")])
    assert result.exit_code == 0, result.output
    assert "{" not in result.output and "'" not in result.output.split("\n")[0]
    lines = result.output.splitlines()
    assert lines[0] == f"Wrote 900 synthetic OCT B-scans (seed 0) to {tmp_path / 'my data'}:"
    assert lines[1:3] == ["  train: 800 (CNV 200, DME 200, DRUSEN 200, NORMAL 200)",
                          "  test: 100 (CNV 25, DME 25, DRUSEN 25, NORMAL 25)"]
    assert lines[3] == f"Use them with: octreport run --data '{tmp_path / 'my data'}'"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_kermany(tmp_path_factory.mktemp("newcomer") / "data", patients=4, per_patient=1)


def _save(model, folder: Path, name: str) -> Path:
    path = folder / name
    model.save(path)
    return path


def test_a_model_without_a_classification_head_is_refused_in_plain_words(data, tmp_path):
    import keras

    inputs = keras.Input((32, 32, 3))
    feature_map = keras.layers.Conv2D(8, 3, strides=2, name="last_conv")(inputs)
    maps = _save(keras.Model(inputs, feature_map), tmp_path, "maps.keras")
    pooled = _save(keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(feature_map)), tmp_path, "pooled.keras")
    for model, shape in ((maps, "15x15x8 feature map"), (pooled, "GlobalAveragePooling2D with 8 features")):
        result = CliRunner().invoke(main, ["report", "--model", str(model), "--data", str(data),
                                           "--out", str(tmp_path / "runs")])
        assert result.exit_code == 4, result.output
        assert "Traceback" not in result.output
        assert "looks like a feature extractor" in result.output and shape in result.output
        assert "Add a classification head" in result.output and "Dense(4, activation='softmax')" in result.output
    assert not (tmp_path / "runs").exists()


def test_the_bundled_sample_data_is_named_not_given_as_its_install_path(tmp_path):
    from octreport.report.build import data_label
    from octreport.resources import sample_data_dir

    bundled = SimpleNamespace(data=SimpleNamespace(root=sample_data_dir()))
    assert data_label(bundled) == "octreport's bundled synthetic sample data (sample_data/)"
    assert data_label(SimpleNamespace(data=SimpleNamespace(root=tmp_path))) == str(tmp_path)


def test_the_python_api_is_as_quiet_as_the_cli(data, tmp_path):
    """make_report in a fresh Python without TF_CPP_MIN_LOG_LEVEL: no TensorFlow C++ line on stderr."""
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    model = _save(keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x)), tmp_path, "tiny.keras")
    script = (
        "import octreport\n"
        f"octreport.make_report({str(model)!r}, {str(data)!r}, {str(tmp_path / 'runs')!r}, images_per_class=1,\n"
        "    formats=('html',), errors_per_cell=0, bootstrap_resamples=100, maps_per_layer=2, filters_per_layer=2)\n"
        "print('done')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "ABSL_MIN_LOG_LEVEL")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr
    assert TF_NOISE.findall(done.stderr) == [], done.stderr
