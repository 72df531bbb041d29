"""Issue 28: one read per image, and what depends only on the weights computed once.

Run on demand (not a test):

    python benchmarks/bench_one_read.py [--images 800] [--repeats 3] [--skip-report] [--model M.keras] [--json OUT]

1. The per-image stages against the bound, on ``--images`` real Kermany JPEGs of
   ``../shared/oct-real`` (evenly spread over the sorted list), through the default network
   (notebook CNN, 128x128x1, untrained: the cost does not depend on the weights), batch 32, every
   way interleaved in the same process (``bench_common.compare``):

   * ``forward``: the evaluation's compiled step (prediction, layer health, running top-k) on the
     images already decoded in memory;
   * ``decode``: TensorFlow's parallel read, decode and resize of the files (``image_dataset``),
     no model;
   * the bound a pass that does both on the same cores can reach: ``1 / (1/decode + 1/forward)``
     in images per second;
   * ``one pass`` (this issue): ``evaluate_files``, each file read once, its bytes hashed, decoded
     for the model and for the image facts, in the one streamed, compiled pass;
   * ``three passes`` (before it): the image facts pass, the fingerprint's hashing of every file,
     then the evaluation pass reading the files again.

   Goal: one pass >= 0.8 of the bound.
2. ``octreport report`` of a model on all of ``../shared/oct-real`` (HTML), twice with one empty
   weights cache: the first run computes the activation maximisation and stores it, the second
   reads it. The stage table comes from each run's ``metrics.json``. ``--model``: the model to
   report on; default: the ``oct-real`` preset trained for one epoch on the same folder (a timing
   benchmark: the maximisation's cost depends on the architecture, not on how well it learned;
   its report evaluates the images it trained on, which says nothing about accuracy).

Every figure is a ratio of ways measured in the same run, or a stage time of two runs made one after
the other; the machine is shared with other jobs, so absolute seconds drift.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench_common import OCT_REAL, Report, child_env, compare, load_average, python  # noqa: E402
from octreport.data.image_facts import collect_image_facts  # noqa: E402
from octreport.data.layout import scan_dataset  # noqa: E402
from octreport.data.pipeline import image_dataset  # noqa: E402
from octreport.data.preprocessing import Preprocessing  # noqa: E402
from octreport.engine.layer_health import predict_with_layer_health  # noqa: E402
from octreport.engine.layers import discover_conv_layers  # noqa: E402
from octreport.engine.top_activations import TopActivationsAccumulator  # noqa: E402
from octreport.evaluation.predict import evaluate_files  # noqa: E402
from octreport.hashing import sha256_file  # noqa: E402
from octreport.models.architectures import notebook_cnn  # noqa: E402

BATCH = 32


def spread_items(root: Path, count: int):
    items = list(scan_dataset(root).splits["all"])
    step = max(1, len(items) // count)
    return items[::step][:count]


def per_image_stages(report: Report, count: int, repeats: int) -> None:
    items = spread_items(OCT_REAL, count)
    p = Preprocessing()
    model = notebook_cnn(p.input_shape, 4)
    layers = discover_conv_layers(model)
    decoded = np.concatenate([b[0].numpy() for b in image_dataset(items, p, BATCH)])
    labels = np.array([i.label for i in items], np.int32)
    in_memory = tf.data.Dataset.from_tensor_slices((decoded, labels, np.arange(len(items), dtype=np.int64))).batch(BATCH)

    def drain(dataset) -> None:
        for _ in dataset:
            pass

    def three_passes() -> None:
        collect_image_facts([i.path for i in items])
        for item in items:
            sha256_file(item.path)
        predict_with_layer_health(model, layers, image_dataset(items, p, BATCH, with_index=True),
                                  top=TopActivationsAccumulator(layers))

    ways = {
        "forward": lambda: predict_with_layer_health(model, layers, in_memory, top=TopActivationsAccumulator(layers)),
        "decode": lambda: drain(image_dataset(items, p, BATCH)),
        "one pass": lambda: evaluate_files(model, layers, items, p, BATCH, TopActivationsAccumulator(layers)),
        "three passes": three_passes,
    }
    timings = compare(ways, repeats)
    n = len(items)
    rate = {name: n / seconds for name, seconds in timings.items()}
    bound = 1 / (1 / rate["decode"] + 1 / rate["forward"])
    details = {name: round(r, 1) for name, r in rate.items()}
    details["bound"] = round(bound, 1)
    report.details["per-image rates (images/s, median of rounds)"] = details
    report.details["images"] = n
    for name in ways:
        report.add("1 per-image", f"{name}: images/s", rate[name], "-")
    report.add("1 per-image", "bound 1/(1/decode + 1/forward): images/s", bound, "-")
    ratio = rate["one pass"] / bound
    report.add("1 per-image", "one pass (read once: hash, facts, decode, forward) / the bound", ratio, "of",
               goal=">= 0.8", met=ratio >= 0.8)
    report.add("1 per-image", "three passes (facts, hash, evaluate: before) / the bound", rate["three passes"] / bound, "of")
    report.add("1 per-image", "one pass / three passes, wall time (rounds)", timings.ratio("one pass", "three passes"), "x",
               note=timings.spread("one pass", "three passes"), cpu=timings.ratio("one pass", "three passes", "cpu"))


def train_oct_real_model(folder: Path) -> Path:
    path = folder / "oct-real-1-epoch.keras"
    subprocess.run([python(), "-m", "octreport", "train", "--preset", "oct-real", "--data", str(OCT_REAL), "--epochs", "1",
                    "--out", str(path), "--quiet"], env=child_env(), check=True)
    return path


def report_twice(report: Report, model: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = model or train_oct_real_model(folder)
        runs = {}
        for name in ("first", "second"):
            out = folder / name
            start = time.perf_counter()
            done = subprocess.run([python(), "-m", "octreport", "report", "--model", str(model), "--data", str(OCT_REAL),
                                   "--format", "html", "--out", str(out), "--cache-dir", str(folder / "cache"), "--quiet"],
                                  env=child_env(), capture_output=True, text=True)
            wall = time.perf_counter() - start
            if done.returncode not in (0, 5):
                raise SystemExit(done.stdout + done.stderr)
            metrics = json.loads((out / "latest" / "metrics.json").read_text())
            log = (out / "latest" / "run.log").read_text()
            views = re.search(r"decoded in ([0-9.]+) s; the model-only part .* ([0-9.]+) s", log)
            manifest = json.loads((out / "latest" / "manifest.json").read_text())
            runs[name] = {"wall": wall, "stages": metrics["timings_seconds"], "cache": manifest["cache"]["parts"],
                          "patch sources decode": float(views.group(1)), "model-only": float(views.group(2)),
                          "accuracy": metrics["classification"]["accuracy"],
                          "predictions": hashlib.sha256((out / "latest" / "predictions.csv").read_bytes()).hexdigest()}
        report.details["report runs"] = runs
        first, second = runs["first"], runs["second"]
        report.add("2 report", "first report: wall s (process start to exit)", first["wall"], "-")
        report.add("2 report", "second report (weights cache): wall s", second["wall"], "-")
        report.add("2 report", "second / first, wall", second["wall"] / first["wall"], "x")
        for name, goal, limit in (("first", "<= 1", 1.0), ("second", "<= 0.10", 0.10)):
            run = runs[name]
            evaluate = run["stages"]["evaluate"]
            share = run["model-only"] / evaluate
            report.add("2 report", f"{name} report: model-only part of the filter views / evaluate", share, "x",
                       goal=goal, met=share <= limit)
            report.add("2 report", f"{name} report: whole filter views stage (with the top patches' decode) / evaluate",
                       run["stages"]["filter views"] / evaluate, "x")
        report.add("2 report", "same predictions.csv both times", float(first["predictions"] == second["predictions"]), "-")
        print("\nstage            first s   second s")
        for stage in first["stages"]:
            print(f"{stage:<16} {first['stages'][stage]:>7.2f}   {second['stages'].get(stage, float('nan')):>7.2f}")
        print(f"cache parts: first {first['cache']}\n             second {second['cache']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=800)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-report", action="store_true")
    parser.add_argument("--skip-stages", action="store_true")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if not OCT_REAL.is_dir():
        raise SystemExit(f"needs the real scans at {OCT_REAL}")
    report = Report("one read per image, weights cache (issue 28)")
    report.details["load average before"] = load_average()
    if not args.skip_stages:
        per_image_stages(report, args.images, args.repeats)
    if not args.skip_report:
        report_twice(report, args.model)
    report.details["load average after"] = load_average()
    report.print()
    print(json.dumps(report.details, indent=1, default=str))
    report.write(args.json)


if __name__ == "__main__":
    main()
