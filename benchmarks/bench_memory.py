"""Memory: peak resident memory of evaluating N images against 4N, each in its own child process.

Run on demand (not a test):

    python benchmarks/bench_memory.py [--quick] [--count N] [--json OUT]

The N images are the real Kermany JPEGs of ``../shared/oct-real`` (read only; N = all 1000 of
them, ``--quick``: the first 100 in sorted order); 4N is the same file list four times over. Each
measurement is a fresh Python process that builds the default network (untrained), evaluates the
list, and exits; the parent reads the child's peak RSS (``ru_maxrss`` from ``os.wait4``, and the
child's own ``VmHWM``, reset once the model is built and traced, so that it shows what the
evaluation itself adds). Ways:

* ``health``   ``evaluate_with_layer_health`` (what a report run does), batch 32;
* ``predict``  (full mode only; N/4 and N images, to save time) ``predict_items``, batch 32;
* ``naive``    (full mode only; N/4 and N images) decode every image into one
               array, then ``Model.predict``: the way that does grow with N, to show the
               measurement would see it;
* ``health-mmap``  (N only) ``health`` again with glibc's ``MALLOC_MMAP_THRESHOLD_=131072``: a
               fixed threshold, so that every freed decode buffer goes back to the system instead of
               staying in a malloc arena; its peak RSS and the child's CPU time compared with
               ``health`` at N.

Goal: the 4N peak at most 10 % above the N peak for octreport's ways. For ``health``, 8N is
measured too: how the peak goes on beyond 4N.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import OCT_REAL, Report, child_env  # noqa: E402


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def child(mode: str, count: int, times: int, data: Path) -> None:
    """Evaluate ``count`` files of ``data`` repeated ``times`` times; print what was measured."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    from octreport.data.layout import scan_dataset
    from octreport.data.pipeline import image_dataset
    from octreport.data.preprocessing import Preprocessing
    from octreport.engine.layers import discover_conv_layers
    from octreport.evaluation.predict import evaluate_with_layer_health, predict_items
    from octreport.models.architectures import notebook_cnn

    items = list(scan_dataset(data).splits["all"])[:count] * times
    p = Preprocessing()
    model = notebook_cnn(p.input_shape, 4)
    layers = discover_conv_layers(model)
    # Build and trace first, so "before" holds what any run holds before its evaluation starts.
    evaluate_with_layer_health(model, layers, items[:33], p)
    predict_items(model, items[:33], p)
    before = _status_kb("VmRSS")
    try:  # reset VmHWM to the current RSS (Linux >= 4.0), so that it measures the evaluation alone
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    if mode == "health":
        predictions, _ = evaluate_with_layer_health(model, layers, items, p)
        seen = len(predictions.labels)
    elif mode == "predict":
        seen = len(predict_items(model, items, p).labels)
    else:
        images = np.concatenate([x.numpy() for x, _ in image_dataset(items, p, 32)])
        seen = len(model.predict(images, batch_size=32, verbose=0))
    print(json.dumps({"images": seen, "before_kb": before, "eval_hwm_kb": _status_kb("VmHWM")}))


FIXED_MMAP_THRESHOLD = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def measure(mode: str, count: int, times: int, data: Path) -> dict:
    """Run one child; its peak RSS (kB) from ``wait4`` and what it printed."""
    env = {**child_env(), **(FIXED_MMAP_THRESHOLD if mode.endswith("-mmap") else {})}
    command = [sys.executable, __file__, "--child", mode.removesuffix("-mmap"), "--count", str(count),
               "--times", str(times), "--data", str(data)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"memory child {mode} x{times} failed ({process.returncode}): {output[-2000:]}")
    result = json.loads(output.strip().splitlines()[-1])
    result["ru_maxrss_kb"] = usage.ru_maxrss
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    return result


def main(argv: Sequence[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 100, octreport's evaluation only")
    parser.add_argument("--count", type=int, default=None, help="N (default 1000, --quick 100)")
    parser.add_argument("--modes", default=None, help="comma-separated of health,predict,naive")
    parser.add_argument("--data", type=Path, default=OCT_REAL)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--times", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.count, args.times, args.data)
        return Report("memory")
    count = args.count or (100 if args.quick else 1000)
    modes = (args.modes or ("health" if args.quick else "health,predict,naive,health-mmap")).split(",")
    report = Report("memory")
    if not args.data.is_dir():
        print(f"{args.data} not found: memory benchmark skipped")
        report.write(args.json)
        return report
    print(f"peak RSS of evaluating N = {count} real JPEGs vs 4N (the list 4 times), one child process each")
    labels = {"health": "evaluate_with_layer_health", "predict": "predict_items (N/4 vs N)",
              "naive": "naive: decode all into memory, then Model.predict (N/4 vs N)",
              "health-mmap": "evaluate_with_layer_health, MALLOC_MMAP_THRESHOLD_=131072"}
    for mode in modes:
        if mode == "health-mmap":
            continue
        n = count // 4 if mode in ("naive", "predict") else count
        one, four = measure(mode, n, 1, args.data), measure(mode, n, 4, args.data)
        change = 100.0 * (four["ru_maxrss_kb"] / one["ru_maxrss_kb"] - 1.0)
        growth = [(r["eval_hwm_kb"] - r["before_kb"]) / 1024 for r in (one, four)]
        goal = dict(goal="<= +10 %", met=change <= 10.0) if mode in ("health", "predict") else {}
        report.add("5 memory", f"{labels[mode]}: peak RSS change, 4N vs N", change, "%",
                   note=f"peak {one['ru_maxrss_kb'] / 1024:.0f} -> {four['ru_maxrss_kb'] / 1024:.0f} MB; "
                        f"the evaluation itself adds {growth[0]:.0f} -> {growth[1]:.0f} MB",
                   **goal)
        report.details[mode] = {"N": one, "4N": four}
        if mode == "health":  # where the peak goes beyond 4N: the plateau glibc's arenas reach
            eight = measure(mode, n, 8, args.data)
            report.add("5 memory", f"{labels[mode]}: peak RSS change, 8N vs 4N", 100.0 * (eight["ru_maxrss_kb"] /
                       four["ru_maxrss_kb"] - 1.0), "%", note=f"peak {eight['ru_maxrss_kb'] / 1024:.0f} MB at 8N")
            report.details[mode]["8N"] = eight
    if "health-mmap" in modes:
        default = report.details["health"]["N"] if "health" in report.details else measure("health", count, 1, args.data)
        fixed = measure("health-mmap", count, 1, args.data)
        report.details["health-mmap"] = {"N": fixed}
        report.add("5 memory", "evaluate_with_layer_health N: peak RSS with MALLOC_MMAP_THRESHOLD_=131072 / default",
                   fixed["ru_maxrss_kb"] / default["ru_maxrss_kb"], "x",
                   note=f"{(default['ru_maxrss_kb'] - fixed['ru_maxrss_kb']) / 1024:.0f} MB less")
        report.add("5 memory", "evaluate_with_layer_health N: child CPU time with that threshold / default",
                   fixed["cpu_seconds"] / default["cpu_seconds"], "x", note="one child each: CPU time, not wall")
    report.print()
    report.write(args.json)
    return report


if __name__ == "__main__":
    main()
