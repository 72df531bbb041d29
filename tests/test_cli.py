"""The command line as a user meets it: instant help, clean errors with documented exit codes,
and one real end-to-end run that ends in a PDF."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import (
    OCT_CLASSES, OCT_REAL, REPO_ROOT, SAMPLE_DATA, run_cli, sample_slice, write_class_folders, write_kermany,
)
from octreport.cli import main

FAST_TRAINING = ["--epochs", "1", "--image-size", "32", "--batch-size", "16", "--images-per-class", "1", "--maps-per-layer", "8", "--filters-per-layer", "8"]


def test_help_and_version_do_not_import_tensorflow():
    code = (
        "import sys; from click.testing import CliRunner; from octreport.cli import main; "
        "r = CliRunner().invoke(main, ['--version']); h = CliRunner().invoke(main, ['run', '--help']); "
        "print(r.output.strip()); assert 'Usage' in h.output; assert 'tensorflow' not in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("octreport, version ")


def test_missing_data_folder_is_a_data_error_without_traceback(tmp_path):
    result = CliRunner().invoke(main, ["run", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 3
    assert "does not exist" in result.output and "Expected either" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_file_that_is_not_a_model_is_a_model_error(tmp_path):
    data = write_kermany(tmp_path / "d")
    fake = tmp_path / "model.keras"
    fake.write_text("not a model")
    result = CliRunner().invoke(main, ["report", "--model", str(fake), "--data", str(data), "--out", str(tmp_path / "r")])
    assert result.exit_code == 4
    assert "zip archive" in result.output and "Traceback" not in result.output


def test_unknown_layer_lists_the_available_ones(tmp_path):
    data = write_kermany(tmp_path / "d")
    result = CliRunner().invoke(main, ["run", "--data", str(data), "--layers", "nope", "--out", str(tmp_path / "r"), *FAST_TRAINING])
    assert result.exit_code == 2
    assert "conv1" in result.output and "conv4" in result.output
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_bad_option_value_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["run", "--image-size", "abc"])
    assert result.exit_code == 2
    assert "expected a size like 128" in result.output


def test_train_command_saves_model_history_and_classes(train_command_runs):
    code, output, model = train_command_runs["a"]
    assert code == 0, output
    assert "test accuracy" in output
    meta = json.loads(model.with_name("model.octreport.json").read_text())
    assert meta["class_names"] == list(OCT_CLASSES)
    assert meta["preprocessing"]["height"] == 32 and meta["preprocessing"]["channels"] == 1
    assert len(meta["history"]["loss"]) == len(meta["history"]["val_loss"]) >= 1
    # The referral rule is chosen on the validation split; a slice this small allows no threshold.
    assert meta["referral_rule"]["source"] == "validation" and meta["referral_rule"]["threshold"] is None
    assert "urgent referral: predicted class CNV or DME (the validation split allowed no threshold)" in output


@pytest.mark.skipif(not SAMPLE_DATA.joinpath("train").is_dir(), reason="sample_data not generated")
def test_end_to_end_run_on_a_slice_of_sample_data(tmp_path):
    from pypdf import PdfReader

    data = sample_slice(tmp_path)
    code, output = run_cli(["run", "--data", str(data), "--out", "runs", *FAST_TRAINING], tmp_path)
    latest = tmp_path / "runs" / "latest"
    metrics = json.loads((latest / "metrics.json").read_text())
    # One epoch on a slice may leave the model at chance level: the built-in gate then exits 5,
    # after the complete report was written.
    assert code == (0 if metrics["gates"]["passed"] else 5), output
    assert latest.is_symlink()
    for name in ("report.pdf", "report.html", "metrics.json", "model.keras", "model.octreport.json", "run.log"):
        assert (latest / name).is_file(), name
    accuracy = metrics["classification"]["accuracy"]
    text = "".join(page.extract_text() for page in PdfReader(latest / "report.pdf").pages)
    for title in ("Summary", "Metrics", "Confusion matrix", "Convolutional layers", "Feature maps", "Filters"):
        assert title in text
    assert f"{accuracy:.1%}" in text
    low, high = (metrics["intervals"]["accuracy"][k] for k in ("low", "high"))
    assert f"{accuracy:.1%} (95% CI {100 * low:.1f}–{100 * high:.1f})" in " ".join(text.split())
    assert "Calibration and confidence" in text and "Urgent-referral operating point" in text
    assert str(latest.resolve() / "report.pdf") in output
    # What each filter responds to: patches named by image, class, position and activation.
    flat = " ".join(text.split())
    assert "what each filter responds to in the test images" in flat and "gradient-ascent steps from noisy mid-grey" in flat
    assert "receptive field computed from the layer graph" in flat
    layers = {layer["path"]: layer for layer in metrics["conv_layers"]}
    for entry in metrics["filters"]:
        patches = entry["top_patches"]
        assert patches["receptive_field"]["size"][0] >= layers[entry["layer"]]["kernel_size"][0]
        assert [f["filter"] for f in patches["per_filter"]] == list(range(min(8, layers[entry["layer"]]["filters"])))
        for per_filter in patches["per_filter"]:
            tops = per_filter["top"]
            assert 1 <= len(tops) <= 6 and len({t["image"] for t in tops}) == len(tops)
            assert [t["activation"] for t in tops] == sorted((t["activation"] for t in tops), reverse=True)
            for top in tops:
                assert (data / top["image"]).is_file() and Path(top["image"]).parent.name == top["class"]
                assert all(0 <= p < size for p, size in zip(top["position"], layers[entry["layer"]]["output_shape"]))
        assert len(entry["maximisation"]["activation"]) == len(patches["per_filter"])


@pytest.mark.skipif(not OCT_REAL.is_dir(), reason="../shared/oct-real is not present")
def test_run_on_real_oct_scans(tmp_path):
    code, output = run_cli(["run", "--data", str(OCT_REAL), "--out", "runs", "--format", "html", *FAST_TRAINING,
                            "--maps-per-layer", "2", "--filters-per-layer", "2", "--errors-per-cell", "0",
                            "--bootstrap-resamples", "100"], tmp_path)  # what the checks below do not read, made small
    metrics = json.loads((tmp_path / "runs" / "latest" / "metrics.json").read_text())
    # One epoch on real scans may leave the model at chance level: the built-in gate then
    # fails the run with exit code 5, after the complete report was written.
    assert code == (0 if metrics["gates"]["passed"] else 5), output
    assert metrics["data"]["class_names"] == list(OCT_CLASSES)
    assert metrics["classification"]["n_images"] > 100
    html = (tmp_path / "runs" / "latest" / "report.html").read_text()
    assert "Kermany" in html and "doi:10.17632/rscbjbr9sj" in html


def test_make_report_on_an_in_memory_model(tmp_path):
    import keras

    import octreport

    # "/" cannot be in a folder name, so the markup test uses an unclosed tag and an ampersand.
    data = write_class_folders(tmp_path / "d", classes=("a", "b", "<b>x&y"), patients=6)
    inputs = keras.Input((24, 24, 1))
    x = keras.layers.Conv2D(4, 3, name="first")(inputs)
    x = keras.layers.Conv2D(6, 3, name="second")(x)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs, name="tiny")
    outcome = octreport.make_report(model, data, tmp_path / "out", images_per_class=1, formats=("html",),
                                    filter_views=("kernels", "patches"))
    html = outcome.html_path.read_text()
    assert "Top-activating patches of first" in html and "Activation maximisation of" not in html
    assert "&lt;b&gt;x&amp;y" in html and "<b>x" not in html
    assert "first" in html and "second" in html
    assert outcome.pdf_path is None
    assert json.loads(outcome.metrics_path.read_text())["model"]["name"] == "tiny"


def test_preset_names_match_the_recipes():
    from octreport.cli_options import PRESET_NAMES
    from octreport.models.recipes import PRESETS

    assert PRESET_NAMES == tuple(PRESETS)


def test_preset_is_the_base_and_given_options_override_it():
    from octreport.cli_options import build_train_config
    from octreport.models.recipes import PRESETS

    options = {"preset": "oct-real", "architecture": "notebook", "epochs": 3, "batch_size": 32, "image_size": (128, 128),
               "channels": "1", "aspect": "stretch", "normalization": "none", "learning_rate": 1e-3, "augment": True,
               "class_weights": True, "patience": 5, "val_fraction": 0.15, "test_fraction": 0.2, "seed": 0,
               "early_stopping_start": 0, "lr_schedule": "constant", "warmup_epochs": 0, "distribute": "none",
               "follow_symlinks": False, "referral_sensitivity": 0.95}
    config = build_train_config(options, given={"preset", "epochs", "image_size"})
    preset = PRESETS["oct-real"]
    assert config.epochs == 3 and (config.preprocessing.height, config.preprocessing.width) == (128, 128)
    assert config.architecture == preset.architecture and config.learning_rate == preset.learning_rate
    assert config.preprocessing.aspect == preset.preprocessing.aspect
    assert config.preprocessing.normalization == preset.preprocessing.normalization
    assert (config.lr_schedule, config.warmup_epochs) == ("cosine", preset.warmup_epochs)
    assert build_train_config(options, given={"preset", "lr_schedule"}).lr_schedule == "constant"
    plain = build_train_config({**options, "preset": None})
    assert plain.architecture == "notebook" and plain.preprocessing.normalization == "none"
    assert plain.lr_schedule == "constant" and plain.distribute == "none"
