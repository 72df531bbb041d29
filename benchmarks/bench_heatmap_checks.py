"""What the heat-map checks (issue 17) add to a default run and to a default report.

Run on demand (not a test):

    python benchmarks/bench_heatmap_checks.py [--quick] [--repeats 3] [--json OUT]

1. One default ``octreport run`` on the bundled sample data (``--quick``: ``--epochs 1``): the
   ``heatmap_checks`` stage (metrics.json ``timings_seconds``) as a share of the whole run's wall
   time, both measured in that run.
2. ``octreport report`` on the model that run trained, with the checks (the default) and with
   ``--no-heatmap-checks``, as child processes, interleaved (each round runs both, the order
   rotated): the median over rounds of the per-round ratio of their wall times. That ratio holds
   everything the section costs: the curves, the randomisation check, its figure and the PDF pages.
   The goal (issue 17): at most 1.15.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import SAMPLE_DATA, Report, child_env, load_average  # noqa: E402
from bench_e2e import run_default_job  # noqa: E402

GATE_FAILED = 5
GOAL = 1.15


def _report(model: Path, out_root: Path, checks: bool) -> tuple[float, dict]:
    command = [sys.executable, "-m", "octreport", "report", "--model", str(model), "--data", str(SAMPLE_DATA),
               "--out", str(out_root), "--quiet"] + ([] if checks else ["--no-heatmap-checks"])
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=child_env(), cwd=SAMPLE_DATA.parent)
    wall = time.perf_counter() - started
    if done.returncode not in (0, GATE_FAILED):
        raise RuntimeError(f"octreport report failed ({done.returncode}): {done.stderr[-3000:]}")
    metrics = json.loads(((out_root / "latest").resolve() / "metrics.json").read_text())
    return wall, metrics


def main(argv: Sequence[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="train with --epochs 1")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="octreport-bench-heatmap-"))
    report = Report("heat-map checks")
    print(f"load average before: {load_average()}")

    run = run_default_job(root / "run", args.quick)
    stages, wall = run["stages"], run["wall"]
    stage = stages.get("heatmap_checks")
    if stage is not None:
        report.add("17 heat-map checks", "default `octreport run`: the heatmap_checks stage / the whole run (time)",
                   100 * stage / wall, "%", goal="<= 15 %", met=100 * stage / wall <= 15,
                   note=f"{stage:.2f} s of {wall:.1f} s, same run")
    model = Path(run["run_dir"]) / "model.keras"

    rounds: dict[str, list[float]] = {"with": [], "without": []}
    shares, checks_document = [], None
    for r in range(args.repeats):
        for name in (("with", "without") if r % 2 == 0 else ("without", "with")):
            seconds, metrics = _report(model, root / f"report-{name}", name == "with")
            rounds[name].append(seconds)
            if name == "with":
                timings = metrics.get("timings_seconds", {})
                shares.append(timings.get("heatmap_checks", 0.0) / seconds)
                checks_document = metrics["heatmap_checks"]
    ratios = [a / b for a, b in zip(rounds["with"], rounds["without"])]
    ratio = statistics.median(ratios)
    report.add("17 heat-map checks", "default `octreport report`: with the checks / --no-heatmap-checks (time)", ratio,
               "x", goal=f"<= {GOAL}", met=ratio <= GOAL,
               note=f"rounds {min(ratios):.2f}-{max(ratios):.2f}; medians {statistics.median(rounds['with']):.1f} s "
                    f"and {statistics.median(rounds['without']):.1f} s")
    report.add("17 heat-map checks", "default `octreport report`: the heatmap_checks stage / the whole report (time)",
               100 * statistics.median(shares), "%")
    faithfulness = (checks_document or {}).get("faithfulness", {})
    report.details.update(run=run, rounds=rounds, ratios=ratios, forward_images=faithfulness.get("forward_images"),
                          reading=faithfulness.get("reading"), sanity=(checks_document or {}).get("sanity", {}).get("reading"),
                          load_average_after=load_average())
    report.print()
    print(f"perturbed images per report: {faithfulness.get('forward_images')}; load average after: {load_average()}")
    report.write(args.json)
    return report


if __name__ == "__main__":
    main()
