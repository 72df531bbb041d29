"""The bounded near-duplicate audit (issue 24): clusters with exact pair counts against the list of
every pair that metrics.json held before.

Run on demand (not a test):

    python benchmarks/bench_near_duplicates.py [--images 10000] [--repeats 3] [--json OUT]

``--images`` synthetic 64-bit hashes with many near-copies: 10 scans copied 300 times each, 1,000
scans copied 3 times, the rest single; each copy has 0 to 2 random bits flipped (re-encoded copies
move a pHash by 0-6 bits). Splits and patients are drawn at random. Two ways, interleaved in the
same process on the same hashes, median of ``--repeats`` after a warm-up:

- ``clusters``: :func:`octreport.data.near_clusters.cluster_near_duplicates` and the listed
  clusters as JSON (what the data audit now does);
- ``every pair``: :func:`octreport.data.near_duplicates.near_duplicate_pairs` over all the hashes
  and one JSON entry per pair (what it did before).

Peak Python memory (``tracemalloc``) and the JSON's size are measured for each way, once.
"""

from __future__ import annotations

import argparse
import json
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from bench_common import Report, compare  # noqa: E402
from octreport.data.near_clusters import cluster_near_duplicates  # noqa: E402
from octreport.data.near_duplicates import near_duplicate_pairs  # noqa: E402


def synthetic(images: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    sizes = [300] * 10 + [3] * 1000
    sizes += [1] * max(0, images - sum(sizes))
    base = rng.integers(0, 2**63, len(sizes), dtype=np.uint64)
    hashes = np.repeat(base, sizes)[:images]
    for _ in range(2):
        flip = rng.random(images) < 0.4
        hashes[flip] ^= np.left_shift(np.uint64(1), rng.integers(0, 64, int(flip.sum())).astype(np.uint64))
    splits = rng.choice(["train", "val", "test"], images).tolist()
    patients = [f"P{k}" for k in rng.integers(0, images // 2, images)]
    sha = [f"{k:064x}" for k in range(images)]
    return hashes, splits, patients, sha


def clusters_way(hashes, splits, patients, sha) -> str:
    found = cluster_near_duplicates(hashes, splits, patients, sha, 4)
    return json.dumps({"pairs": found.counts.pairs, "across": found.counts.across_splits, "clusters": found.clusters,
                       "listed": [{"size": c.size, "pairs": c.counts.pairs, "images": list(c.listed)} for c in found.listed]})


def every_pair_way(hashes, splits, patients, sha) -> str:
    first, second, distance = near_duplicate_pairs(hashes, 4)
    listed = [{"first": {"path": sha[i], "split": splits[i]}, "second": {"path": sha[j], "split": splits[j]},
               "distance": d, "same_patient": patients[i] == patients[j]}
              for i, j, d in zip(first.tolist(), second.tolist(), distance.tolist())]
    return json.dumps({"pairs": listed})


def peak(fn) -> tuple[float, int]:
    tracemalloc.start()
    text = fn()
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top / 1e6, len(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    data = synthetic(args.images)
    report = Report("near-duplicate audit, bounded")
    found = cluster_near_duplicates(*data, 4)
    pairs = len(near_duplicate_pairs(data[0], 4)[0])
    report.details.update(images=args.images, pairs_within_4_bits=pairs, pairs_different_patients=found.counts.pairs,
                          clusters=found.clusters)
    timings = compare({"clusters": lambda: clusters_way(*data), "every pair": lambda: every_pair_way(*data)}, args.repeats)
    report.add("near-duplicates", f"{args.images:,} hashes: clusters, seconds", timings["clusters"], "-")
    report.add("near-duplicates", f"{args.images:,} hashes: every pair listed, seconds", timings["every pair"], "-")
    report.add("near-duplicates", "clusters / every pair, wall time", timings.ratio("clusters", "every pair"), "x",
               "< 1", timings.ratio("clusters", "every pair") < 1, timings.spread("clusters", "every pair"))
    for name, fn in (("clusters", clusters_way), ("every pair", every_pair_way)):
        megabytes, size = peak(lambda: fn(*data))
        report.add("near-duplicates", f"{name}: peak Python memory", megabytes, "MB")
        report.add("near-duplicates", f"{name}: JSON written", size / 1e6, "MB")
    report.print()
    print(f"  {pairs:,} pairs within 4 bits; {found.counts.pairs:,} of different patients "
          f"({found.counts.across_splits:,} across splits) in {found.clusters:,} clusters")
    report.write(args.json)


if __name__ == "__main__":
    main()
