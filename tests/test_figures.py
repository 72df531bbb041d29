"""What the plain figures contain, and that export encodes them and closes them."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (only to count figures registered with pyplot)
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

from octreport.drawing.export import (  # noqa: E402
    array_to_jpeg,
    array_to_png,
    encode_array,
    encode_figure,
    figure_to_png,
    to_data_uri,
)
from octreport.drawing.figures import (  # noqa: E402
    STYLE,
    confusion_matrix_figure,
    probability_bar_figure,
    training_curves_figure,
)
from octreport.evaluation.metrics import compute_classification_metrics  # noqa: E402

OCT = ["CNV", "DME", "DRUSEN", "NORMAL"]


@pytest.fixture(autouse=True)
def no_figure_leak():
    assert plt.get_fignums() == []
    yield
    assert plt.get_fignums() == [], "a figure was left registered with pyplot"


def all_texts(fig: Figure) -> list[str]:
    return [text.get_text() for text in fig.findobj(matplotlib.text.Text)]


def metrics_for(y: list[int], predicted: list[int], names: list[str]):
    p = np.full((len(y), len(names)), 0.1 / max(len(names) - 1, 1))
    p[np.arange(len(y)), predicted] = 0.9
    return compute_classification_metrics(np.array(y), p, names)


def test_confusion_figure_shows_every_count_and_names_both_axes():
    # Confusion [[3, 1, 0, 0], [0, 2, 0, 0], [0, 0, 5, 1], [0, 0, 0, 7]]
    y = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2] + [3] * 7
    predicted = [0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 3] + [3] * 7
    metrics = metrics_for(y, predicted, OCT)
    fig = confusion_matrix_figure(metrics)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    cell_texts = [text.get_text() for text in ax.texts]
    assert sorted(cell_texts) == sorted(str(v) for v in metrics.confusion.ravel())
    assert [t.get_text() for t in ax.get_xticklabels()] == OCT
    row_labels = [t.get_text() for t in ax.get_yticklabels()]
    assert [label.split("\n")[0] for label in row_labels] == OCT
    assert "n=6" in row_labels[2]
    assert ax.get_xlabel() == "Predicted class" and ax.get_ylabel() == "True class"
    assert any("row-normalised" in text for text in all_texts(fig))
    np.testing.assert_allclose(ax.images[0].get_array(), metrics.confusion_normalized)
    figure_to_png(fig)


def test_confusion_figure_handles_ten_long_class_names():
    names = [f"class number {i} with a very long descriptive name" for i in range(10)]
    rng = np.random.default_rng(0)
    y = list(rng.integers(0, 10, 300))
    predicted = list(rng.integers(0, 10, 300))
    fig = confusion_matrix_figure(metrics_for(y, predicted, names))
    ax = fig.axes[0]
    assert len(ax.texts) == 100
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert all(len(label) <= 16 and label.endswith("…") for label in labels)
    assert ax.get_xticklabels()[0].get_rotation() > 0
    assert figure_to_png(fig).startswith(b"\x89PNG")


HISTORY = {
    "loss": [1.0, 0.7, 0.5, 0.4, 0.3],
    "val_loss": [1.1, 0.8, 0.6, 0.65, 0.7],
    "accuracy": [0.5, 0.6, 0.7, 0.8, 0.9],
    "val_accuracy": [0.45, 0.55, 0.7, 0.68, 0.66],
}


def vertical_line_x(ax) -> list[float]:
    return [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == "--"]


def test_training_curves_side_by_side_from_epoch_one_with_best_epoch():
    fig = training_curves_figure(HISTORY)
    loss_ax, acc_ax = fig.axes
    assert (loss_ax.get_title(), acc_ax.get_title()) == ("Loss", "Accuracy")
    train, validation = loss_ax.lines[:2]
    np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(validation.get_ydata(), HISTORY["val_loss"])
    np.testing.assert_array_equal(acc_ax.lines[1].get_ydata(), HISTORY["val_accuracy"])
    # Lowest val_loss is 0.6, at epoch 3.
    assert vertical_line_x(loss_ax) == vertical_line_x(acc_ax) == [3]
    legend_texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend_texts == ["train", "validation", "best validation loss (epoch 3)"]
    figure_to_png(fig)


def test_training_curves_mark_the_restored_epoch_when_given():
    fig = training_curves_figure(HISTORY, best_epoch=4)
    assert vertical_line_x(fig.axes[0]) == [4]
    assert "restored weights (epoch 4)" in all_texts(fig)
    figure_to_png(fig)


def test_training_curves_with_loss_only_and_bad_input():
    fig = training_curves_figure({"loss": [0.9, 0.5]})
    assert len(fig.axes) == 1
    assert vertical_line_x(fig.axes[0]) == []
    figure_to_png(fig)
    with pytest.raises(ValueError, match="no loss or accuracy"):
        training_curves_figure({"lr": [0.1]})
    with pytest.raises(ValueError, match="best_epoch"):
        training_curves_figure(HISTORY, best_epoch=6)


def test_probability_bars_show_values_and_mark_true_and_wrong_prediction():
    p = np.array([0.1, 0.35, 0.5, 0.05])
    fig = probability_bar_figure(p, OCT, true_index=1, predicted_index=2)
    ax = fig.axes[0]
    bars = ax.patches
    np.testing.assert_allclose([bar.get_width() for bar in bars], p)
    colors = [matplotlib.colors.to_hex(bar.get_facecolor()) for bar in bars]
    assert colors[1] == STYLE.true_color.lower()
    assert colors[2] == STYLE.wrong_color.lower()
    assert colors[0] == colors[3] == STYLE.neutral_color.lower()
    assert ax.get_yticklabels()[1].get_fontweight() == "bold"
    assert {"10.0%", "35.0%", "50.0%", "5.0%"} <= set(all_texts(fig))
    figure_to_png(fig)
    with pytest.raises(ValueError):
        probability_bar_figure(p, OCT[:3], true_index=0, predicted_index=0)


def test_figure_to_png_is_a_valid_png_of_figsize_times_dpi():
    fig = Figure(figsize=(3.0, 2.0))
    fig.add_subplot().plot([0, 1], [1, 0])
    data = figure_to_png(fig, dpi=100)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        assert image.size == (300, 200)
    assert fig.axes == []  # cleared after export


def test_encode_figure_reports_pixel_size():
    encoded = encode_figure(Figure(figsize=(2.0, 1.5)), dpi=80)
    assert (encoded.width, encoded.height, encoded.mime) == (160, 120, "image/png")
    assert encoded.data_uri().startswith("data:image/png;base64,")


def test_pyplot_figures_are_closed_too_even_when_export_fails():
    fig = plt.figure()
    assert plt.get_fignums() != []
    with pytest.raises(ValueError):
        figure_to_png(fig, dpi=0)
    assert plt.get_fignums() == []
    fig = plt.figure(figsize=(1, 1))
    figure_to_png(fig, dpi=50)
    assert plt.get_fignums() == []


@pytest.mark.parametrize("shape", [(12, 20), (12, 20, 3), (12, 20, 4), (12, 20, 1)])
def test_array_to_png_round_trips(shape):
    image = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    with Image.open(io.BytesIO(array_to_png(image))) as decoded:
        np.testing.assert_array_equal(np.asarray(decoded), image.reshape(image.shape[:2] + (
            () if len(shape) == 2 or shape[2] == 1 else (shape[2],))))


def test_array_to_jpeg_and_data_uri():
    image = np.full((16, 24, 3), 128, dtype=np.uint8)
    data = array_to_jpeg(image, quality=80)
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.format == "JPEG" and decoded.size == (24, 16)
    uri = to_data_uri(data, "image/jpeg")
    assert uri.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == data
    encoded = encode_array(image, "jpeg")
    assert (encoded.width, encoded.height, encoded.mime) == (24, 16, "image/jpeg")


def test_arrays_that_cannot_be_encoded_are_rejected():
    with pytest.raises(ValueError, match="uint8"):
        array_to_png(np.zeros((4, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        array_to_png(np.zeros((4, 4, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="shape"):
        array_to_jpeg(np.zeros((4, 4, 4), dtype=np.uint8))


# ---------- calibration and operating-point figures ----------


def oct_statistics():
    from octreport.evaluation.calibration import compute_calibration
    from octreport.evaluation.operating_point import selective_prediction, urgent_operating_point

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    logits = rng.normal(size=(400, 4))
    logits[np.arange(400), y] += 2.5
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return compute_calibration(y, p), urgent_operating_point(y, p, OCT), selective_prediction(y, p)


def test_reliability_diagram_bars_are_the_bin_accuracies():
    from octreport.drawing.evaluation_figures import reliability_figure

    calibration, _, _ = oct_statistics()
    fig = reliability_figure(calibration)
    top, bottom = fig.axes[:2]
    heights = [patch.get_height() for patch in top.patches]
    assert heights == pytest.approx([b.accuracy or 0.0 for b in calibration.bins])
    assert [patch.get_height() for patch in bottom.patches] == [b.count for b in calibration.bins]
    assert f"ECE {calibration.ece:.3f}" in top.get_title()
    figure_to_png(fig)


def test_urgent_roc_marks_the_used_and_the_published_point():
    from octreport.drawing.evaluation_figures import urgent_roc_figure

    _, point, _ = oct_statistics()
    fig = urgent_roc_figure(point)
    full = fig.axes[0]
    markers = {line.get_label(): (line.get_xdata()[0], line.get_ydata()[0]) for line in full.lines if len(line.get_xdata()) == 1}
    assert markers["used: predicted class CNV or DME"] == pytest.approx(
        (point.used.false_positive_rate, point.used.true_positive_rate))
    assert markers["Kermany et al. 2018"] == pytest.approx((1 - 0.974, 0.978))
    assert fig.axes[1].get_xlim() == pytest.approx((0, 0.2))  # the zoomed corner
    figure_to_png(fig)


def test_selective_figure_draws_the_accuracy_coverage_curve():
    from octreport.drawing.evaluation_figures import selective_figure

    _, _, selective = oct_statistics()
    fig = selective_figure(selective)
    curve = fig.axes[0].lines[0]
    assert curve.get_xdata() == pytest.approx(selective.coverage) and curve.get_ydata() == pytest.approx(selective.accuracy)
    figure_to_png(fig)
