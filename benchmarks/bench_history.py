"""History: ``octreport history`` over 1,000 constructed run folders (issue 18's goal: under 5 s).

Run on demand (not a test):

    python benchmarks/bench_history.py [--quick] [--runs 1000] [--files 380] [--repeats 3] [--json OUT]

Builds ``--runs`` run folders in a temporary output root, each with a ``metrics.json`` and a
``manifest.json`` shaped and sized like a default run's on the bundled sample data (about 37 KB
and, with ``--files 380`` images in the data fingerprint, about 90 KB: the manifest's per-image
list is most of what history reads), a model change every 7th run, a data change every 50th, a
failed gate every 13th, plus a few failed, incomplete and unreadable runs. Then, each step timed
``--repeats`` times (median, wall and process CPU):

* ``read``   :func:`octreport.audit.history.build_history`: list, read and parse every run;
* ``page``   :func:`octreport.report.history_view.render_history_html`: trend figure and table;
* ``json``   :func:`octreport.audit.history.history_to_dict` and ``json.dumps`` (``--json``);
* ``total``  what ``octreport history --out ROOT`` does: read, then the page (the command adds
             Python's start-up and imports, about 1 s: measured once as ``command``).

The goal is absolute (the issue asks for seconds), so the load average is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import Report, child_env, load_average  # noqa: E402

CLASSES = ("CNV", "DME", "DRUSEN", "NORMAL")


def metrics_document(i: int, rng, started_at: str) -> dict:
    accuracy = float(0.85 + 0.1 * rng.random())
    failed = i % 13 == 12
    gates = [{"name": "above chance", "threshold": 0.3, "value": accuracy, "passed": True, "message": "above chance"}]
    if failed:
        gates.append({"name": "accuracy", "threshold": 0.95, "value": accuracy, "passed": False,
                      "message": f"accuracy {accuracy:.4g} is below the minimum 0.95"})
    per_class = [{"name": c, "support": 25, "precision": 0.9, "recall": 0.9, "specificity": 0.97, "f1": 0.9, "roc_auc": 0.99}
                 for c in CLASSES]
    return {
        "schema_version": 1,
        "started_at": started_at,
        "classification": {"n_images": 100, "class_names": list(CLASSES), "accuracy": accuracy, "chance_level": 0.25,
                           "macro": {"precision": 0.9, "recall": 0.9, "f1": accuracy - 0.01}, "per_class": per_class,
                           "confusion_matrix": [[25 if r == c else 0 for c in range(4)] for r in range(4)]},
        "referral": {"urgent_sensitivity": float(0.9 + 0.1 * rng.random()), "urgent_specificity": float(0.9 + 0.1 * rng.random()),
                     "weighted_error": float(0.2 * rng.random())},
        "layer_health": [{"layer": f"conv{k}", "dead_share": float(rng.random() * 0.2)} for k in range(1, 5)],
        "gates": {"passed": not failed, "results": gates},
        # What else a real metrics.json carries (filters shown, shown images, timings), as bulk of the same size.
        "filters": [{"layer": f"conv{k}", "filters_shown": list(range(32)), "l2_norm": {"min": 0.1, "median": 0.5, "max": 1.0}}
                    for k in range(1, 5)] * 12,
    }


def manifest_document(i: int, files: int) -> dict:
    model = f"{i // 7:064x}"
    data = f"{i // 50 + 1:064x}"
    return {
        "manifest_version": 1, "outcome": "passed", "started_at": "2027-01-01T02:30:00+00:00",
        "model": {"source": "trained in this run", "name": "notebook_cnn", "file": "model.keras",
                  "file_sha256": model[::-1], "weights_sha256": model},
        "data": {"sha256": data, "root": "/srv/oct/OCT2017", "n_files": files,
                 "files": [{"path": f"train/CNV/CNV-{100000 + k}-1.jpeg", "split": "train", "class": "CNV",
                            "size": 7000 + k, "sha256": f"{k:064x}"} for k in range(files)]},
        "config": {"train": {"epochs": 30 if i < 500 else 40, "seed": 0}, "report": {"out_root": "/srv/oct/audits"},
                   "gates": {"min_accuracy": 0.95}},
        "gates": [], "gates_passed": None, "artifacts": {}, "versions": {"octreport": "0.1.0"},
    }


def build_archive(root: Path, runs: int, files: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    for i in range(runs):
        day, minute = divmod(i, 24 * 60)
        name = f"2027{1 + day // 28:02d}{1 + day % 28:02d}-{minute // 60:02d}{minute % 60:02d}00-{i:06x}"
        folder = root / name
        folder.mkdir()
        started_at = f"{name[:4]}-{name[4:6]}-{name[6:8]}T{name[9:11]}:{name[11:13]}:00+00:00"
        (folder / "metrics.json").write_text(json.dumps(metrics_document(i, rng, started_at), indent=2))
        (folder / "manifest.json").write_text(json.dumps(manifest_document(i, files), indent=2))
        (folder / "report.html").write_text("<!doctype html>")
    for k in range(3):
        (root / f"2027{k + 1:02d}15-120000-fa11ed.failed").mkdir()
    (root / ".incomplete-20270301-020000-abcdef").mkdir()
    (root / "20270201-000000-000bad").mkdir()
    (root / "20270201-000000-000bad" / "metrics.json").write_text("{ truncated")


def timed(fn, repeats: int) -> tuple[float, float, object]:
    """Median wall and CPU seconds of ``repeats`` calls, and the last result."""
    import statistics

    walls, cpus, result = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        cpus.append(time.process_time() - start_cpu)
        walls.append(time.perf_counter() - start)
    return statistics.median(walls), statistics.median(cpus), result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--files", type=int, default=380, help="images in each manifest's data fingerprint")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 repeat")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats

    from octreport.audit.history import build_history, history_to_dict
    from octreport.report.history_view import render_history_html

    report = Report("history")
    with tempfile.TemporaryDirectory(prefix="octreport-history-") as tmp:
        root = Path(tmp) / "runs"
        root.mkdir()
        build_archive(root, args.runs, args.files)
        size = sum(f.stat().st_size for f in root.rglob("*.json")) / 1e6
        load_before = load_average()
        render_history_html(build_history(root, last=5), root)  # warm-up: imports, matplotlib, Jinja
        read_wall, read_cpu, history = timed(lambda: build_history(root), repeats)
        page_wall, page_cpu, html = timed(lambda: render_history_html(history, root), repeats)
        json_wall, json_cpu, _ = timed(lambda: json.dumps(history_to_dict(history)), repeats)
        total_wall, total_cpu, _ = timed(lambda: render_history_html(build_history(root), root), repeats)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "octreport", "history", "--out", str(root), "--html",
                               str(Path(tmp) / "history.html")], env=child_env(), capture_output=True, text=True)
        command = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        goal = 5.0
        what = f"{args.runs:,} runs ({len(history.problems)} failed/incomplete/unreadable), {size:.0f} MB of JSON"
        report.add("18", f"read: build_history over {what} (s)", read_wall, "-", cpu=read_cpu)
        report.add("18", "page: trend figure + table + HTML (s)", page_wall, "-", cpu=page_cpu)
        report.add("18", "--json: history_to_dict + json.dumps (s)", json_wall, "-", cpu=json_cpu)
        report.add("18", "total: read + page, as `octreport history` (s)", total_wall, "-", goal=f"< {goal:g} s",
                   met=total_wall < goal, cpu=total_cpu)
        report.add("18", "the command itself, start-up and imports included (s)", command, "-", goal=f"< {goal:g} s",
                   met=command < goal, note="one run")
        report.details.update({"runs": args.runs, "files_per_manifest": args.files, "json_mb": size,
                               "html_kb": len(html) / 1e3, "repeats": repeats,
                               "load_before": load_before, "load_after": load_average(), "pid": os.getpid()})
    report.print()
    print(f"  load average {report.details['load_before']} before, {report.details['load_after']} after; "
          f"HTML {report.details['html_kb']:.0f} KB")
    report.write(args.json)


if __name__ == "__main__":
    main()
