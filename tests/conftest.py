"""Shared test fixtures: tiny image folders written to pytest's temporary directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The weights cache of every run the tests make (child processes included) lies in a temporary
# folder, never in the user's cache; each test gets a fresh one (the autouse fixture below).
os.environ["OCTREPORT_CACHE_DIR"] = tempfile.mkdtemp(prefix="octreport-test-cache-")

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO_ROOT / "sample_data"
OCT_REAL = REPO_ROOT.parent / "shared" / "oct-real"
OCT_CLASSES = ("CNV", "DME", "DRUSEN", "NORMAL")


def write_image(path: Path, size=(32, 32), mode: str = "L", value: int | None = None, seed: int = 0) -> Path:
    """A small image whose content depends on ``value`` (class cue) or ``seed`` (noise)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    height, width = size
    pixels = rng.integers(0, 256, size=(height, width), dtype=np.uint8) if value is None else np.full((height, width), value, np.uint8)
    image = Image.fromarray(pixels, "L")
    if mode == "RGB":
        image = image.convert("RGB")
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    image.save(path, fmt)
    return path


def write_class_folders(root: Path, classes=OCT_CLASSES, patients: int = 4, per_patient: int = 2, size=(32, 32)) -> Path:
    """``root/CLASS/CLASS-PATIENT-N.jpeg`` with Kermany-style names."""
    for c, name in enumerate(classes):
        for p in range(patients):
            for n in range(1, per_patient + 1):
                write_image(root / name / f"{name}-{1000 + 10 * c + p}-{n}.jpeg", size, seed=c * 100 + p * 10 + n)
    return root


def write_learnable_kermany(root: Path, classes=OCT_CLASSES, patients: int = 6, per_patient: int = 2) -> Path:
    """Kermany layout where each class has its own brightness: a model learns it in an epoch or two."""
    for split in ("train", "test"):
        for c, name in enumerate(classes):
            for p in range(patients):
                for n in range(1, per_patient + 1):
                    patient = 1000 + 100 * c + p + (50 if split == "test" else 0)
                    write_image(root / split / name / f"{name}-{patient}-{n}.jpeg", value=30 + 60 * c)
    return root


def write_kermany(root: Path, classes=OCT_CLASSES, splits=("train", "test"), **kwargs) -> Path:
    for split in splits:
        write_class_folders(root / split, classes, **kwargs)
    return root


def two_conv_net(name: str = "backbone", with_input: bool = True):
    """The two-conv 16x16 network: conv_a (4 filters, 3x3) -> pool -> conv_b (8, 3x3, stride 2);
    without its Input when ``with_input`` is false (built when first called)."""
    import keras

    stack = [
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a"),
        keras.layers.MaxPooling2D(2, name="pool"),
        keras.layers.Conv2D(8, 3, strides=2, padding="same", name="conv_b"),
    ]
    return keras.Sequential(([keras.Input((16, 16, 1))] if with_input else []) + stack, name=name)


