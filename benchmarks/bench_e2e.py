"""End to end: one ``octreport run`` on the bundled sample data, split by stage.

Run on demand (not a test):

    python benchmarks/bench_e2e.py [--quick] [--out ROOT] [--json OUT]

Runs the default job, ``octreport run --out ROOT`` (``--quick`` adds ``--epochs 1``), as a child
process, times it whole, and splits the time by stage: ``train``, ``evaluate``, ``visualize``,
``figures`` (every figure of the report drawn and encoded) and ``html`` from metrics.json
``timings_seconds`` (where a run writes them; else from the ``run.log`` lines, with ``html``
then covering everything from the "drew" line to the "rendering the PDF" line), ``pdf`` from the
``run.log`` "PDF: ..." line (the PDF is made after metrics.json), and the rest (interpreter start,
imports, data scan and fingerprint, manifest, moving the run folder into place). Each stage is reported as a share of the
whole run. The run folder is kept (its path is in the JSON details) for ``bench_pdf.py``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import SAMPLE_DATA, Report, child_env  # noqa: E402

GATE_FAILED = 5  # the report is complete; a 1-epoch model fails the chance-level gate
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
_TOOK = re.compile(r"octreport\.pipeline: (\w+) took ([\d.]+) s")
_DREW = re.compile(r"drew (\d+) images?, ([\d.]+) MB .* in ([\d.]+) s")
_PDF = re.compile(r"PDF: \S+, (\d+) pages, ([\d.]+) MB, ([\d.]+) s")


def _stamp(line: str) -> float | None:
    found = _STAMP.match(line)
    return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() if found else None


def parse_run_log(text: str) -> dict:
    """Stage seconds and sizes from a run.log."""
    stages: dict[str, float] = {}
    facts: dict[str, float] = {}
    drew_at = pdf_started_at = None
    for line in text.splitlines():
        if found := _TOOK.search(line):
            stages[found.group(1)] = float(found.group(2))
        elif found := _DREW.search(line):
            stages["figures"] = float(found.group(3))
            facts.update(figures=int(found.group(1)), figures_mb=float(found.group(2)))
            drew_at = _stamp(line)
        elif "rendering the PDF" in line:
            pdf_started_at = _stamp(line)
        elif found := _PDF.search(line):
            stages["pdf"] = float(found.group(3))
            facts.update(pages=int(found.group(1)), pdf_mb=float(found.group(2)))
    if drew_at is not None and pdf_started_at is not None:
        stages["html"] = pdf_started_at - drew_at
    return {"stages": stages, "facts": facts}


def stage_seconds(run_dir: Path) -> dict:
    """Stages from metrics.json where it has them, the rest (and the PDF) from run.log."""
    parsed = parse_run_log((run_dir / "run.log").read_text())
    try:
        recorded = json.loads((run_dir / "metrics.json").read_text()).get("timings_seconds", {})
    except (OSError, ValueError):
        recorded = {}
    parsed["stages"].update({k: float(v) for k, v in recorded.items() if k != "pdf"})
    parsed["source"] = "metrics.json timings_seconds + run.log" if recorded else "run.log"
    return parsed


def run_default_job(out_root: Path, quick: bool, extra: Sequence[str] = ()) -> dict:
    """``octreport run --out out_root`` in a child process; wall time, run folder, parsed log."""
    command = [sys.executable, "-m", "octreport", "run", "--out", str(out_root), "--quiet", *extra]
    if quick:
        command += ["--epochs", "1"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=child_env(), cwd=SAMPLE_DATA.parent)
    wall = time.perf_counter() - started
    if done.returncode not in (0, GATE_FAILED):
        raise RuntimeError(f"octreport run failed ({done.returncode}): {done.stderr[-3000:]}")
    run_dir = (out_root / "latest").resolve()
    parsed = stage_seconds(run_dir)
    return {"wall": wall, "run_dir": str(run_dir), "command": " ".join(command[1:]), **parsed}


def main(argv: Sequence[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="--epochs 1")
    parser.add_argument("--out", type=Path, default=None, help="run root (default: a new temporary folder)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    out_root = args.out or Path(tempfile.mkdtemp(prefix="octreport-bench-e2e-"))
    report = Report("end to end")
    result = run_default_job(out_root, args.quick)
    wall, stages = result["wall"], result["stages"]
    print(f"{result['command']}: run folder {result['run_dir']}")
    for name in ("train", "evaluate", "visualize", "figures", "html", "pdf"):
        if name in stages:
            report.add("6 end to end", f"share of the whole run: {name}", 100 * stages[name] / wall, "%")
    rest = wall - sum(stages.values())
    report.add("6 end to end", "share of the whole run: the rest (start, imports, data scan, manifest, publish)",
               100 * rest / wall, "%")
    facts = result["facts"]
    if "figures" in stages:
        report.add("3 drawing", f"all {facts.get('figures', '?')} figures of the default report, share of the run",
                   100 * stages["figures"] / wall, "%",
                   note=f"{facts.get('figures_mb', 0):.1f} MB embedded; figures / evaluate time "
                        f"{stages['figures'] / stages['evaluate']:.2f}x" if "evaluate" in stages else "")
    if "pdf" in stages:
        report.add("4 pdf", "PDF of the default report, size", facts.get("pdf_mb", 0.0), "MB",
                   note=f"{facts.get('pages', '?')} pages; WeasyPrint {100 * stages['pdf'] / wall:.1f} % of the run")
    report.details.update(result)
    report.print()
    report.write(args.json)
    return report


if __name__ == "__main__":
    main()
