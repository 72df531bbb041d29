"""The oct-real recipe: its preset, its intensity normalization, its learning-rate schedule, the
disk cache of decoded images, and the cross-validation's fold and validation assignment."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from collections import Counter

import keras
import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT, write_class_folders, write_image
from octreport.config import TrainConfig
from octreport.data.layout import ImageItem, scan_dataset
from octreport.data.pipeline import image_dataset, load_images
from octreport.data.preprocessing import Preprocessing
from octreport.data.splits import patient_id
from octreport.errors import ConfigError
from octreport.models.architectures import build_model
from octreport.models.metadata import ModelMetadata
from octreport.models.recipes import PRESETS, preset_config
from octreport.models.training import best_validation_epoch, learning_rate_for


def _load_crossval():
    path = REPO_ROOT / "benchmarks" / "crossval_oct_real.py"
    spec = importlib.util.spec_from_file_location("crossval_oct_real", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules[spec.name]


def test_oct_real_preset_builds_a_model_whose_input_matches_its_preprocessing():
    preset = PRESETS["oct-real"]
    assert isinstance(preset, TrainConfig)
    prep = preset.preprocessing
    assert (prep.height, prep.width, prep.channels) == (128, 256, 1)
    assert prep.normalization == "percentile" and prep.aspect == "stretch"
    assert preset.augmentation().width_scale > 0 and preset.augmentation().gamma > 0
    model = build_model(preset.architecture, prep.input_shape, 4)
    assert tuple(model.input_shape[1:]) == prep.input_shape
    assert model.output_shape == (None, 4)
    assert any(isinstance(l, keras.layers.SeparableConv2D) for l in model.layers)
    assert model.count_params() < 200_000


def _retina_scan(width: int, height: int = 496) -> Image.Image:
    """A smooth synthetic B-scan: a bright, curved band (the retina) with a dip (the fovea) over
    the same field of view at any ``width``, as another export's lateral sampling."""
    x = np.linspace(-1, 1, width)[None, :]
    y = np.arange(height)[:, None]
    top = 200 + 60 * x**2 - 40 * np.exp(-(x / 0.15) ** 2)
    pixels = 40 + 170 * np.exp(-(((y - top - 40) / 35) ** 2)) + 30 * np.sin(6 * x) * (np.abs(y - top - 40) < 20)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def test_the_recipe_brings_a_scan_and_its_wider_exports_to_the_same_input(tmp_path):
    """The same retina exported 512, 768, 1024 or 1536 px wide reaches an oct-real model alike
    (issue 13); the former centre crop at the pixel scale gave a 512-wide scan twice the zoom."""
    for width in (512, 768, 1024, 1536):
        _retina_scan(width).save(tmp_path / f"scan-{width}.jpeg", quality=95)
    items = [ImageItem(tmp_path / f"scan-{w}.jpeg", 0) for w in (512, 768, 1024, 1536)]
    recipe = PRESETS["oct-real"].preprocessing
    inputs = load_images(items, recipe)
    for other in (0, 1, 3):
        assert np.abs(inputs[other] - inputs[2]).mean() < 0.02, f"export {items[other].path.name}"
    cropped = load_images(items, dataclasses.replace(recipe, aspect="crop"))
    assert np.abs(cropped[0] - cropped[2]).mean() > 5 * np.abs(inputs[0] - inputs[2]).mean()


def test_export_augmentations_change_width_and_intensity_curve_only():
    from octreport.data.augmentation import Augmentation
    from octreport.data.augmentation_layers import RandomGamma, augmentation_layers

    rows = np.linspace(0.05, 0.95, 32, dtype=np.float32)[None, :, None, None] * np.ones((8, 32, 64, 1), np.float32)
    gamma = np.asarray(RandomGamma(0.3, seed=1)(rows, training=True))
    assert gamma.min() >= 0 and gamma.max() <= 1
    assert np.all(np.diff(gamma[:, :, 0, 0], axis=1) > 0)  # a curve: the order of intensities is kept
    assert np.ptp(gamma[:, 16, 0, 0]) > 0.05  # each image its own gamma
    assert np.array_equal(np.asarray(RandomGamma(0.3, seed=1)(rows, training=False)), rows)
    widened = np.asarray(augmentation_layers(0, Augmentation(width_scale=0.3)).layers[-1](rows, training=True))
    np.testing.assert_allclose(widened[:, :, 20:44], rows[:, :, 20:44], atol=1e-5)  # rows stay where they were
    with pytest.raises(ConfigError, match="gamma augmentation"):
        TrainConfig(gamma_augment=2.0)


