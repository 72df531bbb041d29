"""Near-duplicates as clusters with exact pair counts, in memory and time near-linear in the images.

300 re-encoded copies of one scan are 44,850 pairs but one cluster of 300. Images with the same
perceptual hash are one group (the common case for copies: re-encoding rarely moves the pHash);
the bucketed search (:mod:`octreport.data.near_duplicates`) runs over the distinct hashes only,
and a union-find joins the groups it links into clusters. Pairs are counted, never listed: within a
group, and between two linked groups, the pairs that agree on a key (split, patient, file SHA-256,
and their combinations) are sums of count products, so the exact number of near-duplicate pairs
of different patients (exact duplicates left out), of those across splits and of same-patient
look-alikes comes by inclusion-exclusion without making one pair. At most
:data:`CLUSTERS_LISTED` clusters are listed, biggest first, each with at most
:data:`IMAGES_LISTED` images and one example pair.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from octreport.data.image_facts import hamming
from octreport.data.near_duplicates import near_duplicate_pairs

CLUSTERS_LISTED = 20
IMAGES_LISTED = 10
_EXAMPLE_SEARCH = 16
"""Images of each split of each side searched for a cluster's example pair."""

# Keys two images of a pair may agree on: 0 split, 1 patient, 2 file SHA-256.
_KEYS = ((), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2))
_K = {key: n for n, key in enumerate(_KEYS)}


@dataclass(frozen=True)
class PairCounts:
    """Near-duplicate pairs: of different or unknown patients (``pairs``), of those across
    splits, and of the same patient (``same_patient``); exact duplicates are in none."""

    pairs: int
    across_splits: int
    same_patient: int

    @classmethod
    def from_agreements(cls, a: Sequence[int]) -> PairCounts:
        """From the pairs that agree on each key of ``_KEYS`` (inclusion-exclusion)."""
        near = a[_K[()]] - a[_K[(1,)]] - a[_K[(2,)]] + a[_K[(1, 2)]]
        near_same_split = a[_K[(0,)]] - a[_K[(0, 1)]] - a[_K[(0, 2)]] + a[_K[(0, 1, 2)]]
        return cls(int(near), int(near - near_same_split), int(a[_K[(1,)]] - a[_K[(1, 2)]]))


@dataclass(frozen=True)
class NearCluster:
    """Images whose perceptual hashes are linked within the threshold (chained): ``size``
    images, ``counts`` of their pairs, images per split, the first :data:`IMAGES_LISTED`
    (indices, by position), and an example pair ``(i, j, distance)`` of different patients
    (across splits when there is one), or None when none was found among the first images."""

    size: int
    counts: PairCounts
    splits: tuple[tuple[str, int], ...]
    listed: tuple[int, ...]
    example: tuple[int, int, int] | None


@dataclass(frozen=True)
class NearClusters:
    """Every cluster counted, the biggest :data:`CLUSTERS_LISTED` listed."""

    counts: PairCounts
    clusters: int
    listed: tuple[NearCluster, ...]


def _find(parent: np.ndarray, i: int) -> int:
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:
        parent[i], i = root, parent[i]
    return root


