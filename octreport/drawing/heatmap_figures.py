"""The heat-map checks drawn: deletion and insertion curves as small multiples, one panel per
shown image after a first panel with the means. Takes result objects, returns a Figure."""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from octreport.drawing.figures import STYLE, _style_axes
from octreport.evaluation.faithfulness import GRADCAM, METHOD_NAMES, OCCLUSION, RANDOM, FaithfulnessResult

METHOD_COLOURS = {GRADCAM: "#D55E00", RANDOM: "#999999", OCCLUSION: "#0072B2"}
COLUMNS = 4
PANEL_HEIGHT_IN = 1.45


def _panel(ax, fractions, curves: Sequence[tuple[str, Sequence[float], Sequence[float]]], title: str) -> None:
    for method, deletion, insertion in curves:
        colour = METHOD_COLOURS.get(method, STYLE.marker_color)
        ax.plot(fractions, deletion, color=colour, lw=1.2)
        ax.plot(fractions, insertion, color=colour, lw=1.0, ls="--")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title, fontsize=STYLE.small_size, loc="left")
    _style_axes(ax)


def faithfulness_figure(result: FaithfulnessResult, titles: Sequence[str]) -> Figure:
    """Small multiples: the mean curves, then each image's (``titles``: one per image). Solid:
    deletion (the class probability as the top pixels are removed); dashed: insertion."""
    panels = 1 + len(result.images)
    rows = math.ceil(panels / COLUMNS)
    height = PANEL_HEIGHT_IN * rows + 0.55
    fig = Figure(figsize=(STYLE.full_width_in, height))
    # Fixed margins: the constrained layout engine took longer than drawing the curves.
    fig.subplots_adjust(left=0.08, right=0.99, bottom=0.45 / height, top=1 - 0.4 / height, wspace=0.12, hspace=0.45)
    axes = fig.subplots(rows, COLUMNS, sharex=True, sharey=True, squeeze=False).ravel()
    means = [(m, a.deletion, a.insertion) for m in result.methods if (a := result.average(m)) is not None]
    _panel(axes[0], result.fractions, means, f"mean of {len(result.images)} image(s)")
    for ax, image, title in zip(axes[1:], result.images, titles):
        _panel(ax, result.fractions, [(c.method, c.deletion, c.insertion) for c in image.curves], title)
    for ax in axes[panels:]:
        ax.set_visible(False)
    for ax in axes[::COLUMNS]:
        ax.set_ylabel("P(class)", fontsize=STYLE.small_size)
    for ax in axes[max(0, panels - COLUMNS):panels]:
        ax.set_xlabel("share of pixels", fontsize=STYLE.small_size)
        ax.xaxis.set_tick_params(labelbottom=True)
    handles = [Line2D([], [], color=METHOD_COLOURS.get(m, STYLE.marker_color), lw=1.2, label=METHOD_NAMES.get(m, m))
               for m in result.methods]
    handles += [Line2D([], [], color=STYLE.dark_text, lw=1.2, label="deletion"),
                Line2D([], [], color=STYLE.dark_text, lw=1.0, ls="--", label="insertion")]
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 1.0), ncol=len(handles),
               fontsize=STYLE.small_size, frameon=False)
    return fig
