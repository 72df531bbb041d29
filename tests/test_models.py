"""Built-in networks, save/load round trips, and models that do not fit are refused."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from octreport.config import ARCHITECTURE_NAMES
from octreport.data.preprocessing import Preprocessing
from octreport.errors import ConfigError, ModelError
from octreport.models.architectures import ARCHITECTURES, build_model
from octreport.models.io import load_model, model_class_names, preprocessing_for, save_model
from octreport.models.metadata import ModelMetadata, sidecar_path

CLASSES = ("CNV", "DME", "DRUSEN", "NORMAL")


def test_config_and_builders_agree_on_architecture_names():
    assert tuple(ARCHITECTURES) == ARCHITECTURE_NAMES


def test_notebook_network_is_the_notebooks():
    model = build_model("notebook", (128, 128, 1), 4)
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 64, 128, 128]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert [l.rate for l in model.layers if isinstance(l, keras.layers.Dropout)] == [0.3] * 4
    assert model.output_shape == (None, 4)


def test_compact_network_uses_batch_norm_and_global_pooling():
    model = build_model("compact-bn", (64, 64, 1), 3)
    assert any(isinstance(l, keras.layers.BatchNormalization) for l in model.layers)
    assert any(isinstance(l, keras.layers.GlobalAveragePooling2D) for l in model.layers)


def test_save_and_load_round_trip_keeps_predictions_and_metadata(tmp_path):
    model = build_model("notebook", (32, 32, 1), 4)
    meta = ModelMetadata(CLASSES, Preprocessing(32, 32, 1), {"loss": [1.0, 0.5]}, best_epoch=2)
    path = tmp_path / "m.keras"
    save_model(model, path, meta)
    loaded = load_model(path)
    x = np.random.default_rng(0).random((3, 32, 32, 1), dtype=np.float32)
    np.testing.assert_allclose(loaded.model.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert loaded.metadata == meta
    assert preprocessing_for(loaded.model, loaded.metadata.preprocessing) == Preprocessing(32, 32, 1)


def test_legacy_h5_loads_and_preprocessing_comes_from_the_input(tmp_path):
    model = build_model("notebook", (40, 48, 3), 4)
    path = tmp_path / "legacy.h5"
    model.save(path)
    loaded = load_model(path)
    assert loaded.metadata is None
    assert preprocessing_for(loaded.model, None) == Preprocessing(40, 48, 3)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.keras", None, "does not exist"),
        ("notes.txt", b"hello", "not a Keras model file"),
        ("fake.keras", b"not a zip", "zip archive"),
        ("fake.h5", b"not hdf5", "Could not load"),
    ],
)
def test_files_that_are_not_models_are_refused(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError, match=message):
        load_model(path)


def test_model_with_wrong_number_of_outputs_is_refused():
    model = build_model("notebook", (32, 32, 1), 3)
    with pytest.raises(ModelError, match="data has 4 classes"):
        model_class_names(model, CLASSES, None)


def test_the_models_classes_come_from_its_sidecar_then_class_names_then_the_folders():
    model = build_model("notebook", (32, 32, 1), 4)
    meta = ModelMetadata(("a", "b", "c", "d"), Preprocessing(32, 32, 1))
    # Which folder holds which class is matched afterwards (data/class_map.py): the sidecar's names win.
    assert model_class_names(model, CLASSES, meta) == ("a", "b", "c", "d")
    assert model_class_names(model, ("DME", "NORMAL"), None, ("w", "x", "y", "z")) == ("w", "x", "y", "z")
    assert model_class_names(model, ("cnv", "Dme", "Drusen", "Normal"), None) == ("cnv", "Dme", "Drusen", "Normal")
    with pytest.raises(ConfigError, match="disagrees with the model's sidecar"):
        model_class_names(model, CLASSES, meta, ("w", "x", "y", "z"))
    with pytest.raises(ConfigError, match="gives 3 classes"):
        model_class_names(model, CLASSES, None, ("w", "x", "y"))


def test_model_whose_input_cannot_take_images_is_refused():
    inputs = keras.Input((100,))
    flat = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(inputs))
    with pytest.raises(ModelError, match="needs images"):
        preprocessing_for(flat, None)
    inputs = keras.Input((32, 32, 4))
    four = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Flatten()(inputs)))
    with pytest.raises(ModelError, match="4 channels"):
        preprocessing_for(four, None)


def test_sidecar_that_does_not_match_the_model_is_refused(tmp_path):
    model = build_model("notebook", (32, 32, 1), 4)
    with pytest.raises(ModelError, match="does not match"):
        preprocessing_for(model, Preprocessing(64, 64, 1))
    path = tmp_path / "m.keras"
    model.save(path)
    sidecar_path(path).write_text("{broken")
    with pytest.raises(ModelError, match="not a valid octreport model description"):
        load_model(path)
