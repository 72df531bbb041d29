"""Occlusion maps: octreport's compiled forward pass against calling the model eagerly.

Run on demand (not a test):

    python benchmarks/bench_occlusion.py [--quick] [--repeats 3] [--json OUT]

``--occlusion`` slides a box over each shown image and predicts every occluded copy: thousands of
forward passes per image on the oct-real recipe's input (compact-bn, 128x256x1, the paper's 20 px
box and 10 px step on the 496-row original: 3,570 positions). ``occlusion_map`` calls a Keras
model through ``octreport.engine.streaming.compiled_forward``; the other way passes a plain
callable that calls the same model eagerly (what it did before). Interleaved, median of
``--repeats`` after a warm-up; the largest difference between the two heat maps is reported.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from bench_common import Report, compare  # noqa: E402
from octreport.engine.occlusion import occlusion_map  # noqa: E402
from octreport.models.architectures import build_model  # noqa: E402

SCAN_ROWS = 496  # rows of a Kermany Spectralis B-scan: the box is given on that scale


def main(argv: Sequence[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64x128 input, 2 repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    height, width = (64, 128) if args.quick else (128, 256)
    repeats = args.repeats or (2 if args.quick else 3)
    model = build_model("compact-bn", (height, width, 1), 4)
    image = np.random.default_rng(0).random((height, width, 1), dtype=np.float32)
    eager = lambda batch, training=False: model(batch, training=training)  # noqa: E731
    settings = dict(class_index=0, patch=20, stride=10, original_scale=height / SCAN_ROWS)
    results = {}

    def way(name, forward):
        def run():
            results[name] = occlusion_map(forward, image, **settings)
        return run

    t = compare({"compiled (octreport)": way("compiled", model), "eager model(x)": way("eager", eager)}, repeats)
    difference = float(np.abs(results["compiled"].heatmap - results["eager"].heatmap).max())
    report = Report("occlusion")
    report.add("occlusion", f"one occlusion map, compact-bn {height}x{width}, {results['compiled'].positions} boxes: "
               "compiled / eager (time)", t.ratio("compiled (octreport)", "eager model(x)"), "x",
               cpu=t.ratio("compiled (octreport)", "eager model(x)", "cpu"),
               note=f"max heat-map difference {difference:.0e}, " + t.spread("compiled (octreport)", "eager model(x)"))
    report.details.update(seconds=dict(t), positions=results["compiled"].positions)
    report.print()
    report.write(args.json)
    return report


if __name__ == "__main__":
    main()
