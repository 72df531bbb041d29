"""Figures about the data: two images side by side (a near-duplicate or duplicate pair of the data
audit), and the acquisition profiles of the training and the evaluated images (the data-shift check)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from octreport.data.acquisition_profile import AcquisitionProfile
from octreport.drawing.figures import STYLE, _style_axes


def side_by_side(first: np.ndarray, second: np.ndarray, gap: int = 6, background: int = 255) -> np.ndarray:
    """Two grayscale ``(H, W)`` uint8 images in one ``(max H, W1 + gap + W2)`` uint8 array, top-aligned,
    with a ``gap`` of ``background`` between them."""
    first, second = np.asarray(first, np.uint8), np.asarray(second, np.uint8)
    height = max(first.shape[0], second.shape[0])
    canvas = np.full((height, first.shape[1] + gap + second.shape[1]), background, np.uint8)
    canvas[: first.shape[0], : first.shape[1]] = first
    canvas[: second.shape[0], first.shape[1] + gap:] = second
    return canvas


SIZES_DRAWN = 8
"""Sizes drawn in :func:`acquisition_figure`, most common first; the rest are one 'other' bar."""


def acquisition_figure(training: AcquisitionProfile | None, evaluated: AcquisitionProfile) -> Figure:
    """Two panels, full page width: left, the share of each set's images per stored size (width x
    height), training beside evaluated, on a 0-100% axis; right, for each per-image intensity
    percentile, the range of the middle 90% of the images (5th to 95th) as a line and the median as
    a dot, on the 0-1 grayscale axis. ``training`` None draws the evaluated images alone."""
    fig = Figure(figsize=(STYLE.full_width_in, 2.7), layout="constrained")
    sizes_ax, intensity_ax = fig.subplots(1, 2, width_ratios=(1.1, 1))
    sets = [(name, profile, color) for name, profile, color in
            (("training", training, STYLE.train_color), ("evaluated", evaluated, STYLE.validation_color))
            if profile is not None and profile.n_images]
    labels = _drawn_sizes(training, evaluated)
    height = 0.8 / max(1, len(sets))
    positions = np.arange(len(labels))
    for n, (name, profile, color) in enumerate(sets):
        shares = [_size_share(profile, label, labels) for label in labels]
        sizes_ax.barh(positions + (n - (len(sets) - 1) / 2) * height, shares, height=height * 0.95, color=color,
                      label=f"{name} ({profile.n_images:,} images)")
    sizes_ax.set_yticks(positions, [f"{label} px" if label != "other" else label for label in labels],
                        fontsize=STYLE.small_size)
    sizes_ax.invert_yaxis()
    sizes_ax.set_xlim(0, 1)
    sizes_ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    sizes_ax.set_xlabel("Share of the set's images", fontsize=STYLE.font_size)
    sizes_ax.set_title("Image sizes (width x height)", fontsize=STYLE.title_size)
    rows = [s.percentile for s in evaluated.intensity]
    for n, (name, profile, color) in enumerate(sets):
        for row, percentile in enumerate(rows):
            spread = profile.spread(percentile)
            if spread is None:
                continue
            y = row + (n - (len(sets) - 1) / 2) * 0.3
            intensity_ax.plot([spread.low, spread.high], [y, y], color=color, linewidth=2.5, solid_capstyle="butt")
            intensity_ax.plot([spread.median], [y], "o", color=color, markersize=4, markeredgecolor=STYLE.dark_text,
                              markeredgewidth=0.5)
    intensity_ax.set_yticks(range(len(rows)), [f"{q}th percentile" if q != 1 else "1st percentile" for q in rows],
                            fontsize=STYLE.small_size)
    intensity_ax.set_ylim(len(rows) - 0.5, -0.5)
    intensity_ax.set_xlim(0, 1)
    intensity_ax.set_xlabel("Per-image intensity (grayscale, 0-1)", fontsize=STYLE.font_size)
    intensity_ax.set_title("Intensity percentiles per image", fontsize=STYLE.title_size)
    for ax in (sizes_ax, intensity_ax):
        _style_axes(ax)
    fig.legend(*sizes_ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, frameon=False,
               fontsize=STYLE.small_size)
    return fig


def _drawn_sizes(training: AcquisitionProfile | None, evaluated: AcquisitionProfile) -> list[str]:
    """The sizes most common in either set (by their larger share), and 'other' when some are left out."""
    shares: dict[str, float] = {}
    for profile in (training, evaluated):
        if profile is None or not profile.n_images:
            continue
        for label, count in profile.sizes:
            shares[label] = max(shares.get(label, 0.0), count / profile.n_images)
    drawn = sorted(shares, key=lambda label: (-shares[label], label))[:SIZES_DRAWN]
    left_out = len(shares) > len(drawn) or any(p is not None and p.other_sizes for p in (training, evaluated))
    return drawn + (["other"] if left_out else [])


def _size_share(profile: AcquisitionProfile, label: str, drawn: list[str]) -> float:
    if label == "other":
        kept = sum(profile.share(profile.sizes, size) for size in drawn if size != "other")
        return max(0.0, 1.0 - kept)
    return profile.share(profile.sizes, label)
