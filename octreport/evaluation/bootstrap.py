"""Seeded, vectorised bootstrap of every metric computed from predictions (pure NumPy).

One bootstrap resample is a weight per image: how many times the image was drawn. Weights for a
chunk of resamples form one ``(B, N)`` matrix, drawn once and reused for every metric: the
confusion matrices of all B resamples are one matrix product, and each ROC AUC is a weighted
Mann-Whitney statistic over the images sorted once by score. Nothing loops over resamples.

When images come in groups (several scans of one patient), whole groups are drawn with
replacement (the cluster bootstrap): scans of one patient are not independent, and drawing them
one by one would make intervals too narrow. Groups of one image give the ordinary bootstrap.

Statistics are keyed by name (see :func:`statistic_keys`): ``accuracy``, ``macro.precision``,
``macro.recall``, ``macro.f1``, ``weighted.precision``, ``weighted.f1``, ``macro_roc_auc``,
``per_class.<NAME>.<precision|recall|specificity|f1|roc_auc>`` and, for the four OCT classes,
``referral.<urgent_sensitivity|urgent_specificity|urgent_roc_auc|weighted_error>``. A value that
is undefined in a resample (a class that was not drawn) is NaN there.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from octreport.evaluation.bootstrap_settings import BootstrapSettings
from octreport.evaluation.metrics import validate_predictions
from octreport.evaluation.referral import PENALTY, oct_class_order, urgent_calls

CHUNK = 128
"""Resamples drawn and evaluated at a time: bounds memory at about ``CHUNK * N * 8`` bytes per array
and thread. Fixed, so that a seed gives the same intervals whatever the machine."""
MAX_THREADS = 4
"""Chunks are evaluated on up to this many threads (NumPy releases the GIL in all the heavy steps);
each chunk draws from its own generator, spawned from the seed, so threads never change a result."""
THREADED_FROM = 2_000_000
"""Images x resamples from which starting threads pays (below, a few milliseconds of work)."""
MIN_DEFINED_SHARE = 0.5
"""A statistic undefined in more than half of the resamples gets no interval."""


def cluster_index(groups: Sequence[Hashable] | None, n_images: int) -> tuple[np.ndarray, int]:
    """``(cluster of each image (N,) int64, number of clusters)``; each image alone when ``groups`` is None."""
    if groups is None:
        return np.arange(n_images, dtype=np.int64), n_images
    if len(groups) != n_images:
        raise ValueError(f"got {len(groups)} group labels for {n_images} images")
    codes: dict[Hashable, int] = {}
    index = np.fromiter((codes.setdefault(g, len(codes)) for g in groups), dtype=np.int64, count=n_images)
    return index, len(codes)


def chunk_sizes(resamples: int, chunk: int = CHUNK) -> list[int]:
    """How many resamples each chunk draws: ``chunk`` each, the last one the rest."""
    return [min(chunk, resamples - start) for start in range(0, resamples, chunk)]


def resample_weights(
    cluster_of: np.ndarray | None, n_clusters: int, size: int, rng: np.random.Generator
) -> np.ndarray:
    """A ``(size, N)`` float64 matrix: how many times each image is drawn in each of ``size``
    resamples, ``n_clusters`` clusters drawn with replacement per resample. ``cluster_of`` (N,)
    maps images to clusters; None when each image is its own cluster."""
    # 32-bit draws are several times faster than 64-bit ones; the offsets need 64 bits.
    picks = rng.integers(0, n_clusters, size=(size, n_clusters), dtype=np.int32).astype(np.int64)
    picks += (np.arange(size, dtype=np.int64) * n_clusters)[:, None]
    counts = np.bincount(picks.ravel(), minlength=size * n_clusters).reshape(size, n_clusters)
    return (counts if cluster_of is None else np.take(counts, cluster_of, axis=1)).astype(np.float64)


class _AucPlan:
    """One score column sorted once, ready to give the weighted ROC AUC of any weight matrix.

    The smaller of the two groups (positives or negatives) is sorted by score and its weights are
    summed cumulatively; every image then looks up, by an index found once, the weight of the
    smaller group scored below it (ties count half; images of the smaller group look up a column of
    zeros). One cumulative sum over the smaller group, one gather and one dot product per chunk of
    resamples: no per-resample sorting. ``np.take`` rather than fancy indexing: several times faster.
    """

    def __init__(self, is_positive: np.ndarray, scores: np.ndarray) -> None:
        positive = np.asarray(is_positive, dtype=bool)
        scores = np.asarray(scores, dtype=np.float64)
        n_positive = int(positive.sum())
        self.defined = 0 < n_positive < positive.size
        self.large_is_positive = n_positive * 2 >= positive.size
        in_small = ~positive if self.large_is_positive else positive
        small = np.flatnonzero(in_small)
        self.small = small[np.argsort(scores[small], kind="stable")]
        small_scores = scores[self.small]
        zero_column = self.small.size + 1  # cumulative[:, 0] = 0, [:, k] = first k, [:, -1] = 0 again
        self.right = np.where(in_small, zero_column, np.searchsorted(small_scores, scores, side="right"))
        self.left = np.where(in_small, zero_column, np.searchsorted(small_scores, scores, side="left"))
        self.ties = bool(np.any(self.left != self.right))

    def __call__(self, weights: np.ndarray, totals: np.ndarray | None = None) -> np.ndarray:
        """ROC AUC (Mann-Whitney, ties count half) for each row of ``weights`` (b, N); NaN without
        both classes. ``totals``: ``weights.sum(axis=1)`` when the caller has it."""
        b = weights.shape[0]
        if not self.defined:
            return np.full(b, np.nan)
        cumulative = np.zeros((b, self.small.size + 2))
        np.cumsum(np.take(weights, self.small, axis=1), axis=1, out=cumulative[:, 1:-1])
        below = np.take(cumulative, self.right, axis=1)
        if self.ties:
            below += np.take(cumulative, self.left, axis=1)
            below *= 0.5
        beaten = np.einsum("ij,ij->i", weights, below)  # weighted pairs where the large group scores higher
        small_total = cumulative[:, -2]
        pairs = small_total * ((weights.sum(axis=1) if totals is None else totals) - small_total)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(pairs > 0, beaten / pairs, np.nan)
        return share if self.large_is_positive else 1.0 - share


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def _mean_defined(values: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Row means (weighted) over the defined (non-NaN) entries of ``values`` (b, K); NaN if none."""
    defined = ~np.isnan(values)
    w = defined.astype(np.float64) if weights is None else np.where(defined, weights, 0.0)
    return _ratio((np.where(defined, values, 0.0) * w).sum(axis=1), w.sum(axis=1))


