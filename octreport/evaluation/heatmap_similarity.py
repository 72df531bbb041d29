"""How alike two heat maps are: rank correlation, SSIM, and the small copies a run records.

Pure NumPy on maps of the same shape. Used by the randomisation sanity check (a trained model's
Grad-CAM against a randomised copy's) and by the heat-map drift between runs (a run's recorded
maps against another run's).

* :func:`spearman`: Spearman's rank correlation of the two maps' pixels, ties given their mean
  rank; ``nan`` when either map is constant (no order to compare).
* :func:`ssim`: the mean structural similarity (Wang et al. 2004) with a 7 x 7 uniform window,
  ``data_range`` 1 (Grad-CAM maps lie in [0, 1]), constants ``C1 = (0.01)^2``, ``C2 = (0.03)^2``,
  over the windows that fit inside the image (no padding), as scikit-image's default.
* :func:`downsample`: a map averaged over blocks to at most ``side x side`` (what a run keeps in
  ``metrics.json`` to compare with later runs).
"""

from __future__ import annotations

import numpy as np

SSIM_WINDOW = 7
RECORDED_SIDE = 16  # side of the downsampled maps a run records for the drift between runs


def ranks(values: np.ndarray) -> np.ndarray:
    """float64 ranks (1..n) of the flattened ``values``, ties given their mean rank."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(flat, kind="stable")
    sorted_values = flat[order]
    starts = np.r_[True, sorted_values[1:] != sorted_values[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    counts = np.diff(np.r_[first, flat.size])
    mean_rank = first + (counts + 1) / 2.0  # 1-based mean rank of each group of ties
    out = np.empty(flat.size, np.float64)
    out[order] = mean_rank[group]
    return out


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps of one shape; ``nan`` when either is constant."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"maps of different shapes: {a.shape} and {b.shape}")
    ra, rb = ranks(a), ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denominator = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    if denominator == 0.0:
        return float("nan")
    return float(np.clip((ra * rb).sum() / denominator, -1.0, 1.0))


def _window_means(x: np.ndarray, size: int) -> np.ndarray:
    """Mean of every ``size x size`` window that fits in ``x`` (an integral image)."""
    padded = np.pad(np.cumsum(np.cumsum(x, axis=0), axis=1), ((1, 0), (1, 0)))
    sums = padded[size:, size:] - padded[:-size, size:] - padded[size:, :-size] + padded[:-size, :-size]
    return sums / float(size * size)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Mean structural similarity of two 2-D maps (see the module docstring); 1 for equal maps."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"expected two 2-D maps of one shape, got {a.shape} and {b.shape}")
    size = min(SSIM_WINDOW, *a.shape)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = _window_means(a, size), _window_means(b, size)
    n = size * size
    correction = n / (n - 1) if n > 1 else 1.0  # sample (co)variances, as scikit-image
    var_a = (_window_means(a * a, size) - mu_a ** 2) * correction
    var_b = (_window_means(b * b, size) - mu_b ** 2) * correction
    cov = (_window_means(a * b, size) - mu_a * mu_b) * correction
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(index.mean())


def downsample(heatmap: np.ndarray, side: int = RECORDED_SIDE) -> np.ndarray:
    """float32 (h, w) block means of a 2-D map, ``h, w <= side`` (the map cropped to a multiple of
    the block size, at most ``block - 1`` pixels lost at the bottom and right)."""
    heatmap = np.asarray(heatmap, np.float64)
    height, width = heatmap.shape
    by, bx = max(1, -(-height // side)), max(1, -(-width // side))
    h, w = height // by, width // bx
    blocks = heatmap[: h * by, : w * bx].reshape(h, by, w, bx)
    return blocks.mean(axis=(1, 3)).astype(np.float32)


def nanmean(values: np.ndarray) -> float | None:
    """Mean of the finite values, None when there is none."""
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if finite.size else None
