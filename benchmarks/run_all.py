"""Run every octreport benchmark and print one table of ratios.

    python benchmarks/run_all.py [--quick] [--out DIR] [--only NAME,...]

Each benchmark runs in its own child process (a fresh TensorFlow, nothing cached between them)
and compares two ways of doing the same work in that process, on the same inputs, after a
warm-up, interleaved, median of several repeats; ``bench_memory.py`` compares child processes.
Every figure in the table is a ratio measured in the same run, or a size: the machine is shared,
so absolute times mean little. The table, the machine, the versions and ``uptime`` before and
after go to stdout and to ``OUT/summary.md`` (``OUT/*.json`` hold every detail).

Full mode takes about 15-20 minutes on 2 loaded cores (most of it the default job's training and
the notebook way on ResNet50); ``--quick`` about 3-4 minutes, with fewer images, repeats and
variants, and ``octreport run --epochs 1``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import child_env, load_average, machine, uptime  # noqa: E402

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("extraction", "evaluation", "drawing", "memory", "training", "determinism", "occlusion", "bootstrap", "e2e",
              "pdf", "history", "heatmap_checks")


def run_one(name: str, quick: bool, out: Path, extra: list[str]) -> dict:
    script = HERE / ("bench_extraction.py" if name == "extraction" else f"bench_{name}.py")
    json_path = out / f"{name}.json"
    command = [sys.executable, str(script), "--json", str(json_path), *extra]
    if quick:
        command.append("--quick")
    print(f"\n### {name}: {' '.join(command[1:])}  (load {load_average()})", flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, env=child_env(), cwd=HERE.parent, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    (out / f"{name}.log").write_text(done.stdout + "\n--- stderr ---\n" + done.stderr)
    print(done.stdout.rstrip())
    if done.returncode != 0:
        print(f"{name} FAILED ({done.returncode}); stderr tail:\n{done.stderr[-2000:]}")
        return {"name": name, "rows": [], "details": {}, "failed": True, "seconds": seconds}
    result = json.loads(json_path.read_text())
    result["seconds"] = seconds
    return result


def _cell(row: dict) -> str:
    value, kind = row["value"], row["kind"]
    if kind == "x":
        return f"{value:.2f}x"
    if kind == "of":
        return f"{value:.2f}"
    if kind == "%":
        return f"{value:+.1f} %" if "change" in row["what"] else f"{value:.1f} %"
    if kind == "MB":
        return f"{value:.2f} MB"
    return f"{value:.3g}"


def table(results: list[dict]) -> str:
    lines = ["| item | comparison | ratio / size (wall) | same in CPU time | goal | met | note |",
             "|---|---|---|---|---|---|---|"]
    for result in results:
        for row in result["rows"]:
            met = "" if row["met"] is None else ("yes" if row["met"] else "**no**")
            note = row["note"].replace("|", "/")
            cpu = "" if row.get("cpu") is None else _cell({**row, "value": row["cpu"]})
            lines.append(f"| {row['item']} | {row['what']} | {_cell(row)} | {cpu} | {row['goal']} | {met} | {note} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="folder for the logs, JSON and summary.md")
    parser.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="octreport-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    chosen = args.only.split(",") if args.only else list(BENCHMARKS)
    before = uptime()
    info = machine()
    print(f"octreport benchmarks ({'quick' if args.quick else 'full'}), output in {out}")
    print(f"machine: {info['cores']} cores, {info['cpu']}, {info['memory']}; "
          f"AVX-512 {info['avx512']}, AVX-512 BF16 {info['avx512_bf16']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    print(f"before: {before}")
    started = time.perf_counter()
    results = []
    e2e_run = None
    for name in chosen:
        extra: list[str] = []
        if name == "extraction":
            extra = ["--skip-drawing"]  # bench_drawing.py draws, against matplotlib
        elif name == "e2e":
            extra = ["--out", str(out / "e2e-runs")]
        elif name == "pdf":
            extra = ["--out", str(out / "pdf")] + (["--run", e2e_run] if e2e_run else [])
        result = run_one(name, args.quick, out, extra)
        if name == "e2e" and not result.get("failed"):
            e2e_run = result["details"].get("run_dir")
        results.append(result)
    total = time.perf_counter() - started
    after = uptime()
    summary = "\n".join([
        f"Mode: {'quick' if args.quick else 'full'}; {total / 60:.1f} minutes in all "
        "(" + ", ".join(f"{r['name']} {r['seconds'] / 60:.1f}" for r in results) + ").",
        f"Machine: {info['cores']} cores, {info['cpu']}, {info['memory']} RAM, no GPU; "
        f"AVX-512 {info['avx512']}, AVX-512 BF16 {info['avx512_bf16']}, AMX {info['amx']}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()) + ".",
        f"Load before: `{before}`",
        f"Load after: `{after}`",
        "",
        table(results),
    ])
    (out / "summary.md").write_text(summary + "\n")
    (out / "summary.json").write_text(json.dumps({"machine": info, "before": before, "after": after,
                                                  "seconds": total, "results": results}, indent=2, default=str))
    print("\n" + summary)
    failed = [r["name"] for r in results if r.get("failed")]
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
