"""The screening report's figure: what the model predicts for unlabelled scans and how sure it is.

Like :mod:`octreport.drawing.figures`: a result object in, a :class:`matplotlib.figure.Figure`
out, no pyplot; :mod:`octreport.drawing.export` encodes and closes it.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from octreport.drawing.figures import STYLE, _style_axes
from octreport.evaluation.screening import CONFIDENCE_EDGES, DEFERRAL_THRESHOLDS, Screening


def screening_figure(screening: Screening) -> Figure:
    """Left: scans per predicted class; right: scans per confidence bin, with the deferral
    thresholds marked. A full A4 width."""
    fig = Figure(figsize=(STYLE.full_width_in, 2.6), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(1, 1.3))
    positions = np.arange(len(screening.class_names))
    left.bar(positions, screening.predicted_counts, color=STYLE.train_color)
    left.set_xticks(positions, screening.class_names, fontsize=STYLE.small_size)
    left.set_ylabel("Scans", fontsize=STYLE.font_size)
    left.set_title(f"Predicted class ({screening.n_images} scans)", fontsize=STYLE.title_size)
    edges = np.asarray(CONFIDENCE_EDGES)
    right.bar(edges[:-1], screening.confidence_counts, width=np.diff(edges) * 0.9, align="edge", color=STYLE.neutral_color)
    for threshold in DEFERRAL_THRESHOLDS:
        right.axvline(threshold, color=STYLE.marker_color, linestyle="--", linewidth=0.8)
    right.set_xlim(0, 1)
    right.set_xlabel("Confidence (top class probability); dashed: deferral thresholds", fontsize=STYLE.small_size)
    right.set_title(f"Confidence (median {screening.median_confidence:.2f})", fontsize=STYLE.title_size)
    for ax in (left, right):
        _style_axes(ax)
    return fig