def _components(size: int, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Union-find over ``size`` nodes joined by the edges ``first[k]``-``second[k]``: each node's root."""
    parent = np.arange(size)
    for a, b in zip(first.tolist(), second.tolist()):
        ra, rb = _find(parent, a), _find(parent, b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([_find(parent, i) for i in range(size)], dtype=np.int64)


def _key_counts(columns: list[tuple[int, int, int]]) -> list[Counter]:
    """For each key of ``_KEYS``, how many of the images have each value."""
    return [Counter(tuple(c[i] for i in key) for c in columns) for key in _KEYS]


def _within(counts: list[Counter]) -> np.ndarray:
    """Pairs of one group agreeing on each key."""
    return np.array([sum(n * (n - 1) // 2 for n in c.values()) for c in counts], dtype=np.int64)


def _between(a: list[Counter], b: list[Counter]) -> np.ndarray:
    """Pairs of two groups (one image in each) agreeing on each key."""
    return np.array([sum(n * cb.get(v, 0) for v, n in ca.items()) if len(ca) <= len(cb) else
                     sum(n * ca.get(v, 0) for v, n in cb.items()) for ca, cb in zip(a, b)], dtype=np.int64)


def cluster_near_duplicates(hashes: np.ndarray, splits: Sequence[str], patients: Sequence[str | None],
                            sha256: Sequence[str], threshold: int) -> NearClusters:
    """The near-duplicate clusters of images with perceptual ``hashes`` (uint64), their ``splits``,
    ``patients`` (None: unknown, never the same as another) and file ``sha256``."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    n = len(hashes)
    if n == 0:
        return NearClusters(PairCounts(0, 0, 0), 0, ())
    distinct, group, group_size = np.unique(hashes, return_inverse=True, return_counts=True)
    first, second, distance = near_duplicate_pairs(distinct, threshold)
    involved = np.zeros(len(distinct), dtype=bool)
    involved[group_size > 1] = True
    involved[first], involved[second] = True, True
    root = _components(len(distinct), first, second)

    split_id = {s: k for k, s in enumerate(dict.fromkeys(splits))}
    patient_id: dict[str, int] = {}
    sha_id: dict[str, int] = {}
    members: dict[int, list[int]] = {}
    for i in np.flatnonzero(involved[group]).tolist():
        members.setdefault(int(group[i]), []).append(i)

    def columns(g: int) -> list[tuple[int, int, int]]:
        return [(split_id[splits[i]], -1 - i if patients[i] is None else patient_id.setdefault(patients[i], len(patient_id)),
                 sha_id.setdefault(sha256[i], len(sha_id))) for i in members[g]]

    counted = {g: _key_counts(columns(g)) for g in members}
    agree: dict[int, np.ndarray] = {}
    examples: dict[int, tuple[int, int, int]] = {}
    for g, counts in counted.items():
        agree[root[g]] = agree.get(root[g], 0) + _within(counts)
        _example(examples, root[g], members[g], members[g], splits, patients, sha256, hashes)
    for a, b in zip(first.tolist(), second.tolist()):
        agree[root[a]] = agree.get(root[a], 0) + _between(counted[a], counted[b])
        _example(examples, root[a], members[a], members[b], splits, patients, sha256, hashes)

    per_cluster = {r: PairCounts.from_agreements(found) for r, found in agree.items()}
    total = PairCounts(*(sum(getattr(c, f) for c in per_cluster.values()) for f in ("pairs", "across_splits", "same_patient")))
    image_root = root[group]
    sizes = np.bincount(image_root[involved[group]], minlength=len(distinct))
    clusters = sorted(((r, c) for r, c in per_cluster.items() if c.pairs > 0),
                      key=lambda rc: (-sizes[rc[0]], -rc[1].across_splits, rc[0]))
    listed = []
    for r, counts in clusters[:CLUSTERS_LISTED]:
        images = np.flatnonzero(image_root == r)
        listed.append(NearCluster(int(sizes[r]), counts, tuple(Counter(splits[i] for i in images.tolist()).most_common()),
                                  tuple(images[:IMAGES_LISTED].tolist()), examples.get(r)))
    return NearClusters(total, len(clusters), tuple(listed))


def _per_split(side: list[int], splits: Sequence[str]) -> list[int]:
    """The first :data:`_EXAMPLE_SEARCH` images of ``side`` in each split."""
    taken: dict[str, list[int]] = {}
    for i in side:
        picked = taken.setdefault(splits[i], [])
        if len(picked) < _EXAMPLE_SEARCH:
            picked.append(i)
    return [i for picked in taken.values() for i in picked]


def _example(examples: dict[int, tuple[int, int, int]], cluster: int, side_a: list[int], side_b: list[int],
             splits, patients, sha256, hashes) -> None:
    """Keep an example pair of different patients for ``cluster``, one across splits if found."""
    best = examples.get(cluster)
    if best is not None and splits[best[0]] != splits[best[1]]:
        return
    for i in _per_split(side_a, splits):
        for j in _per_split(side_b, splits):
            if i == j or sha256[i] == sha256[j] or (patients[i] is not None and patients[i] == patients[j]):
                continue
            across = splits[i] != splits[j]
            if best is None or across:
                d = int(hamming(hashes[i:i + 1], hashes[j:j + 1])[0])
                best = (min(i, j), max(i, j), d)
                examples[cluster] = best
                if across:
                    return
