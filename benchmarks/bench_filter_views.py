"""What the filter views cost: the running top-k in the evaluation pass, and activation maximisation.

Run on demand (not a test):

    python benchmarks/bench_filter_views.py [--images 128] [--repeats 3] [--skip-e2e] [--json OUT]

1. top-k: ``evaluate_with_layer_health`` with the running top-k per filter (k = 6, every conv
   layer) against the same pass without it (issue 19's goal: at most +10 %), on real Kermany JPEGs
   (``../shared/oct-real``, else the bundled sample data) through the default network (notebook
   CNN, 128x128x1, untrained: the cost does not depend on the weights), interleaved (``compare``),
   and the same on images already decoded in memory (the compiled step alone, the harder case:
   no decoding to hide behind).
2. activation maximisation: the default job ``octreport run`` (bundled sample data) with all
   filter views against ``--filter-views kernels,patches`` (no maximisation), one round each
   (a run takes about a minute); the goal: at most +15 % of the whole run. The share of the
   "filter views" stage (patches and maximisation) in the full run is given beside it.

Every figure is a ratio of two ways measured in the same process or the same session; the machine is
shared, so CPU-time ratios (process CPU time, which other processes hardly change) are given
beside the wall-time ones.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench_common import OCT_REAL, SAMPLE_DATA, Report, compare, load_average  # noqa: E402
from octreport.data.layout import scan_dataset  # noqa: E402
from octreport.data.pipeline import load_images  # noqa: E402
from octreport.data.preprocessing import Preprocessing  # noqa: E402
from octreport.engine.layer_health import predict_with_layer_health  # noqa: E402
from octreport.engine.layers import discover_conv_layers  # noqa: E402
from octreport.engine.top_activations import TopActivationsAccumulator  # noqa: E402
from octreport.evaluation.predict import evaluate_with_layer_health  # noqa: E402
from octreport.models.architectures import notebook_cnn  # noqa: E402


def _items(count: int):
    root = OCT_REAL if OCT_REAL.is_dir() else SAMPLE_DATA
    scanned = scan_dataset(root)
    items = [item for split in scanned.splits.values() for item in split]
    step = max(1, len(items) // count)
    return root, items[::step][:count]


def top_k_overhead(report: Report, images: int, repeats: int) -> None:
    p = Preprocessing(height=128, width=128, channels=1)
    model = notebook_cnn(p.input_shape, 4)
    layers = discover_conv_layers(model)
    root, items = _items(images)
    x = load_images(items, p)
    decoded = tf.data.Dataset.from_tensor_slices((x, np.zeros(len(x), np.int64), np.arange(len(x)))).batch(32)
    ways = {
        "streamed": lambda: evaluate_with_layer_health(model, layers, items, p, 32),
        "streamed + top-k": lambda: evaluate_with_layer_health(model, layers, items, p, 32,
                                                               TopActivationsAccumulator(layers, 6)),
        "decoded": lambda: predict_with_layer_health(model, layers, decoded),
        "decoded + top-k": lambda: predict_with_layer_health(model, layers, decoded,
                                                             top=TopActivationsAccumulator(layers, 6)),
    }
    t = compare(ways, repeats)
    where = f"{len(items)} images of {root.name}, notebook CNN 128x128x1, {len(layers)} conv layers, load {load_average()}"
    for base in ("streamed", "decoded"):
        ratio, cpu = t.ratio(f"{base} + top-k", base), t.ratio(f"{base} + top-k", base, "cpu")
        report.add("1 top-k", f"evaluation pass {'from JPEGs' if base == 'streamed' else 'on decoded images'} with the "
                   "running top-k / without", ratio, "x", "<= 1.10x", ratio <= 1.10, note=f"{where}; {t.spread(f'{base} + top-k', base)}",
                   cpu=cpu)


def maximisation_share(report: Report) -> None:
    from bench_e2e import run_default_job

    out = Path(tempfile.mkdtemp(prefix="octreport-bench-views-"))
    without = run_default_job(out / "without", False, ["--filter-views", "kernels,patches"])
    full = run_default_job(out / "full", False)
    ratio = full["wall"] / without["wall"]
    report.add("2 maximisation", "default run with activation maximisation / without (wall, one round each)", ratio, "x",
               "<= 1.15x", ratio <= 1.15,
               note=f"{full['wall']:.1f} s vs {without['wall']:.1f} s; load {load_average()}")
    stages = full["stages"]
    if "filter views" in stages:
        report.add("2 maximisation", "share of the default run: filter views stage (patches + maximisation)",
                   100 * stages["filter views"] / full["wall"], "%")
    if "filter views" in without["stages"]:
        report.add("2 maximisation", "share of the default run without maximisation: filter views stage (patches)",
                   100 * without["stages"]["filter views"] / without["wall"], "%")
    report.details.update({"full": full, "without": without})


def main(argv: Sequence[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    report = Report("filter views")
    top_k_overhead(report, args.images, args.repeats)
    if not args.skip_e2e:
        maximisation_share(report)
    report.print()
    report.write(args.json)
    return report


if __name__ == "__main__":
    main()