def test_preset_overrides_replace_values_and_unknown_presets_are_refused():
    config = preset_config("oct-real", epochs=5, seed=3)
    assert (config.epochs, config.seed, config.architecture) == (5, 3, "compact-bn")
    assert config.lr_schedule == "cosine"
    with pytest.raises(ConfigError, match="Unknown preset 'nope'"):
        preset_config("nope")
    with pytest.raises(ConfigError, match="lr schedule"):
        TrainConfig(lr_schedule="step")


def test_percentile_normalization_stretches_the_1st_to_99th_percentile(tmp_path):
    pixels = np.full((100, 100), 100, np.uint8)
    pixels[:50] = 60  # half the image at 60, half at 100; a single outlier does not count
    pixels[0, 0] = 255
    Image.fromarray(pixels).save(tmp_path / "flat.png")
    item = [ImageItem(tmp_path / "flat.png", 0)]
    plain = load_images(item, Preprocessing(100, 100, 1))[0, ..., 0]
    scaled = load_images(item, Preprocessing(100, 100, 1, normalization="percentile"))[0, ..., 0]
    np.testing.assert_allclose(plain[60:], 100 / 255, atol=1e-6)
    np.testing.assert_allclose(scaled[:50, 1:], 0.0, atol=1e-6)
    np.testing.assert_allclose(scaled[50:], 1.0, atol=1e-6)
    assert scaled[0, 0] == pytest.approx(1.0)  # clipped, not beyond [0, 1]


def test_a_flat_image_is_left_as_it_is_by_percentile_normalization(tmp_path):
    path = write_image(tmp_path / "flat.png", size=(20, 20), value=80)
    scaled = load_images([ImageItem(path, 0)], Preprocessing(20, 20, 1, normalization="percentile"))
    np.testing.assert_allclose(scaled, 80 / 255, atol=1e-6)


def test_normalization_is_saved_with_the_model_and_old_sidecars_load_without_it():
    prep = Preprocessing(128, 256, 1, "crop", "percentile")
    meta = ModelMetadata(("A", "B"), prep)
    assert ModelMetadata.from_dict(meta.to_dict()).preprocessing == prep
    assert Preprocessing.from_dict({"height": 64, "width": 64, "channels": 1, "aspect": "pad"}).normalization == "none"
    assert "percentile" in prep.describe()
    with pytest.raises(ConfigError, match="normalization"):
        Preprocessing(normalization="zscore")


def test_disk_cache_gives_the_same_images_and_is_only_read_after_the_first_pass(tmp_path):
    items = [ImageItem(write_image(tmp_path / "img" / f"{k}.jpeg", size=(24, 48), seed=k), k % 2) for k in range(5)]
    prep = Preprocessing(16, 32, 1, "crop", "percentile")
    direct = np.concatenate([b[0].numpy() for b in image_dataset(items, prep, 2)])
    cached = image_dataset(items, prep, 2, cache_file=tmp_path / "cache" / "train")
    (tmp_path / "cache").mkdir()
    first = np.concatenate([b[0].numpy() for b in cached])
    for path in items:
        path.path.unlink()  # a second pass must not need the files any more
    second = np.concatenate([b[0].numpy() for b in cached])
    np.testing.assert_allclose(first, direct, atol=0.5 / 255 + 1e-6)
    np.testing.assert_array_equal(first, second)


def test_cosine_schedule_warms_up_then_decays_to_zero():
    config = TrainConfig(epochs=10, learning_rate=0.01, lr_schedule="cosine", warmup_epochs=2)
    schedule = learning_rate_for(config, steps_per_epoch=10)
    rates = [float(schedule(step)) for step in (0, 10, 20, 60, 100)]
    assert rates[0] == pytest.approx(0.001)
    assert rates[1] == pytest.approx(0.0055)
    assert rates[2] == pytest.approx(0.01)
    assert rates[2] > rates[3] > rates[4]
    assert rates[4] == pytest.approx(0.0, abs=1e-9)
    assert learning_rate_for(TrainConfig(learning_rate=0.003), 10) == 0.003
    one_epoch = learning_rate_for(preset_config("oct-real", epochs=1), steps_per_epoch=10)
    assert float(one_epoch(0)) == pytest.approx(0.002)  # no room to warm up: decay from the start