def brute_force_auc(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC as the share of (positive, negative) pairs ranked right, ties counting half."""
    positives, negatives = scores[is_positive], scores[~is_positive]
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def sample_slice(root: Path, per_class: int = 6) -> Path:
    """``root/slice``: a few images per class and split of the bundled sample_data (Kermany layout)."""
    folder = root / "slice"
    for split in ("train", "test"):
        for class_dir in sorted((SAMPLE_DATA / split).iterdir()):
            files = sorted(class_dir.iterdir())[: per_class * (3 if split == "train" else 1)]
            (folder / split / class_dir.name).mkdir(parents=True)
            for f in files:
                shutil.copy(f, folder / split / class_dir.name / f.name)
    return folder


def spawn(args: list[str], cwd: Path, **env: str) -> subprocess.Popen:
    """``python -m octreport ARGS`` in a child process, as a user runs it, from ``cwd``, with ``env``
    added to the environment; its standard output and error together in ``stdout``."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **env}
    return subprocess.Popen([sys.executable, "-m", "octreport", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run_cli(args: list[str], cwd: Path) -> tuple[int, str]:
    """:func:`spawn`, waited for: its exit code and output."""
    child = spawn(args, cwd)
    output, _ = child.communicate(timeout=600)
    return child.returncode, output


@pytest.fixture(autouse=True)
def weights_cache(tmp_path_factory, monkeypatch) -> Path:
    """A fresh, empty weights cache folder for each test (``$OCTREPORT_CACHE_DIR``)."""
    folder = tmp_path_factory.mktemp("weights-cache")
    monkeypatch.setenv("OCTREPORT_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def kermany_dir(tmp_path: Path) -> Path:
    return write_kermany(tmp_path / "data")


# A run that learns write_learnable_kermany's data (15 epochs of about 0.1 s) and draws little.
TINY_RUN = ["--epochs", "15", "--patience", "15", "--no-augment", "--learning-rate", "0.005", "--image-size", "32",
            "--batch-size", "8", "--images-per-class", "1", "--maps-per-layer", "4", "--filters-per-layer", "4",
            "--errors-per-cell", "0"]


@pytest.fixture(scope="session")
def conv_model(tmp_path_factory) -> Path:
    """A tiny untrained convolutional model (16x16x1 in, the four OCT classes out), saved as .keras."""
    import keras

    inputs = keras.Input((16, 16, 1))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3, activation="relu")(inputs))
    path = tmp_path_factory.mktemp("models") / "conv.keras"
    keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x)).save(path)
    return path


@pytest.fixture(scope="session")
def audited_run(tmp_path_factory):
    """One small complete run (trained until it tells the classes apart, HTML and PDF) on learnable
    32x32 data: ``(run folder, data folder)``.

    Shared by the run-folder, verify, model-card and layer-selection tests; tests that tamper with
    it, or write runs next to it, work on copies.
    """
    from click.testing import CliRunner

    from octreport.cli import main

    base = tmp_path_factory.mktemp("audited")
    data = write_learnable_kermany(base / "data")
    result = CliRunner().invoke(main, ["run", "--data", str(data), "--out", str(base / "runs"), *TINY_RUN])
    assert result.exit_code == 0, result.output
    return (base / "runs" / "latest").resolve(), data


@pytest.fixture(scope="session")
def train_command_runs(tmp_path_factory) -> dict[str, tuple[int, str, Path]]:
    """``octreport train`` (2 epochs, 32x32) three times on one slice of sample_data, each in a
    process of its own and all at once: seed 0 twice ('a', 'b'), seed 1 ('c').
    ``{name: (exit code, output, model file)}``."""
    if not SAMPLE_DATA.joinpath("train").is_dir():
        pytest.skip("sample_data not generated")
    base = tmp_path_factory.mktemp("train-command")
    data = sample_slice(base)
    children = {
        name: (spawn(["train", "--data", str(data), "--out", str(base / name / "model.keras"), "--epochs", "2",
                      "--image-size", "32", "--seed", seed], base), base / name / "model.keras")
        for name, seed in (("a", "0"), ("b", "0"), ("c", "1"))
    }
    finished = {}
    for name, (child, out) in children.items():
        output, _ = child.communicate(timeout=600)
        finished[name] = (child.returncode, output, out)
    return finished


@pytest.fixture(scope="session")
def square_net():
    """The Grad-CAM tests' two-conv net trained to tell a bright 6x6 square from none (about 3 s),
    trained once for every test that reads it."""
    from test_gradcam import trained_square_net

    return trained_square_net()


@pytest.fixture(scope="session")
def square_model(square_net):
    """:func:`square_net` with 60 new images of the square class it gets right, at most 8, and
    their squares' top-left corners: ``(model, images, corners)``."""
    from test_gradcam import square_test_data

    test_x, test_y, corner = square_test_data(60)
    predicted = square_net.predict(test_x, verbose=0).argmax(axis=1)
    chosen = np.flatnonzero((predicted == 1) & (test_y == 1))[:8]
    assert len(chosen) >= 6, "the tiny model did not learn"
    return square_net, test_x[chosen], corner[chosen]
