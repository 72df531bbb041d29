"""Figures about the predictions as a whole: the reliability diagram, the urgent-referral ROC curve
with its operating points, and accuracy against coverage (selective prediction).

Like :mod:`octreport.drawing.figures`: result objects in, a :class:`matplotlib.figure.Figure` out,
no pyplot; :mod:`octreport.drawing.export` encodes and closes it.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from octreport.drawing.figures import STYLE, _style_axes
from octreport.evaluation.calibration import CalibrationResult
from octreport.evaluation.operating_point import SelectivePrediction, UrgentOperatingPoint

_MAX_CURVE_POINTS = 2000  # a curve drawn with more points than this looks no different


def _thinned(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every k-th point (and the last) when a curve has more than ``_MAX_CURVE_POINTS``."""
    n = arrays[0].size
    if n <= _MAX_CURVE_POINTS:
        return arrays
    keep = np.unique(np.r_[np.linspace(0, n - 1, _MAX_CURVE_POINTS).astype(np.int64), n - 1])
    return tuple(a[keep] for a in arrays)


def reliability_figure(calibration: CalibrationResult) -> Figure:
    """Top-label reliability diagram (accuracy per confidence bin against the diagonal) above a
    histogram of how many images fall in each bin. Half an A4 page wide."""
    fig = Figure(figsize=(STYLE.half_width_in, 3.6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    bins = calibration.bins
    centres = np.array([(b.low + b.high) / 2 for b in bins])
    width = bins[0].high - bins[0].low
    accuracy = np.array([np.nan if b.accuracy is None else b.accuracy for b in bins])
    confidence = np.array([np.nan if b.mean_confidence is None else b.mean_confidence for b in bins])
    top.plot([0, 1], [0, 1], color=STYLE.marker_color, linestyle="--", linewidth=0.9, label="perfect calibration")
    top.bar(centres, np.nan_to_num(accuracy), width=width * 0.9, color=STYLE.train_color, alpha=0.85,
            label="accuracy in the bin")
    top.plot(confidence, accuracy, "o", color=STYLE.validation_color, markersize=3, label="mean confidence")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("Accuracy", fontsize=STYLE.font_size)
    top.set_title(f"Reliability (ECE {calibration.ece:.3f}, Brier {calibration.brier:.3f})", fontsize=STYLE.title_size)
    top.legend(fontsize=STYLE.small_size - 1, frameon=False, loc="upper left")
    counts = np.array([b.count for b in bins])
    bottom.bar(centres, counts, width=width * 0.9, color=STYLE.neutral_color)
    bottom.set_xlabel("Confidence (largest class probability)", fontsize=STYLE.font_size)
    bottom.set_ylabel("Images", fontsize=STYLE.small_size)
    for ax in (top, bottom):
        _style_axes(ax)
    return fig


def urgent_roc_figure(point: UrgentOperatingPoint) -> Figure:
    """ROC curve of P(CNV) + P(DME), with the report's operating point and Kermany et al.'s marked.

    A second panel zooms into the top-left corner, where good models live."""
    fig = Figure(figsize=(STYLE.full_width_in, 3.0), layout="constrained")
    axes = fig.subplots(1, 2)
    fpr, tpr = _thinned(point.false_positive_rate, point.true_positive_rate)
    auc = "undefined" if point.roc_auc is None else f"{point.roc_auc:.3f}"
    for ax, limit in zip(axes, (1.0, 0.2)):
        ax.plot(fpr, tpr, color=STYLE.train_color, linewidth=1.4, label=f"P(CNV)+P(DME), AUC {auc}",
                drawstyle="steps-post" if fpr.size < 50 else "default")
        if limit == 1.0:
            ax.plot([0, 1], [0, 1], color=STYLE.neutral_color, linestyle=":", linewidth=0.9)
        if point.used.false_positive_rate is not None and point.used.true_positive_rate is not None:
            ax.plot(point.used.false_positive_rate, point.used.true_positive_rate, "o", color=STYLE.validation_color,
                    markersize=6, label=f"used: {point.used_rule}")
        ax.plot(point.reference.false_positive_rate, point.reference.true_positive_rate, "s", markerfacecolor="none",
                markeredgecolor=STYLE.dark_text, markersize=6, label="Kermany et al. 2018")
        ax.set_xlim(0, limit)
        ax.set_ylim(0.0 if limit == 1.0 else 0.8, 1.005)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.set_xlabel("1 − specificity (non-urgent called urgent)", fontsize=STYLE.font_size)
        ax.set_ylabel("Sensitivity (urgent found)", fontsize=STYLE.font_size)
        ax.set_title("Urgent referral ROC" if limit == 1.0 else "Top-left corner (zoomed)", fontsize=STYLE.title_size)
        _style_axes(ax)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=STYLE.small_size, frameon=False)
    return fig


def selective_figure(selective: SelectivePrediction) -> Figure:
    """Accuracy of the scans kept against the share kept, the least confident referred first."""
    fig = Figure(figsize=(STYLE.half_width_in, 2.6), layout="constrained")
    ax = fig.add_subplot()
    coverage, accuracy = _thinned(selective.coverage, selective.accuracy)
    ax.plot(coverage, accuracy, color=STYLE.train_color, linewidth=1.4)
    for row in selective.rows:
        if row.accuracy is not None and row.n_kept:
            ax.plot(row.n_kept / selective.n_images, row.accuracy, "o", color=STYLE.validation_color, markersize=3)
    ax.set_xlim(1.0, 0.0)  # from all scans kept (left) to few kept (right)
    low = float(np.nanmin(selective.accuracy[selective.coverage >= 0.5])) if selective.n_images else 0.0
    ax.set_ylim(max(0.0, min(low, selective.accuracy[-1]) - 0.02), 1.005)
    ax.set_xlabel("Share of scans the model decides (the rest referred)", fontsize=STYLE.font_size)
    ax.set_ylabel("Accuracy on those", fontsize=STYLE.font_size)
    ax.set_title("Selective prediction", fontsize=STYLE.title_size)
    _style_axes(ax)
    return fig
