"""The tf.data pipeline: decode, convert channels, fit the size, batch; damaged files dropped by name."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import OCT_REAL, write_image
from octreport.data.augmentation_layers import augmentation_layers
from octreport.data.layout import ImageItem, scan_dataset
from octreport.data.pipeline import image_dataset, load_images, normalize_intensity, order_statistic
from octreport.data.preprocessing import Preprocessing
from octreport.errors import ConfigError


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("mode, suffix", [("L", ".jpeg"), ("RGB", ".jpeg"), ("L", ".png"), ("RGB", ".png")])
def test_any_file_becomes_model_input(tmp_path, channels, mode, suffix):
    path = write_image(tmp_path / f"x{suffix}", size=(50, 120), mode=mode)
    images = load_images([ImageItem(path, 0)], Preprocessing(32, 48, channels))
    assert images.shape == (1, 32, 48, channels)
    assert images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_pad_keeps_the_aspect_ratio_and_crop_takes_the_centre(tmp_path):
    pixels = np.zeros((20, 80), np.uint8)
    pixels[:, 35:45] = 255  # a bright band in the centre half of the 20 px centre crop
    from PIL import Image

    Image.fromarray(pixels).save(tmp_path / "wide.png")
    item = [ImageItem(tmp_path / "wide.png", 0)]
    padded = load_images(item, Preprocessing(40, 40, 1, aspect="pad"))[0, :, :, 0]
    assert padded[:12].max() < 0.05 and padded[-12:].max() < 0.05  # black bars above and below
    cropped = load_images(item, Preprocessing(40, 40, 1, aspect="crop"))[0, :, :, 0]
    assert cropped[:, 20].mean() > 0.9 and cropped[:, 0].mean() < 0.05


@pytest.mark.parametrize("size", [1, 2, 7, 100, 101, 32768])
@pytest.mark.parametrize("percentile", [0.0, 1.0, 37.0, 99.0, 100.0])
def test_order_statistic_is_the_sorted_value_at_the_rounded_rank(size, percentile):
    rng = np.random.default_rng(size)
    for values in (rng.random(size), rng.integers(0, 3, size) / 2.0, np.zeros(size)):  # distinct, ties, constant
        values = values.astype(np.float32)
        rank = int(np.round(np.float32(size - 1) * np.float32(percentile) / np.float32(100)))
        assert float(order_statistic(values, percentile)) == np.sort(values)[rank]


def test_percentile_normalization_maps_the_1st_and_99th_percentiles_to_0_and_1():
    image = np.random.default_rng(0).random((128, 256, 1)).astype(np.float32) * 0.5 + 0.2
    low, high = np.sort(image.ravel())[[328, 32439]]  # round(32767 * 0.01), round(32767 * 0.99)
    out = normalize_intensity(image, Preprocessing(128, 256, 1, normalization="percentile")).numpy()
    assert out[image <= low].max() == 0.0 and out[image >= high].min() == 1.0
    inside = (image > low) & (image < high)
    assert np.allclose(out[inside], (image[inside] - low) / (high - low), atol=1e-6)


def test_batches_keep_labels_and_order(tmp_path):
    items = [ImageItem(write_image(tmp_path / f"{k}.jpeg", value=40 * k), k % 2) for k in range(5)]
    batches = list(image_dataset(items, Preprocessing(16, 16, 1), batch_size=2, with_index=True))
    assert [len(b[0]) for b in batches] == [2, 2, 1]
    labels = np.concatenate([b[1].numpy() for b in batches])
    indices = np.concatenate([b[2].numpy() for b in batches])
    assert labels.tolist() == [0, 1, 0, 1, 0] and indices.tolist() == [0, 1, 2, 3, 4]
    means = np.concatenate([b[0].numpy().mean(axis=(1, 2, 3)) for b in batches])
    assert np.all(np.diff(means) > 0)


def test_file_that_fails_to_decode_is_dropped_not_fatal(tmp_path):
    good = write_image(tmp_path / "good.jpeg")
    bad = tmp_path / "bad.jpeg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"garbage" * 20 + b"\xff\xd9")
    items = [ImageItem(bad, 0), ImageItem(good, 1)]
    batches = list(image_dataset(items, Preprocessing(16, 16, 1), batch_size=4, with_index=True))
    assert np.concatenate([b[2].numpy() for b in batches]).tolist() == [1]


def test_augmentation_never_turns_a_retina_upside_down():
    images = np.zeros((16, 32, 32, 1), np.float32)
    images[:, :8] = 1.0  # bright top, dark bottom
    augmented = np.asarray(augmentation_layers(seed=0)(images, training=True))
    assert np.all(augmented[:, :10].mean(axis=(1, 2, 3)) > augmented[:, -10:].mean(axis=(1, 2, 3)))


def test_preprocessing_validates_its_values():
    with pytest.raises(ConfigError, match="channels"):
        Preprocessing(channels=2)
    with pytest.raises(ConfigError, match="aspect"):
        Preprocessing(aspect="squash")


@pytest.mark.skipif(not OCT_REAL.is_dir(), reason="../shared/oct-real is not present")
def test_real_bscans_stream_through_the_pipeline():
    scanned = scan_dataset(OCT_REAL)
    assert scanned.class_names == ("CNV", "DME", "DRUSEN", "NORMAL")
    items = list(scanned.splits["all"])
    # Include the odd ones: 3-channel JPEGs and every width present.
    from PIL import Image

    by_shape = {}
    for item in items:
        with Image.open(item.path) as image:
            by_shape.setdefault((image.size, image.mode), item)
    chosen = list(by_shape.values())
    assert len(chosen) >= 4
    images, labels = next(iter(image_dataset(chosen, Preprocessing(96, 96, 1), batch_size=len(chosen))))
    assert images.shape == (len(chosen), 96, 96, 1)
    assert float(images.numpy().std()) > 0.02
