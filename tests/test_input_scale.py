"""Other people's models: the input convention a model expects (0-1, 0-255, -1..1, caffe, torch),
detected from its first Rescaling/Normalization layer, stated with --input-scale, or assumed with a
warning; and a model trained on 0-255 input audited at the accuracy it really has."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import OCT_CLASSES, write_learnable_kermany
from octreport.cli import main
from octreport.data.preprocessing import Preprocessing, input_affine, to_model_input
from octreport.errors import ConfigError
from octreport.models.input_scale import (
    choose_input_scale,
    detect_input_scale,
    implied_by_normalization,
    implied_by_rescaling,
)

SIZE = 32
QUICK = ["--images-per-class", "1", "--maps-per-layer", "2", "--filters-per-layer", "2", "--errors-per-cell", "0",
         "--format", "html", "--bootstrap-resamples", "100", "--batch-size", "16"]
# For a model's second and third report: its first drew the filter views and ran the heat-map
# checks in its input convention; what the later ones assert does not depend on them.
SKIP_VIEWS = ["--filter-views", "kernels", "--no-heatmap-checks"]


# ---------- the conventions, by hand ----------


def test_each_convention_maps_black_and_white_as_keras_applications_do():
    pixels = np.array([[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]], np.float32)  # black, white, red (RGB)
    rgb = Preprocessing(8, 8, 3)
    byte = to_model_input(pixels, Preprocessing(8, 8, 3, input_scale="byte"))
    np.testing.assert_allclose(byte[0, 1], [255, 255, 255])
    symmetric = to_model_input(pixels, Preprocessing(8, 8, 3, input_scale="symmetric"))
    np.testing.assert_allclose(symmetric[0, :2], [[-1, -1, -1], [1, 1, 1]])
    caffe = to_model_input(pixels, Preprocessing(8, 8, 3, input_scale="caffe"))
    # keras.applications.imagenet_utils caffe mode: RGB -> BGR, then minus the BGR mean, no scaling.
    np.testing.assert_allclose(caffe[0, 0], [-103.939, -116.779, -123.68], rtol=1e-6)
    np.testing.assert_allclose(caffe[0, 2], [-103.939, -116.779, 255 - 123.68], rtol=1e-6)  # red is the last channel
    torch = to_model_input(pixels, Preprocessing(8, 8, 3, input_scale="torch"))
    np.testing.assert_allclose(torch[0, 1], [(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225], rtol=1e-6)
    assert to_model_input(pixels, rgb) is pixels
    reverse, multiply, add = input_affine("byte", 1)
    assert (reverse, multiply.tolist(), add.tolist()) == (False, [255.0], [0.0])


def test_keras_preprocess_input_agrees_with_the_conventions():
    """The same numbers as keras.applications' own preprocess_input on 0-255 images."""
    from keras.applications import imagenet_utils

    rng = np.random.default_rng(0)
    pixels = rng.random((2, 4, 4, 3)).astype(np.float32)
    for mode, scale in (("caffe", "caffe"), ("torch", "torch"), ("tf", "symmetric")):
        expected = imagenet_utils.preprocess_input(pixels * 255, mode=mode)
        got = to_model_input(pixels, Preprocessing(8, 8, 3, input_scale=scale))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_caffe_and_torch_need_rgb_and_old_sidecars_read_as_unit():
    with pytest.raises(ConfigError, match="RGB channel.*1 channel"):
        Preprocessing(8, 8, 1, input_scale="caffe")
    with pytest.raises(ConfigError, match="input scale must be one of"):
        Preprocessing(8, 8, 1, input_scale="percent")
    old = {"height": 8, "width": 8, "channels": 1, "aspect": "stretch", "normalization": "none"}
    assert Preprocessing.from_dict(old).input_scale == "unit"


# ---------- what a preprocessing layer implies ----------


@pytest.mark.parametrize(("scale", "offset", "expected"), [
    (1 / 255, 0.0, "byte"),          # EfficientNet, many tutorials: 0-255 in, 0-1 inside
    (1 / 127.5, -1.0, "byte"),       # MobileNetV3: 0-255 in, -1..1 inside (so the model is fed 0-255)
    (0.5, 0.5, "symmetric"),         # -1..1 in, 0-1 inside
    (2.0, -1.0, "unit"),             # 0-1 in, -1..1 inside
    (1.0, 0.0, None),                # tells nothing
    (1 / 1000, 0.0, None),
])
def test_rescaling_implies_the_input_it_maps_to_a_normalised_range(scale, offset, expected):
    assert implied_by_rescaling(scale, offset) == expected