def test_crossval_folds_keep_patients_disjoint_and_validate_outside_the_evaluated_fold(tmp_path):
    crossval = _load_crossval()
    root = write_class_folders(tmp_path / "data", patients=10, per_patient=2, size=(8, 8))
    items = crossval.quick_subset(scan_dataset(root).splits["all"], patients_per_class=8)
    assert len({patient_id(i) for i in items}) == 32
    splits = crossval.assign_folds(items, folds=4, seed=0, val_fraction=0.25)
    tested = Counter(patient_id(i) for s in splits for i in s.test)
    assert set(tested) == {patient_id(i) for i in items}  # every patient evaluated in exactly one fold
    assert sum(len(s.test) for s in splits) == len(items)
    for split in splits:
        test = {patient_id(i) for i in split.test}
        train = {patient_id(i) for i in split.train}
        val = {patient_id(i) for i in split.val}
        assert split.val and split.train
        assert not (val & test) and not (train & test) and not (train & val)
        assert not set(split.val) & set(split.test)
        assert set(split.train) | set(split.val) | set(split.test) == set(items)
    with pytest.raises(ValueError, match="at least 2 folds"):
        crossval.assign_folds(items, folds=1, seed=0, val_fraction=0.25)


def test_crossval_overrides_change_one_value_of_a_frozen_config():
    crossval = _load_crossval()
    config = crossval.apply_overrides(PRESETS["oct-real"], ["epochs=3", "preprocessing.normalization=none", "lr_schedule=constant"])
    assert (config.epochs, config.preprocessing.normalization, config.lr_schedule) == (3, "none", "constant")
    assert config.preprocessing.width == 256
    assert dataclasses.replace(config) == config


def test_crossval_reports_each_mean_with_its_interval_and_pooled_intervals():
    from octreport.evaluation.bootstrap_settings import BootstrapSettings

    crossval = _load_crossval()
    rng = np.random.default_rng(0)
    names = ("CNV", "DME", "DRUSEN", "NORMAL")
    results = []
    for fold, share in enumerate((0.91, 0.905, 0.96, 0.945, 0.955)):
        y = np.repeat(np.arange(4), 50)
        right = np.arange(200) < round(share * 200)
        p = np.full((200, 4), 0.05)
        p[np.arange(200), np.where(right, y, (y + 1) % 4)] = 0.85
        results.append({"fold": fold, "scored_images": 200, "best_epoch": 3, "epochs_run": 4, "accuracy": share,
                        "sensitivity": {n: float(right[y == k].mean()) for k, n in enumerate(names)},
                        "referral": None, "train_seconds": 600.0,
                        "predictions": {"labels": y.tolist(), "probabilities": p.tolist(), "paths": [],
                                        "patients": [f"patient:{fold}-{i // 2}" for i in range(200)]}})
    summary = crossval.summarize(results)
    assert summary["accuracy"]["mean"] == pytest.approx(0.935)
    assert (summary["accuracy"]["ci_low"], summary["accuracy"]["ci_high"]) == pytest.approx((0.9030, 0.9670), abs=1e-4)
    assert summary["sens CNV"]["ci_high"] <= 1.0  # a share's interval stops at 100%
    assert "| **95% CI of the mean** | | 0.903-0.967 |" in crossval.markdown_table(results, summary)
    pooled = crossval.pooled_intervals(results, names, BootstrapSettings(200))
    assert (pooled["n_images"], pooled["unit"], pooled["n_units"]) == (1000, "patient", 500)
    assert pooled["accuracy"]["value"] == pytest.approx(0.935) and pooled["accuracy"]["method"] == "wilson"
    assert "| accuracy | 93.5% (95% CI 91.8–94.9) | wilson |" in crossval.pooled_table(pooled)


def test_restored_epoch_ignores_epochs_before_early_stopping_starts():
    losses = [0.9, 0.2, 0.5, 0.4, 0.45]
    assert best_validation_epoch(losses) == 2
    assert best_validation_epoch(losses, start=2) == 4
    assert best_validation_epoch(losses, start=9) == 5  # ended before monitoring began: last weights
    with pytest.raises(ConfigError, match="early stopping must start"):
        TrainConfig(early_stopping_start=-1)
