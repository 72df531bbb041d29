"""What differs between devices (issue 26): the training augmentations of field of view, retina
position and tilt, speckle and blur, and the device-like variants of benchmarks/export_variants.py,
each on tiny images."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT
from octreport.config import TrainConfig
from octreport.data.augmentation import Augmentation
from octreport.data.augmentation_layers import RandomDeviceGeometry, RandomSpeckleBlur, augmentation_layers
from octreport.errors import ConfigError


def band_image(batch: int = 4, height: int = 32, width: int = 64, row: int = 20) -> np.ndarray:
    """A dark scan (0.1 everywhere, the top rows too) with a bright 2-row band at ``row``: an RPE."""
    images = np.full((batch, height, width, 1), 0.1, np.float32)
    images[:, row:row + 2] = 0.9
    return images


def band_rows(images: np.ndarray, column: int) -> np.ndarray:
    """The row of the brightest pixel of ``column`` in each image."""
    return images[:, :, column, 0].argmax(axis=1)


def test_settings_live_in_the_train_config_and_are_checked():
    config = TrainConfig(field_of_view_augment=0.3, vertical_shift_augment=0.1, tilt_augment=0.1, speckle_augment=0.2,
                         blur_augment=1.0)
    augmentation = config.augmentation()
    assert (augmentation.field_of_view, augmentation.vertical_shift, augmentation.tilt) == (0.3, 0.1, 0.1)
    assert "field of view x0.74-1.35" in augmentation.describe() and "blur up to 1 px" in augmentation.describe()
    names = [layer.__class__.__name__ for layer in augmentation_layers(0, augmentation).layers]
    assert names[-2:] == ["RandomDeviceGeometry", "RandomSpeckleBlur"]
    assert "RandomDeviceGeometry" not in [layer.__class__.__name__ for layer in augmentation_layers(0).layers]
    for field, value in (("tilt_augment", 0.9), ("speckle_augment", -0.1), ("field_of_view_augment", 2.0)):
        with pytest.raises(ConfigError, match="augmentation must be 0 to"):
            TrainConfig(**{field: value})


def test_vertical_shift_moves_the_band_and_tilt_slopes_it():
    images = band_image()
    shifted = np.asarray(RandomDeviceGeometry(0.0, 0.25, 0.0, seed=3)(images, training=True))
    rows = band_rows(shifted, 32)
    assert shifted.shape == images.shape and 0 <= shifted.min() and shifted.max() <= 1
    assert np.all(np.abs(rows - 20) <= 8) and np.ptp(rows) > 0  # each image its own shift, within 25% of 32 rows
    assert np.all(band_rows(shifted, 5) == rows)  # no tilt: the band stays level
    tilted = np.asarray(RandomDeviceGeometry(0.0, 0.0, 0.25, seed=4)(images, training=True))
    slope = band_rows(tilted, 60) - band_rows(tilted, 3)
    assert np.all(np.abs(slope) <= 8) and np.any(np.abs(slope) >= 2)
    assert np.all(np.abs(band_rows(tilted, 32) - 20) <= 1)  # tilted about the centre
    assert np.array_equal(np.asarray(RandomDeviceGeometry(0.3, 0.2, 0.2, seed=4)(images, training=False)), images)


def test_a_narrower_retina_sits_in_a_frame_of_speckle_and_a_wider_one_is_cropped():
    # A scan whose retina band spans the whole width: shrunk, its sides are background (the level of
    # the top rows, 0.1, with speckle); cropped, the band still spans the width.
    images = band_image(batch=16)
    images[:, :, :, 0] += np.linspace(0, 0.05, 64, dtype=np.float32)  # a left-to-right ramp to see the scale
    out = np.asarray(RandomDeviceGeometry(0.5, 0.0, 0.0, seed=5)(images, training=True))
    assert out.shape == images.shape and 0 <= out.min() and out.max() <= 1
    band_at_edge = out[:, 20, 0, 0]
    shrunk, widened = band_at_edge < 0.5, band_at_edge > 0.8
    assert shrunk.any() and widened.any()  # both directions drawn
    sides = out[shrunk][:, :, :3, 0]
    assert abs(sides.mean() - 0.1) < 0.04 and sides.std() > 0.03  # speckle at the background's level
    np.testing.assert_allclose(out[widened][:, 20, :, 0], 0.9 + np.zeros((int(widened.sum()), 64)), atol=0.06)


def test_speckle_and_blur_keep_shape_range_and_mean():
    images = band_image(batch=8)
    noisy = np.asarray(RandomSpeckleBlur(0.5, 0.0, seed=6)(images, training=True))
    assert noisy.shape == images.shape and 0 <= noisy.min() and noisy.max() <= 1
    assert noisy[:, 20].std() > 0.01 and abs(noisy.mean() - images.mean()) < 0.03  # multiplicative, mean kept
    blurred = np.asarray(RandomSpeckleBlur(0.0, 2.0, seed=7)(images, training=True))
    assert blurred.shape == images.shape and 0 <= blurred.min() and blurred.max() <= 1
    assert blurred[:, 20, 32, 0].min() < 0.9 and blurred[:, 17, 32, 0].max() > 0.1  # the band spreads
    assert np.array_equal(np.asarray(RandomSpeckleBlur(0.5, 2.0)(images, training=False)), images)


def _load_variants():
    spec = importlib.util.spec_from_file_location("export_variants", REPO_ROOT / "benchmarks" / "export_variants.py")
    sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))  # dataclasses look their module up there
    spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules[spec.name]


def test_device_like_variants_on_a_tiny_scan():
    variants = _load_variants()
    pixels = np.full((40, 100), 30, np.uint8)
    pixels[24:27] = 230  # the band
    scan = Image.fromarray(pixels, "L")
    by_name = {v.name: v.transform for v in variants.VARIANTS}
    rng = lambda: np.random.default_rng(0)  # noqa: E731

    wider = np.asarray(by_name["wider field"](scan, rng()))
    assert wider.shape == (40, 100) and wider.dtype == np.uint8
    assert wider[25, 20:80].min() > 200 and wider[25, :12].max() < 150  # the band 70% wide, sides background
    assert abs(wider[25, :12].mean() - 30) < 15  # speckle at the top rows' level
    narrower = np.asarray(by_name["narrower field"](scan, rng()))
    assert narrower.shape == (40, 70) and narrower[25].min() > 200
    tilted = np.asarray(by_name["shifted, tilted"](scan, rng()))
    assert tilted.shape == (40, 100)
    left, right = tilted[:, 10].argmax(), tilted[:, 90].argmax()
    assert left != right and 27 <= tilted[:, 50].argmax() <= 31  # sloped, and 4 rows (10%) lower
    speckle = np.asarray(by_name["speckle"](scan, rng()))
    assert speckle.shape == (40, 100) and speckle[:20].std() > 3 and abs(speckle[:20].mean() - 30) < 3
    contrast = np.asarray(by_name["lower contrast"](scan, rng()))
    assert contrast.min() >= 38 and contrast.max() <= 179 and contrast[25].min() > contrast[5].max()
    rgb = by_name["RGB-encoded"](scan, rng())
    assert rgb.mode == "RGB" and np.array_equal(np.asarray(rgb)[..., 0], np.asarray(rgb)[..., 2])
    assert np.array_equal(np.asarray(by_name["wider field"](scan, rng())), wider)  # seeded: the same files each run


@pytest.mark.parametrize("band_row", [60, 110, 150])
def test_the_retina_crop_finds_a_synthetic_band_where_it_is(tmp_path, band_row):
    # A 160 x 320 scan with speckle and a bright 6-row band at band_row: the "retina" fit keeps 70%
    # of the height with the band at 65% of the window (moved inside the image near its edges).
    from octreport.data.layout import ImageItem
    from octreport.data.pipeline import load_images
    from octreport.data.preprocessing import RETINA_ABOVE, RETINA_WINDOW, Preprocessing

    rng = np.random.default_rng(band_row)
    pixels = np.clip(rng.normal(40, 12, (160, 320)), 0, 255)
    pixels[band_row:band_row + 6] = 220
    pixels[band_row - 30:band_row] += 50  # retina tissue above the RPE, less bright
    Image.fromarray(pixels.astype(np.uint8), "L").save(tmp_path / "scan.png")
    image = load_images([ImageItem(tmp_path / "scan.png", 0)], Preprocessing(64, 128, aspect="retina"))[0]
    assert image.shape == (64, 128, 1) and 0 <= image.min() and image.max() <= 1
    window = round(RETINA_WINDOW * 160)
    top = min(max(band_row + 3 - round(RETINA_ABOVE * window), 0), 160 - window)
    expected = (band_row + 3 - top) * 64 / window  # the band's centre, in rows of the model input
    assert abs(image[:, :, 0].mean(axis=1).argmax() - expected) <= 2
    with pytest.raises(ConfigError, match="aspect must be one of"):
        Preprocessing(aspect="middle")
