"""The synthetic OCT generator and the committed sample data it made.

Class differences are checked the way a user would look at the images: dark blobs inside the
retina for DME, a bumpy RPE line for DRUSEN and CNV, and no class told apart by brightness alone.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from octreport.errors import ConfigError
from octreport.data.synthetic import (
    CLASS_NAMES,
    JPEG_QUALITY,
    generate_bscan,
    plan_sample_dataset,
    render_sample,
    write_sample_dataset,
)

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"
SAMPLE_DATA_LIMIT_BYTES = 3 * 1024 * 1024
NAME = re.compile(r"^(?P<cls>[A-Z]+)-(?P<patient>\d+)-(?P<number>\d+)\.jpeg$")


# --- helpers (test-only: simple image measurements) -------------------------------------------


def _box_mean(img: np.ndarray, ry: int, rx: int) -> np.ndarray:
    """Mean over a (2ry+1) x (2rx+1) window, edges repeated."""
    a = np.pad(img.astype(float), ((ry, ry), (rx, rx)), mode="edge")
    c = np.pad(a.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    h, w = img.shape
    ky, kx = 2 * ry + 1, 2 * rx + 1
    return (c[ky:ky + h, kx:kx + w] - c[:h, kx:kx + w] - c[ky:ky + h, :w] + c[:h, :w]) / (ky * kx)


def _retina_measures(img: np.ndarray) -> tuple[float, float]:
    """(fraction of dark pixels inside the retina, RPE roughness in px) of one B-scan.

    Per column: the inner surface is the first row clearly above the background, the RPE is the
    lowest row at least 70% as bright as the column's brightest. Dark means close to the
    background level. Roughness is the mean distance of the RPE rows from a fitted parabola,
    so tilt and curvature do not count.
    """
    s = _box_mean(img, 1, 1)
    background, top_level = s[:8].mean(), np.percentile(s, 99)
    surface = background + 0.3 * (top_level - background)
    dark = background + 0.12 * (top_level - background)
    rpe = np.empty(img.shape[1])
    n_dark = n_band = 0
    for x in range(img.shape[1]):
        col = s[:, x]
        rpe[x] = np.nonzero(col >= 0.7 * col.max())[0][-1]
        inner = np.nonzero(col > surface)[0][0]
        band = col[inner + 2:int(rpe[x]) - 4]
        n_dark += int((band < dark).sum())
        n_band += band.size
    xs = np.arange(rpe.size)
    residual = rpe - np.polyval(np.polyfit(xs, rpe, 2), xs)
    return n_dark / max(n_band, 1), float(np.mean(np.abs(residual)))


def _class_measures(class_name: str, n: int = 12, seed: int = 11) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([_retina_measures(generate_bscan(class_name, rng)) for _ in range(n)])


def _jpeg_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.jpeg"))


# --- generate_bscan ---------------------------------------------------------------------------


@pytest.mark.parametrize("class_name", CLASS_NAMES)
def test_bscan_is_grayscale_uint8_of_the_requested_size(class_name):
    img = generate_bscan(class_name, np.random.default_rng(0))
    assert img.shape == (128, 256) and img.dtype == np.uint8
    other = generate_bscan(class_name, np.random.default_rng(0), height=96, width=200)
    assert other.shape == (96, 200)


@pytest.mark.parametrize("class_name", CLASS_NAMES)
def test_same_seed_gives_the_same_bscan_and_another_seed_does_not(class_name):
    a = generate_bscan(class_name, np.random.default_rng(42))
    b = generate_bscan(class_name, np.random.default_rng(42))
    c = generate_bscan(class_name, np.random.default_rng(43))
    np.testing.assert_array_equal(a, b)
    assert np.mean(a != c) > 0.5


def test_global_numpy_random_state_is_untouched():
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    generate_bscan("CNV", np.random.default_rng(1))
    np.testing.assert_array_equal(np.random.random(3), expected)


def test_unknown_class_and_tiny_size_are_refused():
    with pytest.raises(ConfigError, match="expected one of CNV, DME, DRUSEN, NORMAL"):
        generate_bscan("AMD", np.random.default_rng(0))
    with pytest.raises(ConfigError, match="too small"):
        generate_bscan("NORMAL", np.random.default_rng(0), height=16, width=16)


# --- the classes differ by retinal shape, not brightness -------------------------------------


def test_dme_has_dark_blobs_inside_the_retina_that_normal_lacks():
    dme, normal = _class_measures("DME")[:, 0], _class_measures("NORMAL")[:, 0]
    assert dme.mean() > 0.005
    assert dme.mean() > 10 * normal.mean()
    assert np.mean(dme > normal.max()) >= 0.75  # most DME scans, not just a few


@pytest.mark.parametrize("class_name", ["DRUSEN", "CNV"])
def test_drusen_and_cnv_have_a_bumpier_rpe_than_normal(class_name):
    bumpy, normal = _class_measures(class_name)[:, 1], _class_measures("NORMAL")[:, 1]
    assert bumpy.mean() > 2 * normal.mean()
    assert np.median(bumpy) > normal.max()


def test_class_mean_brightness_is_the_same_within_a_few_grey_levels():
    means = []
    for class_name in CLASS_NAMES:
        rng = np.random.default_rng(5)
        means.append(np.mean([generate_bscan(class_name, rng).mean() for _ in range(24)]))
    assert max(means) - min(means) < 4.0, dict(zip(CLASS_NAMES, np.round(means, 1)))


# --- the sample data set ----------------------------------------------------------------------


def test_write_returns_counts_and_uses_the_kermany_layout(tmp_path):
    counts = write_sample_dataset(tmp_path / "data", seed=3, train_per_class=7, test_per_class=4)
    expected = {"train": dict.fromkeys(CLASS_NAMES, 7), "test": dict.fromkeys(CLASS_NAMES, 4)}
    assert counts == expected
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["test", "train"]
    images_per_patient = defaultdict(list)
    for path in _jpeg_files(tmp_path / "data"):
        split, class_name = path.parent.parent.name, path.parent.name
        match = NAME.match(path.name)
        assert match and match["cls"] == class_name, path
        images_per_patient[(split, class_name, match["patient"])].append(int(match["number"]))
        with Image.open(path) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "L", (256, 128))
    assert sum(len(v) for v in images_per_patient.values()) == 44
    for numbers in images_per_patient.values():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)) and len(numbers) <= 4


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_test_patients_are_not_train_patients(seed):
    plan = plan_sample_dataset(seed)  # what write_sample_dataset writes (checked above and below)
    for class_name in CLASS_NAMES:
        patients = {
            split: {i.patient_id for i in plan if (i.split, i.class_name) == (split, class_name)}
            for split in ("train", "test")
        }
        assert len(patients["train"]) >= 10 and len(patients["test"]) >= 3
        assert not patients["train"] & patients["test"]


def test_same_seed_writes_identical_files_and_another_seed_does_not(tmp_path):
    for name, seed in [("a", 9), ("b", 9), ("c", 10)]:
        write_sample_dataset(tmp_path / name, seed=seed, train_per_class=3, test_per_class=2)
    a, b, c = (_jpeg_files(tmp_path / name) for name in "abc")
    assert [p.relative_to(tmp_path / "a") for p in a] == [p.relative_to(tmp_path / "b") for p in b]
    assert all(p.read_bytes() == q.read_bytes() for p, q in zip(a, b))
    assert [p.name for p in a] != [p.name for p in c]


def test_non_empty_folder_is_refused_unless_overwrite(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not empty"):
        write_sample_dataset(tmp_path, seed=0, train_per_class=2, test_per_class=1)
    write_sample_dataset(tmp_path, seed=0, train_per_class=2, test_per_class=1, overwrite=True)
    write_sample_dataset(tmp_path, seed=1, train_per_class=2, test_per_class=1, overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    expected = {item.relative_path for item in plan_sample_dataset(1, 2, 1)}
    assert {p.relative_to(tmp_path) for p in _jpeg_files(tmp_path)} == expected


def test_bad_counts_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="at least one"):
        write_sample_dataset(tmp_path, train_per_class=0)
    assert not any(tmp_path.iterdir())


# --- the committed sample_data/ ---------------------------------------------------------------


def test_committed_sample_data_has_every_class_in_train_and_test_and_is_small():
    for split in ("train", "test"):
        assert sorted(p.name for p in (SAMPLE_DATA / split).iterdir()) == sorted(CLASS_NAMES)
        for class_name in CLASS_NAMES:
            assert any((SAMPLE_DATA / split / class_name).glob("*.jpeg")), (split, class_name)
    assert not (SAMPLE_DATA / "val").exists()
    total = sum(p.stat().st_size for p in SAMPLE_DATA.rglob("*") if p.is_file())
    assert total <= SAMPLE_DATA_LIMIT_BYTES
    assert "synthetic" in (SAMPLE_DATA / "README.md").read_text().lower()


def test_committed_sample_data_is_what_the_generator_makes_with_seed_0():
    plan = plan_sample_dataset(seed=0)
    committed = {p.relative_to(SAMPLE_DATA) for p in _jpeg_files(SAMPLE_DATA)}
    expected = {item.relative_path for item in plan}
    assert committed == expected, "out of date: regenerate as sample_data/README.md says"
    firsts = {(item.split, item.class_name): item for item in reversed(plan)}
    for item in firsts.values():  # compare decoded pixels: JPEG bytes may differ across libjpegs
        with Image.open(SAMPLE_DATA / item.relative_path) as im:
            stored = np.asarray(im, dtype=float)
        # The scan drawn with the item's seed, or one of its first redraws (distinct_samples).
        differences = []
        for attempt in range(4):
            buffer = io.BytesIO()
            Image.fromarray(render_sample(item, attempt=attempt)).save(buffer, format="JPEG", quality=JPEG_QUALITY)
            differences.append(np.mean(np.abs(np.asarray(Image.open(buffer), dtype=float) - stored)))
            if differences[-1] < 1.0:
                break
        assert min(differences) < 1.0, item.relative_path