class StatisticsPlan:
    """Everything needed to compute every statistic of one set of predictions under any weights.

    Built once from ``y_true`` (N,), ``probabilities`` (N, K) and the class names; calling it with
    a ``(b, N)`` weight matrix gives ``{key: (b,) float64}`` (see the module docstring for keys).
    ``referral_threshold``: the urgent-referral rule the urgent sensitivity and specificity count
    (:func:`~octreport.evaluation.referral.urgent_calls`: ``P(CNV) + P(DME) >= threshold``, or the
    predicted class when None). With all weights 1 the values equal
    :func:`~octreport.evaluation.metrics.compute_classification_metrics` and
    :func:`~octreport.evaluation.referral.compute_referral_metrics` under the same threshold.
    """

    def __init__(self, y_true: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str],
                 referral_threshold: float | None = None) -> None:
        y, p, names = validate_predictions(y_true, probabilities, class_names)
        self.class_names = names
        self.n_images = int(y.shape[0])
        k = len(names)
        predicted = np.argmax(p, axis=1)
        codes = y * k + predicted
        self._onehot = np.zeros((self.n_images, k * k), dtype=np.float64)
        self._onehot[np.arange(self.n_images), codes] = 1.0
        self._class_auc = [_AucPlan(y == c, p[:, c]) for c in range(k)]
        self._oct_order = oct_class_order(names)
        self._urgent_auc = None
        if self._oct_order is not None:
            cnv, dme = self._oct_order[0], self._oct_order[1]
            is_urgent = (y == cnv) | (y == dme)
            self._urgent_auc = _AucPlan(is_urgent, p[:, cnv] + p[:, dme])
            called = urgent_calls(p, names, referral_threshold)
            # Columns: urgent called urgent, urgent missed, other called urgent, other kept out.
            self._urgent_cells = np.stack([called & is_urgent, ~called & is_urgent, called & ~is_urgent,
                                           ~called & ~is_urgent], axis=1).astype(np.float64)

    def keys(self) -> tuple[str, ...]:
        return statistic_keys(self.class_names)

    def confusion(self, weights: np.ndarray) -> np.ndarray:
        """Weighted confusion matrices ``(b, K, K)``, rows = true class."""
        k = len(self.class_names)
        return (weights @ self._onehot).reshape(-1, k, k)

    def __call__(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
        confusion = self.confusion(weights)
        total = confusion.sum(axis=(1, 2))
        tp = np.diagonal(confusion, axis1=1, axis2=2)
        support, predicted = confusion.sum(axis=2), confusion.sum(axis=1)
        fp, fn = predicted - tp, support - tp
        tn = total[:, None] - tp - fp - fn
        # A class absent from the (resampled) data has no precision or F1, as in metrics.py.
        precision, recall = np.where(support > 0, _ratio(tp, predicted), np.nan), _ratio(tp, support)
        specificity, f1 = _ratio(tn, tn + fp), np.where(support > 0, _ratio(2 * tp, 2 * tp + fp + fn), np.nan)
        auc = np.stack([plan(weights, total) for plan in self._class_auc], axis=1)
        out = {
            "accuracy": _ratio(tp.sum(axis=1), total),
            "macro.precision": _mean_defined(precision),
            "macro.recall": _mean_defined(recall),
            "macro.f1": _mean_defined(f1),
            "weighted.precision": _mean_defined(precision, support),
            "weighted.f1": _mean_defined(f1, support),
            "macro_roc_auc": _mean_defined(auc),
        }
        for c, name in enumerate(self.class_names):
            for metric, values in (("precision", precision), ("recall", recall), ("specificity", specificity),
                                   ("f1", f1), ("roc_auc", auc)):
                out[f"per_class.{name}.{metric}"] = values[:, c]
        if self._oct_order is not None:
            out.update(self._referral(confusion, total, weights))
        return out

    def _referral(self, confusion: np.ndarray, total: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
        order = list(self._oct_order)
        canonical = confusion[:, order][:, :, order]  # CNV, DME, DRUSEN, NORMAL
        urgent_right, urgent_missed, other_flagged, other_right = (weights @ self._urgent_cells).T
        return {
            "referral.urgent_sensitivity": _ratio(urgent_right, urgent_right + urgent_missed),
            "referral.urgent_specificity": _ratio(other_right, other_right + other_flagged),
            "referral.urgent_roc_auc": self._urgent_auc(weights, total),
            "referral.weighted_error": _ratio((canonical * PENALTY).sum(axis=(1, 2)), total),
        }


def statistic_keys(class_names: Sequence[str]) -> tuple[str, ...]:
    """Every statistic :class:`StatisticsPlan` gives for these classes, in a fixed order."""
    keys = ["accuracy", "macro.precision", "macro.recall", "macro.f1", "weighted.precision", "weighted.f1", "macro_roc_auc"]
    keys += [f"per_class.{n}.{m}" for n in class_names for m in ("precision", "recall", "specificity", "f1", "roc_auc")]
    if oct_class_order(class_names) is not None:
        keys += [f"referral.{m}" for m in ("urgent_sensitivity", "urgent_specificity", "urgent_roc_auc", "weighted_error")]
    return tuple(keys)


def bootstrap_distributions(
    plans: Sequence[StatisticsPlan], groups: Sequence[Hashable] | None, settings: BootstrapSettings
) -> list[dict[str, np.ndarray]]:
    """Every statistic of every plan under the same ``settings.resamples`` resamples: one dict per
    plan, each value ``(resamples,)``. Plans must describe the same N images in the same order
    (a paired comparison passes two)."""
    if not plans:
        return []
    n = plans[0].n_images
    if any(plan.n_images != n for plan in plans):
        raise ValueError("paired bootstrap: the prediction sets cover different numbers of images")
    cluster_of, n_clusters = cluster_index(groups, n)
    identity = n_clusters == n and np.array_equal(cluster_of, np.arange(n))
    sizes = chunk_sizes(settings.resamples)
    seeds = np.random.SeedSequence(settings.seed).spawn(len(sizes))

    def evaluate(k: int) -> list[dict[str, np.ndarray]]:
        weights = resample_weights(None if identity else cluster_of, n_clusters, sizes[k], np.random.default_rng(seeds[k]))
        return [plan(weights) for plan in plans]

    threads = max(1, min(MAX_THREADS, os.cpu_count() or 1, len(sizes)))
    if threads == 1 or n * settings.resamples < THREADED_FROM:
        chunks = [evaluate(k) for k in range(len(sizes))]
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            chunks = list(pool.map(evaluate, range(len(sizes))))
    return [{key: np.concatenate([chunk[i][key] for chunk in chunks]) for key in chunks[0][i]} for i in range(len(plans))]


def percentile_interval(values: np.ndarray, level: float) -> tuple[float, float] | None:
    """The central ``level`` percentile interval of the defined values; None when most are undefined."""
    defined = values[~np.isnan(values)]
    if defined.size == 0 or defined.size < MIN_DEFINED_SHARE * values.size:
        return None
    alpha = 1.0 - level
    low, high = np.quantile(defined, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def point_values(plan: StatisticsPlan) -> dict[str, float | None]:
    """Every statistic on the images as they are (weight 1 each); None where undefined."""
    values = plan(np.ones((1, plan.n_images)))
    return {key: (None if np.isnan(v[0]) else float(v[0])) for key, v in values.items()}

