"""Heat-map drift between runs: the maps of the images both runs showed, compared; the flags;
and pinned sentinel images through the command line, with the section turned on and off."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from conftest import write_kermany
from octreport.audit.compare import LoadedRun, compare_runs
from octreport.audit.heatmap_drift import heatmap_drift
from octreport.cli import main
from octreport.engine.gradcam import grad_cam
from octreport.evaluation.heatmap_similarity import downsample
from octreport.report.compare_view import format_comparison_text, render_comparison_html
from run_documents import manifest_document, metrics_document
from test_gradcam import SHAPE, SIZE, small_net, square_data


def document(maps: dict[str, np.ndarray], accuracy: float = 0.9, cls: str = "CNV") -> dict:
    return metrics_document(accuracy, heatmap_maps=[{"image": name, "class": cls, "map": downsample(m).tolist()}
                                                    for name, m in maps.items()])


def blob(row: int, col: int, size: int = 48) -> np.ndarray:
    y, x = np.mgrid[:size, :size]
    return np.exp(-((y - row) ** 2 + (x - col) ** 2) / 40.0)


def test_the_same_maps_correlate_fully_and_moved_maps_do_not():
    maps = {f"test/CNV/CNV-{k}-1.jpeg": blob(10 + 3 * k, 30 - 2 * k) for k in range(4)}
    same = heatmap_drift(document(maps), document(maps), model_changed=False, accuracy_changed=False)
    assert len(same.pairs) == 4 and same.mean_spearman == pytest.approx(1.0) and same.mean_ssim == pytest.approx(1.0)
    assert same.flags == () and same.only_in_a == same.only_in_b == 0
    moved = {name: np.flipud(np.fliplr(m)) for name, m in maps.items()}
    drift = heatmap_drift(document(maps), document(moved), model_changed=True, accuracy_changed=False)
    assert drift.mean_spearman < 0.3
    assert any("changed much" in flag and "accuracy did not" in flag for flag in drift.flags)
    # Another class of the same image is not the same map; images only one run showed are counted.
    other = heatmap_drift(document(maps), document({**maps, "new.jpeg": blob(5, 5)}, cls="DME"),
                          model_changed=None, accuracy_changed=None)
    assert other.pairs == () and other.only_in_a == 4 and other.only_in_b == 5 and "--sentinels" in other.note
    assert heatmap_drift({}, {}, model_changed=None, accuracy_changed=None) is None


def test_a_new_model_with_the_same_maps_is_flagged_through_compare():
    maps = {f"img-{k}.png": blob(8 + 5 * k, 12 + 4 * k) for k in range(3)}
    a = LoadedRun("a", Path("a"), document(maps), manifest_document("w1"))
    b = LoadedRun("b", Path("b"), document(maps, accuracy=0.95), manifest_document("w2"))
    comparison = compare_runs(a, b)
    drift = comparison.heatmap_drift
    assert drift.model_changed is True and drift.accuracy_changed is True
    assert any(flag.startswith("The model changed but its heat maps did not") for flag in drift.flags)
    text = format_comparison_text(comparison)
    assert "Heat maps (Grad-CAM of the images both runs showed, same class):" in text
    assert "img-1.png  CNV: rank correlation 1.000, SSIM 1.000" in text and "FLAG: The model changed" in text
    html = render_comparison_html(comparison)
    assert 'id="heatmap-drift"' in html and html.count("<td class=\"path\">img-") == 3


def shortcut_data(n: int, rng: np.random.Generator):
    """Both classes have the bright square; class 1 also has a 4x4 mark in the top-left corner."""
    x, _, corner = square_data(n, rng)
    y = rng.integers(0, 2, n)
    for i in range(n):
        r, c = rng.integers(12, SIZE - SHAPE - 2, 2)  # a square in every image, away from the mark
        x[i, r : r + SHAPE, c : c + SHAPE, 0] = 1.0
        if y[i]:
            x[i, 1:5, 1:5, 0] = 1.0
    return x, y


def test_a_model_retrained_on_shifted_data_moves_its_maps(square_model):
    model_a, images, _ = square_model
    keras.utils.set_random_seed(4)
    x, y = shortcut_data(400, np.random.default_rng(4))
    model_b = small_net()
    model_b.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model_b.fit(x, y, epochs=4, batch_size=32, verbose=0)
    shown = images.copy()
    shown[:, 1:5, 1:5, 0] = 1.0  # both models call these class 1: A for the square, B for the mark
    assert (model_b.predict(shown, verbose=0).argmax(axis=1) == 1).mean() >= 0.8
    classes = np.ones(len(shown), np.int64)
    maps_a = {f"img-{k}": m for k, m in enumerate(grad_cam(model_a, shown, classes).heatmaps)}
    maps_b = {f"img-{k}": m for k, m in enumerate(grad_cam(model_b, shown, classes).heatmaps)}
    itself = heatmap_drift(document(maps_a), document(maps_a), model_changed=False, accuracy_changed=False)
    retrained = heatmap_drift(document(maps_a), document(maps_b), model_changed=True, accuracy_changed=False)
    assert itself.mean_spearman == pytest.approx(1.0)
    assert retrained.mean_spearman < 0.5, retrained.mean_spearman
    assert retrained.flags and "changed much" in retrained.flags[0]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv_a")(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv_b")(x)
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    keras.Model(inputs, outputs).save(path)
    return path


def test_pinned_sentinels_are_the_images_compared_and_the_section_turns_off(tiny_model, tmp_path):
    import pypdf

    data = write_kermany(tmp_path / "data", patients=4, per_patient=1)
    pinned = ["test/DME/DME-1010-1.jpeg", "test/NORMAL/NORMAL-1031-1.jpeg"]
    sentinels = tmp_path / "sentinels.txt"
    sentinels.write_text("# nightly sentinels\n" + "\n".join(pinned) + "\n\n")
    out = tmp_path / "runs"
    base = ["report", "--model", str(tiny_model), "--data", str(data), "--out", str(out), "--sentinels", str(sentinels),
            "--maps-per-layer", "2", "--filters-per-layer", "2", "--errors-per-cell", "0", "--heatmap-steps", "4",
            "--filter-views", "kernels", "--bootstrap-resamples", "100"]
    first = CliRunner().invoke(main, base)
    assert first.exit_code in (0, 5), first.output
    run_a = (out / "latest").resolve()
    metrics = json.loads((run_a / "metrics.json").read_text())
    checks = metrics["heatmap_checks"]
    assert checks["enabled"] and [i["image"] for i in checks["per_image"]] == pinned
    assert checks["faithfulness"]["fractions"] == [0, 0.25, 0.5, 0.75, 1] and len(checks["sanity"]["steps"]) == 3
    assert {m["image"] for m in metrics["heatmap_maps"]} == set(pinned)
    assert 'id="heatmap-checks"' in (run_a / "report.html").read_text()
    text = " ".join(page.extract_text() for page in pypdf.PdfReader(run_a / "report.pdf").pages)
    assert "Heat-map checks" in text and "Randomisation sanity check" in text

    second = CliRunner().invoke(main, [*base, "--no-heatmap-checks", "--compare-to", "latest", "--format", "html"])
    assert second.exit_code in (0, 5), second.output
    run_b = (out / "latest").resolve()
    assert run_b != run_a
    metrics_b = json.loads((run_b / "metrics.json").read_text())
    assert metrics_b["heatmap_checks"] == {"enabled": False}
    html = (run_b / "report.html").read_text()
    assert 'id="heatmap-checks"' not in html and "Heat maps:" not in html
    assert 'id="comparison-heatmap-drift"' in html
    result = CliRunner().invoke(main, ["compare", str(run_a), str(run_b)])
    drift = [line for line in result.output.splitlines() if "rank correlation" in line and ".jpeg" in line]
    # The sentinels and nothing else, each map paired by image and class (the true class's too when wrong).
    assert sorted({line.split()[0] for line in drift}) == pinned and len(drift) == len(metrics["heatmap_maps"])
    assert all("rank correlation 1.000" in line or "rank correlation –" in line for line in drift)
    assert any("rank correlation 1.000" in line for line in drift)


def test_a_sentinel_file_naming_a_missing_image_is_refused_before_the_run(tiny_model, tmp_path):
    data = write_kermany(tmp_path / "data", patients=4, per_patient=1)
    sentinels = tmp_path / "sentinels.txt"
    sentinels.write_text("test/DME/no-such-scan.jpeg\n")
    result = CliRunner().invoke(main, ["report", "--model", str(tiny_model), "--data", str(data),
                                       "--out", str(tmp_path / "runs"), "--sentinels", str(sentinels)])
    assert result.exit_code == 2 and "line 1: no image 'test/DME/no-such-scan.jpeg'" in result.output
    assert not (tmp_path / "runs").exists()
