"""The data audit's costs: the image-facts pass against the evaluation decode, and the
near-duplicate search over 100,000 hashes.

Run on demand (not a test):

    python benchmarks/bench_data_audit.py [--images 400] [--repeats 3] [--hashes 100000] [--json OUT]

1. On real Kermany JPEGs (``../shared/oct-real``, read only; an evenly spaced subset of
   ``--images``), interleaved, median of ``--repeats`` after a warm-up: ``collect_image_facts``
   (the DCT-scaled 1/8 decode, width/height, mean, pHash) against the evaluation pass's decode
   (``image_dataset`` at the default 128x128x1, no model) and against the manifest's SHA-256 of the
   same files. A ratio below 1 means the audit's decode is cheaper than the decode every run already
   does for its test split.
2. ``near_duplicate_pairs`` over ``--hashes`` 64-bit hashes made from the real scans' pHashes with
   a few random bits flipped each (as alike as real OCT scans are, not uniform random bits), and over
   uniform random hashes; wall seconds (the issue's goal: well under a minute on 2 cores), and the
   bucketed search against NumPy all-pairs on a 10,000-hash subset, both measured here.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from bench_common import OCT_REAL, Report, compare  # noqa: E402
from octreport.hashing import sha256_file  # noqa: E402
from octreport.data.image_facts import collect_image_facts, hamming  # noqa: E402
from octreport.data.layout import scan_dataset  # noqa: E402
from octreport.data.near_duplicates import near_duplicate_pairs  # noqa: E402
from octreport.data.pipeline import image_dataset  # noqa: E402
from octreport.data.preprocessing import Preprocessing  # noqa: E402


def _subset(count: int):
    items = [item for split in scan_dataset(OCT_REAL).splits.values() for item in split]
    step = max(1, len(items) // count)
    return items[::step][:count]


def _decode_pass(items) -> None:
    for _ in image_dataset(items, Preprocessing(), 32):
        pass


def _all_pairs(hashes: np.ndarray, threshold: int) -> int:
    found = 0
    for start in range(0, len(hashes), 1000):
        block = hamming(hashes[start:start + 1000, None], hashes[None, :])
        found += int(np.count_nonzero(np.triu(block <= threshold, start + 1)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hashes", type=int, default=100_000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    report = Report("data audit")
    if OCT_REAL.is_dir():
        items = _subset(args.images)
        paths = [item.path for item in items]
        timings = compare({
            "facts": lambda: collect_image_facts(paths),
            "evaluation decode": lambda: _decode_pass(items),
            "sha256": lambda: [sha256_file(p) for p in paths],
        }, args.repeats)
        ratio = timings.ratio("facts", "evaluation decode")
        report.add("facts pass", "image facts (1/8 DCT decode + pHash) / evaluation decode (128x128)", ratio, "x", "< 1",
                   ratio < 1, f"{len(paths)} oct-real JPEGs; {timings.spread('facts', 'evaluation decode')}",
                   cpu=timings.ratio("facts", "evaluation decode", "cpu"))
        report.add("facts pass", "image facts / SHA-256 of the same files", timings.ratio("facts", "sha256"), "x")
        report.details["facts_seconds_per_1000"] = 1000 * timings["facts"] / len(paths)
        every = [item.path for split in scan_dataset(OCT_REAL).splits.values() for item in split]
        real = collect_image_facts(every).phash  # all 1,000 real scans as the base of the clustered hashes
    else:
        real = np.random.default_rng(0).integers(0, 2**63, 1000, dtype=np.uint64)
        report.details["note"] = "oct-real absent: uniform random base hashes"
    rng = np.random.default_rng(1)
    base = real[rng.integers(0, len(real), args.hashes)]
    flips = np.zeros(args.hashes, np.uint64)
    for _ in range(8):  # about 8 random bits flipped per hash: clusters as alike as real scans
        flips |= np.left_shift(np.uint64(1), rng.integers(0, 64, args.hashes).astype(np.uint64))
    clustered = base ^ flips
    uniform = rng.integers(0, 2**63, args.hashes, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, args.hashes).astype(np.uint64)
    for name, hashes in (("clustered on real pHashes", clustered), ("uniform random", uniform)):
        start = time.perf_counter()
        pairs = near_duplicate_pairs(hashes, 4)
        seconds = time.perf_counter() - start
        report.add("near-duplicate search", f"{args.hashes:,} hashes, {name}: seconds", seconds, "-", "< 60 s", seconds < 60,
                   f"{len(pairs[0]):,} pairs within 4 bits")
    subset = clustered[:10_000]
    timings = compare({"bucketed": lambda: near_duplicate_pairs(subset, 4), "all pairs": lambda: _all_pairs(subset, 4)}, 1)
    ratio = timings.ratio("bucketed", "all pairs")
    report.add("near-duplicate search", "bucketed / NumPy all pairs, 10,000 clustered hashes", ratio, "x", "< 1", ratio < 1)
    assert len(near_duplicate_pairs(subset, 4)[0]) == _all_pairs(subset, 4)
    report.print()
    report.write(args.json)


if __name__ == "__main__":
    main()