def test_normalization_implies_byte_or_unit_from_its_mean():
    assert implied_by_normalization(0.449 * 255, 0.226 * 255) == "byte"   # ConvNeXt's own pre-stem
    assert implied_by_normalization(0.449, 0.226) == "unit"
    assert implied_by_normalization(0.0, 1.0) is None                     # never adapted


def _classifier(first_layers, channels: int = 1, name: str = "foreign") -> keras.Model:
    inputs = keras.Input((SIZE, SIZE, channels))
    x = inputs
    for layer in first_layers:
        x = layer(x)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.Dense(16, activation="relu")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x), name=name)


def test_detection_looks_at_the_first_layers_also_inside_a_nested_backbone():
    found = detect_input_scale(_classifier([keras.layers.Rescaling(1 / 255, name="to_unit")]))
    assert (found.scale, found.path) == ("byte", "to_unit")
    backbone = _classifier([keras.layers.Resizing(SIZE, SIZE), keras.layers.Rescaling(0.5, offset=0.5)], name="backbone")
    inputs = keras.Input((SIZE, SIZE, 1))
    wrapped = keras.Model(inputs, backbone(inputs))
    assert detect_input_scale(wrapped).scale == "symmetric"
    assert detect_input_scale(wrapped).path.startswith("backbone/")
    normalised = _classifier([keras.layers.Normalization(mean=[120.0], variance=[3600.0])])
    assert detect_input_scale(normalised).scale == "byte"
    # After the first convolution a Rescaling is part of the network, not its input convention.
    late = _classifier([keras.layers.Conv2D(2, 3), keras.layers.Rescaling(1 / 255)])
    assert detect_input_scale(late) is None


def test_choice_order_sidecar_then_option_then_detected_then_assumed():
    with_layer = _classifier([keras.layers.Rescaling(1 / 255)])
    plain = _classifier([])
    saved = Preprocessing(SIZE, SIZE, 1)
    assert choose_input_scale(plain, "auto", saved).source == "sidecar"
    with pytest.raises(ConfigError, match="contradicts the model's sidecar"):
        choose_input_scale(plain, "byte", saved)
    stated = choose_input_scale(with_layer, "unit")
    assert (stated.scale, stated.source) == ("unit", "option") and "implies 0-255 (byte)" in stated.warning
    detected = choose_input_scale(with_layer)
    assert (detected.scale, detected.source, detected.warning) == ("byte", "detected", None)
    assumed = choose_input_scale(plain)
    assert (assumed.scale, assumed.source) == ("unit", "assumed")
    assert "--input-scale" in assumed.warning and "cannot tell" in assumed.warning


# ---------- end to end: the audited accuracy is the model's own ----------


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Kermany layout, 32x32 grayscale, one brightness per class (48 test images)."""
    return write_learnable_kermany(tmp_path_factory.mktemp("scale") / "data")


def _images(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The split's images as 0-255 float arrays, read with Pillow, and their labels."""
    pixels, labels = [], []
    for label, name in enumerate(OCT_CLASSES):
        for path in sorted((root / split / name).iterdir()):
            pixels.append(np.asarray(Image.open(path).convert("L"), np.float32)[..., None])
            labels.append(label)
    return np.stack(pixels), np.array(labels)


def _trained(first_layer, prepare, data: Path, folder: Path, name: str) -> tuple[Path, float]:
    """A small model with ``first_layer`` trained a few steps on ``prepare(0-255 images)``, saved;
    and its own ``model.evaluate`` accuracy on the test images prepared the same way."""
    keras.utils.set_random_seed(0)
    model = _classifier([first_layer] if first_layer is not None else [], name=name)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _images(data, "train")
    model.fit(prepare(x), y, epochs=40, batch_size=48, verbose=0)
    x_test, y_test = _images(data, "test")
    accuracy = model.evaluate(prepare(x_test), y_test, verbose=0)[1]
    path = folder / f"{name}.keras"
    model.save(path)
    return path, float(accuracy)


def _report(model: Path, data: Path, out: Path, *extra: str, command: str = "report", config: str = "") -> dict:
    """``octreport [--config FILE] COMMAND --model M ...`` and the run's metrics.json."""
    prefix = []
    if config:
        (out.parent / f"{out.name}.toml").write_text(config)
        prefix = ["--config", str(out.parent / f"{out.name}.toml")]
    result = CliRunner().invoke(main, [*prefix, command, "--model", str(model), "--data", str(data), "--out", str(out),
                                       *QUICK, *extra])
    assert result.exit_code in (0, 5), result.output
    return json.loads((out / "latest" / "metrics.json").read_text())


