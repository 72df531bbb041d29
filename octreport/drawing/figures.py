"""The report's plain figures: confusion matrix, training curves, per-image probability bars.

Every function takes result objects or arrays and returns a :class:`matplotlib.figure.Figure`
built directly (no pyplot, no global rcParams); turning it into bytes is the job of
:mod:`octreport.drawing.export`, which also closes it. Sizes and fonts are chosen for the A4 PDF:
a half-width figure is about 105 mm (4.1 in) wide, a full-width one about 170 mm (6.7 in).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from octreport.evaluation.metrics import ClassificationMetrics


@dataclass(frozen=True)
class FigureStyle:
    """Palette and type sizes shared by every figure (Okabe-Ito colours, colour-blind safe)."""

    font_size: float = 8.0
    title_size: float = 9.0
    small_size: float = 7.0
    half_width_in: float = 4.1
    full_width_in: float = 6.7
    train_color: str = "#0072B2"
    validation_color: str = "#D55E00"
    marker_color: str = "#555555"
    true_color: str = "#0072B2"
    wrong_color: str = "#D55E00"
    neutral_color: str = "#BBBBBB"
    dark_text: str = "#222222"
    light_text: str = "#FFFFFF"
    sequential_cmap: str = "Blues"


STYLE = FigureStyle()

_ACCURACY_KEYS = ("accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy")
_LABEL_CHARS = 16


def _short_label(name: str, max_chars: int = _LABEL_CHARS) -> str:
    """A class name cut to ``max_chars`` characters, ending in an ellipsis when cut."""
    return name if len(name) <= max_chars else name[: max_chars - 1] + "…"


def _style_axes(ax: Axes) -> None:
    ax.tick_params(labelsize=STYLE.small_size)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _confusion_font_size(n_classes: int) -> float:
    if n_classes <= 5:
        return STYLE.font_size
    return STYLE.small_size if n_classes <= 8 else 6.0


def confusion_matrix_figure(metrics: ClassificationMetrics) -> Figure:
    """Confusion matrix: counts written in the cells, colour = share of the true class.

    Rows are the true classes present in the data (labelled with their support; a model's class
    the data does not hold has no row), columns all the predicted classes. Sized for
    half an A4 page; class names longer than 16 characters are cut with an ellipsis and column
    labels are slanted when they would collide. Readable up to about ten classes.
    """
    rows = [k for k, row in enumerate(metrics.per_class) if row.support > 0]  # a class not in the data has no row
    counts, shares = metrics.confusion[rows], metrics.confusion_normalized[rows]
    n_classes = metrics.n_classes
    width = STYLE.half_width_in
    fig = Figure(figsize=(width, width * (0.88 if n_classes <= 5 else 1.0)), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap=STYLE.sequential_cmap, vmin=0.0, vmax=1.0, aspect="equal")

    cell_size = _confusion_font_size(n_classes)
    for row in range(len(rows)):
        for col in range(n_classes):
            color = STYLE.light_text if shares[row, col] > 0.55 else STYLE.dark_text
            ax.text(col, row, str(int(counts[row, col])), ha="center", va="center",
                    fontsize=cell_size, color=color)

    names = [_short_label(name) for name in metrics.class_names]
    slanted = n_classes * max(len(name) for name in names) > 28
    ax.set_xticks(range(n_classes), names, fontsize=cell_size,
                  rotation=40 if slanted else 0, ha="right" if slanted else "center",
                  rotation_mode="anchor")
    row_labels = [f"{names[k]}\nn={metrics.per_class[k].support}" for k in rows]
    ax.set_yticks(range(len(rows)), row_labels, fontsize=cell_size)
    ax.tick_params(length=0)
    ax.set_xlabel("Predicted class", fontsize=STYLE.font_size)
    ax.set_ylabel("True class", fontsize=STYLE.font_size)
    ax.set_title(f"Confusion matrix ({metrics.n_images} images)", fontsize=STYLE.title_size)

    colorbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    colorbar.set_label("Share of the true class (row-normalised)", fontsize=STYLE.small_size)
    colorbar.ax.tick_params(labelsize=STYLE.small_size)
    return fig


def _accuracy_key(history: Mapping[str, Sequence[float]]) -> str | None:
    for key in _ACCURACY_KEYS:
        if key in history or f"val_{key}" in history:
            return key
    return None


def _marked_epoch(
    history: Mapping[str, Sequence[float]], best_epoch: int | None, n_epochs: int
) -> tuple[int, str] | None:
    """The epoch to mark (1-based) and its legend label, or None when there is nothing to mark."""
    if best_epoch is not None:
        if not 1 <= best_epoch <= n_epochs:
            raise ValueError(f"best_epoch must lie in 1..{n_epochs} (1-based), got {best_epoch}")
        return best_epoch, f"restored weights (epoch {best_epoch})"
    val_loss = np.asarray(history.get("val_loss", []), dtype=np.float64)
    if val_loss.size == 0 or not np.any(np.isfinite(val_loss)):
        return None
    best = int(np.nanargmin(np.where(np.isfinite(val_loss), val_loss, np.nan))) + 1
    return best, f"best validation loss (epoch {best})"


def training_curves_figure(
    history: Mapping[str, Sequence[float]], best_epoch: int | None = None
) -> Figure:
    """Loss and accuracy per epoch, train vs validation, side by side (full A4 width).

    Args:
        history: a Keras ``History.history`` dict. ``loss``/``val_loss`` and the first of
            ``accuracy``, ``acc``, ``sparse_categorical_accuracy``, ``categorical_accuracy``
            (with its ``val_`` twin) are drawn; other keys are ignored. Epochs are numbered from 1.
        best_epoch: 1-based epoch the model's weights were restored from. When None, the epoch
            with the lowest ``val_loss`` is marked, if there is a validation loss.

    Raises:
        ValueError: the history has neither loss nor accuracy, or best_epoch is out of range.
    """
    candidates = (("loss", "Loss"), (_accuracy_key(history), "Accuracy"))
    panels = [(key, title) for key, title in candidates
              if key is not None and (key in history or f"val_{key}" in history)]
    if not panels:
        raise ValueError(
            f"history has no loss or accuracy series to draw; keys were {sorted(history)}"
        )
    n_epochs = max(len(history.get(k, [])) for key, _ in panels for k in (key, f"val_{key}"))
    marked = _marked_epoch(history, best_epoch, n_epochs)

    fig = Figure(figsize=(STYLE.full_width_in, 2.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (key, title) in zip(axes, panels):
        series = ((key, "train", STYLE.train_color),
                  (f"val_{key}", "validation", STYLE.validation_color))
        for series_key, label, color in series:
            values = np.asarray(history.get(series_key, []), dtype=np.float64)
            if values.size:
                epochs = np.arange(1, values.size + 1)
                ax.plot(epochs, values, color=color, label=label, linewidth=1.4,
                        marker="o" if values.size <= 30 else None, markersize=2.5)
        if marked is not None:
            ax.axvline(marked[0], color=STYLE.marker_color, linestyle="--", linewidth=0.9,
                       label=marked[1])
        ax.set_title(title, fontsize=STYLE.title_size)
        ax.set_xlabel("Epoch", fontsize=STYLE.font_size)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(0.5, n_epochs + 0.5)
        _style_axes(ax)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels),
               fontsize=STYLE.small_size, frameon=False)
    return fig


def probability_bar_figure(
    probabilities: np.ndarray,
    class_names: Sequence[str],
    true_index: int | None,
    predicted_index: int,
) -> Figure:
    """Small horizontal bars of one image's class probabilities, to sit beside the image.

    Colours: the true class is blue; the predicted class is blue when right and vermillion when
    wrong; other classes are grey. The true class's label is bold. ``true_index`` may be None
    for an unlabelled image, whose predicted class is then blue.

    Args:
        probabilities: (K,) softmax outputs for one image.
        class_names: K names.
    """
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    n_classes = len(class_names)
    if p.size != n_classes:
        raise ValueError(f"got {p.size} probabilities for {n_classes} class names")
    for name, index in (("true_index", true_index), ("predicted_index", predicted_index)):
        if index is not None and not 0 <= index < n_classes:
            raise ValueError(f"{name} must lie in 0..{n_classes - 1}, got {index}")

    colors = [STYLE.neutral_color] * n_classes
    if true_index is None:
        colors[predicted_index] = STYLE.true_color
    else:
        colors[true_index] = STYLE.true_color
        if predicted_index != true_index:
            colors[predicted_index] = STYLE.wrong_color

    fig = Figure(figsize=(2.2, 0.2 * n_classes + 0.4), layout="constrained")
    ax = fig.add_subplot()
    rows = np.arange(n_classes)
    ax.barh(rows, p, color=colors, height=0.7)
    for row, value in zip(rows, p):
        inside = value > 0.7
        ax.text(value - 0.02 if inside else value + 0.02, row, f"{value:.1%}", va="center",
                ha="right" if inside else "left", fontsize=STYLE.small_size - 1,
                color=STYLE.light_text if inside else STYLE.dark_text)
    ax.set_yticks(rows, [_short_label(str(name), 18) for name in class_names],
                  fontsize=STYLE.small_size - 1)
    if true_index is not None:
        ax.get_yticklabels()[true_index].set_fontweight("bold")
    ax.invert_yaxis()
    ax.set_xlim(0.0, 1.0)
    ax.set_xticks([0.0, 0.5, 1.0], ["0", "0.5", "1"])
    _style_axes(ax)
    ax.tick_params(labelsize=STYLE.small_size - 1, length=2)
    return fig
