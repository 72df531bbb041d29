"""Near-duplicate search over 64-bit perceptual hashes, bucketed so it never compares all pairs.

Pigeonhole: split the 64 bits into ``threshold + 1`` bands; two hashes within Hamming distance
``threshold`` agree exactly on at least one band. Each band is sorted once, and only hashes that
share a band value are compared (vectorised in NumPy). 100,000 hashes take about a second on
2 cores (``benchmarks/bench_data_audit.py``); all pairs would be 5e9 comparisons.
"""

from __future__ import annotations

import numpy as np

from octreport.data.image_facts import hamming

MAX_BUCKET_PAIRS = 50_000_000
"""Candidate pairs a search may generate before it refuses (a data set of near-identical blank
images would otherwise make every pair a candidate)."""


def near_duplicate_pairs(hashes: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs ``(i, j)`` with ``i < j`` whose hashes differ in at most ``threshold`` bits,
    and their distances; three arrays of equal length, sorted by (i, j)."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    if not 0 <= threshold < 64:
        raise ValueError(f"threshold must be in [0, 63], got {threshold}")
    found = [_band_matches(hashes, lo, hi, threshold) for lo, hi in _bands(threshold + 1)]
    keys = np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)
    n = np.int64(max(len(hashes), 1))
    first, second = keys // n, keys % n
    return first, second, hamming(hashes[first], hashes[second]).astype(np.int64)


def _bands(count: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, 64, count + 1).round().astype(int)
    return [(int(lo), int(hi)) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]


def _band_matches(hashes: np.ndarray, lo: int, hi: int, threshold: int) -> np.ndarray:
    """Pairs (as ``i * n + j``, ``i < j``) of hashes with the same bits ``lo..hi-1`` and at most
    ``threshold`` bits apart (checked here, so only matches are kept, not every candidate)."""
    n = len(hashes)
    mask = np.uint64((1 << (hi - lo)) - 1)
    band = np.bitwise_and(np.right_shift(hashes, np.uint64(lo)), mask)
    order = np.argsort(band, kind="stable")
    sorted_band = band[order]
    found, total, offset = [], 0, 1
    while offset < n:
        same = np.flatnonzero(sorted_band[offset:] == sorted_band[:-offset])
        if same.size == 0:
            break
        a, b = order[same], order[same + offset]
        close = hamming(hashes[a], hashes[b]) <= threshold
        a, b = a[close], b[close]
        found.append(np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b))
        total += same.size
        if total > MAX_BUCKET_PAIRS:
            raise ValueError(
                f"near-duplicate search: more than {MAX_BUCKET_PAIRS:,} candidate pairs; the images are too "
                "alike for a perceptual hash to tell apart (e.g. blank scans)"
            )
        offset += 1
    return np.concatenate(found) if found else np.zeros(0, np.int64)