def test_a_model_trained_on_0_255_is_audited_at_its_own_accuracy(data, tmp_path):
    model, own = _trained(keras.layers.Rescaling(1 / 255), lambda x: x, data, tmp_path, "bytes")
    assert own >= 0.9  # learnable data: the equality below is not one of two chance levels
    detected = _report(model, data, tmp_path / "auto")
    assert detected["classification"]["accuracy"] == pytest.approx(own)
    assert detected["model"]["input_scale"]["source"] == "detected"
    assert detected["model"]["preprocessing"]["input_scale"] == "byte"
    manifest = json.loads((tmp_path / "auto" / "latest" / "manifest.json").read_text())
    assert manifest["preprocessing"]["input_scale"] == "byte" and manifest["model"]["input_scale"]["scale"] == "byte"
    html = (tmp_path / "auto" / "latest" / "report.html").read_text()
    assert "0-255 (byte), detected: the model&#39;s Rescaling layer" in html
    stated = _report(model, data, tmp_path / "byte", "--input-scale", "byte", *SKIP_VIEWS, command="run")  # run --model
    assert stated["classification"]["accuracy"] == pytest.approx(own)
    assert stated["model"]["input_scale"]["source"] == "option"
    # The convention that octreport fed every foreign model before: a collapsed, wrong audit, and it says why.
    import octreport

    outcome = octreport.make_report(model, data, tmp_path / "unit", input_scale="unit", images_per_class=1,
                                    formats=("html",), errors_per_cell=0, bootstrap_resamples=100,
                                    filter_views=("kernels",), heatmap_checks=False)
    wrong = json.loads(outcome.metrics_path.read_text())
    assert wrong["classification"]["accuracy"] <= 0.5
    assert any("wrong input convention" in w for w in wrong["model"]["warnings"])
    assert any("implies 0-255 (byte)" in w for w in wrong["model"]["warnings"])


def test_a_model_trained_on_minus_one_to_one_with_symmetric(data, tmp_path):
    symmetric = lambda x: x / 127.5 - 1  # noqa: E731  (keras.applications' "tf" mode)
    model, own = _trained(keras.layers.Rescaling(0.5, offset=0.5), symmetric, data, tmp_path, "signed")
    assert own >= 0.9
    detected = _report(model, data, tmp_path / "auto")
    assert detected["model"]["preprocessing"]["input_scale"] == "symmetric"
    assert detected["classification"]["accuracy"] == pytest.approx(own)
    stated = _report(model, data, tmp_path / "stated", *SKIP_VIEWS, config='[report]\ninput-scale = "symmetric"\n')
    assert stated["classification"]["accuracy"] == pytest.approx(own)
    assert stated["model"]["input_scale"]["source"] == "option"


def test_a_model_without_a_preprocessing_layer_gets_the_assumption_in_its_warnings(data, tmp_path):
    model, _ = _trained(None, lambda x: x / 255, data, tmp_path, "plain")
    document = _report(model, data, tmp_path / "runs")
    assert document["model"]["input_scale"]["source"] == "assumed"
    assert any("Input convention assumed" in w and "--input-scale" in w for w in document["model"]["warnings"])
    html = (tmp_path / "runs" / "latest" / "report.html").read_text()
    assert "Model input:</strong> Input convention assumed" in html  # in the summary
    # `report` did not train: its data block names the test split only, not a training/validation split.
    title_block = html.split("<main>")[0]
    assert "test/ as found on disk (--split test); train/ and val/ were not evaluated" in title_block
    assert "validation" not in title_block.lower() and "Train images" not in title_block


def test_input_scale_is_refused_for_a_model_trained_in_the_run_and_for_a_grey_caffe_model(data, tmp_path):
    result = CliRunner().invoke(main, ["run", "--data", str(data), "--out", str(tmp_path / "runs"), "--input-scale", "byte"])
    assert result.exit_code == 2 and "for a model octreport did not train" in result.output
    model = tmp_path / "grey.keras"
    _classifier([]).save(model)  # untrained: it is refused before it is run
    result = CliRunner().invoke(main, ["report", "--model", str(model), "--data", str(data), "--out", str(tmp_path / "r"),
                                       "--input-scale", "caffe"])
    assert result.exit_code == 2 and "RGB channel" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists() and not (tmp_path / "r").exists()
