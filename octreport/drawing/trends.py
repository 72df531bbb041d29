"""Trend plots of the archive: the headline metrics of consecutive runs, one panel per metric.

:func:`trend_figure` takes plain arrays (one value per run, oldest first, NaN where a run did not
record the metric) and returns a :class:`~matplotlib.figure.Figure` built directly, no pyplot;
:mod:`octreport.drawing.export` turns it into PNG bytes and closes it. Runs are placed at equal
steps (a nightly archive has gaps and bursts; equal steps keep every run visible), labelled with
their dates. Marked on every panel: runs whose gates failed (red), runs on a new model (a
diamond), and the runs from which the data or the configuration changed (vertical lines).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, PercentFormatter

from octreport.drawing.figures import STYLE

DATA_COLOR = "#E69F00"  # Okabe-Ito orange
CONFIG_COLOR = "#CC79A7"  # Okabe-Ito reddish purple
FAILED_COLOR = "#D55E00"
LINE_COLOR = STYLE.train_color
MAX_TICKS = 8


@dataclass(frozen=True, eq=False)
class TrendSeries:
    """One metric over the runs: ``values`` (N,), NaN where missing; ``low``/``high`` (N,) its
    interval where recorded (NaN elsewhere), or None; ``fraction`` draws the axis in percent."""

    label: str
    values: np.ndarray
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    fraction: bool = True


@dataclass(frozen=True, eq=False)
class TrendMarks:
    """Per run (N,): ``failed`` gates, a ``new_model``; and the runs from which the data or the
    configuration changed (``data_changed``, ``config_changed``)."""

    failed: np.ndarray
    new_model: np.ndarray
    data_changed: np.ndarray
    config_changed: np.ndarray


def _panel(ax: Axes, x: np.ndarray, series: TrendSeries, marks: TrendMarks) -> None:
    values = np.asarray(series.values, dtype=float)
    known = ~np.isnan(values)
    if series.low is not None and series.high is not None:
        low, high = np.asarray(series.low, float), np.asarray(series.high, float)
        band = ~np.isnan(low) & ~np.isnan(high)
        if band.any():
            ax.fill_between(x, np.where(band, low, np.nan), np.where(band, high, np.nan), color=LINE_COLOR,
                            alpha=0.18, linewidth=0, step=None)
    ax.plot(x[known], values[known], color=LINE_COLOR, linewidth=1.0, zorder=2)
    small = 3.5 if len(x) <= 60 else 1.5
    for selector, marker, color, size in (
        (known & ~marks.failed & ~marks.new_model, "o", LINE_COLOR, small),
        (known & ~marks.failed & marks.new_model, "D", LINE_COLOR, small),
        (known & marks.failed & ~marks.new_model, "o", FAILED_COLOR, small + 1.5),
        (known & marks.failed & marks.new_model, "D", FAILED_COLOR, small + 1.5),
    ):
        if selector.any():
            ax.plot(x[selector], values[selector], linestyle="none", marker=marker, markersize=size, color=color, zorder=3)
    for selector, color, style in ((marks.data_changed, DATA_COLOR, "--"), (marks.config_changed, CONFIG_COLOR, ":")):
        for position in x[selector]:
            ax.axvline(position - 0.5, color=color, linestyle=style, linewidth=1.0, zorder=1)
    ax.set_ylabel(series.label, fontsize=STYLE.small_size)
    if series.fraction:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    if not known.any():
        ax.text(0.5, 0.5, "not recorded", transform=ax.transAxes, ha="center", va="center",
                fontsize=STYLE.small_size, color=STYLE.marker_color)
    ax.tick_params(labelsize=STYLE.small_size)
    ax.grid(axis="y", color="#dddddd", linewidth=0.5)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _legend(fig: Figure, marks: TrendMarks) -> None:
    handles = [Line2D([], [], color=LINE_COLOR, marker="o", markersize=4, label="run")]
    if marks.new_model.any():
        handles.append(Line2D([], [], color=LINE_COLOR, marker="D", linestyle="none", markersize=4, label="new model"))
    if marks.failed.any():
        handles.append(Line2D([], [], color=FAILED_COLOR, marker="o", linestyle="none", markersize=5, label="gate failed"))
    if marks.data_changed.any():
        handles.append(Line2D([], [], color=DATA_COLOR, linestyle="--", label="data changed"))
    if marks.config_changed.any():
        handles.append(Line2D([], [], color=CONFIG_COLOR, linestyle=":", label="configuration changed"))
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), fontsize=STYLE.small_size, frameon=False)


def trend_figure(
    run_labels: Sequence[str], series: Sequence[TrendSeries], marks: TrendMarks, width_in: float = STYLE.full_width_in
) -> Figure:
    """One panel per series, stacked, sharing the run axis; ``run_labels`` (N,) label the ticks."""
    if not series:
        raise ValueError("trend_figure needs at least one series")
    n = len(run_labels)
    x = np.arange(n, dtype=float)
    fig = Figure(figsize=(width_in, 0.5 + 1.1 * len(series)), layout="constrained")
    axes = fig.subplots(len(series), 1, sharex=True, squeeze=False)[:, 0]
    for ax, one in zip(axes, series):
        _panel(ax, x, one, marks)
    bottom = axes[-1]
    ticks = np.unique(np.linspace(0, n - 1, min(n, MAX_TICKS)).round().astype(int)) if n else np.array([], int)
    bottom.xaxis.set_major_locator(FixedLocator(ticks))
    bottom.xaxis.set_major_formatter(FuncFormatter(lambda v, _: run_labels[int(v)] if 0 <= v < n else ""))
    bottom.set_xlim(-0.5 - 0.02 * n, n - 0.5 + 0.02 * n)
    bottom.set_xlabel(f"{n} run(s), oldest first, equally spaced", fontsize=STYLE.small_size)
    _legend(fig, marks)
    return fig
