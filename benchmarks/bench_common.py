"""What every benchmark here shares: interleaved timing, result rows, JSON output, the machine.

The machine these benchmarks run on is shared (other tests and a long cross-validation run beside
them), so absolute seconds drift by a factor of two within minutes. Every figure a benchmark
reports is therefore a *ratio of two ways measured in the same process, on the same inputs,
interleaved* (each repeat runs every way once, in rotating order, so a load change hits all of
them alike), or a size. :func:`compare` does the interleaving; :class:`Row` is one line of the
summary table that ``run_all.py`` prints.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

OCT_REAL = Path(__file__).resolve().parents[2] / "shared" / "oct-real"
SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"


@dataclass(frozen=True)
class Row:
    """One comparison: ``value`` is a ratio ("x", "of") or a size; ``goal`` says what would pass.

    ``kind`` is how ``value`` reads: ``"x"`` (A takes value times as long as B), ``"of"`` (A's
    throughput is value of B's), ``"%"`` (a share or a change, in percent), ``"MB"`` or ``"-"``.
    ``met`` is None where the row has no goal.
    """

    item: str
    what: str
    value: float
    kind: str
    goal: str = ""
    met: bool | None = None
    note: str = ""
    cpu: float | None = None  # the same ratio in process CPU time, where it was measured

    def cell(self) -> str:
        if self.kind == "x":
            return f"{self.value:.2f}x"
        if self.kind == "of":
            return f"{self.value:.2f} of"
        if self.kind == "%":
            return f"{self.value:+.1f} %" if self.value < 0 or "change" in self.what else f"{self.value:.1f} %"
        if self.kind == "MB":
            return f"{self.value:.2f} MB"
        return f"{self.value:.3g}"


@dataclass
class Report:
    """The rows and free-form details of one benchmark, written as JSON for ``run_all.py``."""

    name: str
    rows: list[Row] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def add(self, *args, **kwargs) -> Row:
        row = Row(*args, **kwargs)
        self.rows.append(row)
        return row

    def write(self, path: str | Path | None) -> None:
        if path is None:
            return
        data = {"name": self.name, "rows": [asdict(r) for r in self.rows], "details": self.details}
        Path(path).write_text(json.dumps(data, indent=2, default=float))

    def print(self) -> None:
        print(f"\n== {self.name}")
        for row in self.rows:
            goal = f"  goal {row.goal}: {'met' if row.met else 'NOT met'}" if row.met is not None else ""
            cpu = f"  [CPU {row.cpu:.2f}]" if row.cpu is not None else ""
            print(f"  {row.what:<78} {row.cell():>10}{cpu}{goal}{('  (' + row.note + ')') if row.note else ''}")


class Timings(dict):
    """Median wall seconds per way (a dict), with the per-round wall and CPU times kept.

    CPU time is the process's own (all its threads, ``time.process_time``): other processes on
    the machine hardly change it, so on a loaded machine it is the steadier measure of how much
    work a way does; wall time is what a user waits, and includes what parallelism saves.
    """

    def __init__(self, rounds: dict[str, list[float]], cpu: dict[str, list[float]]) -> None:
        super().__init__({name: statistics.median(t) for name, t in rounds.items()})
        self.rounds = rounds
        self.cpu = cpu

    def ratio(self, way: str, base: str, clock: str = "wall") -> float:
        """Median over rounds of ``time(way) / time(base)`` measured in the same round: a load
        change between rounds cancels out, which a ratio of two medians would not do."""
        times = self.rounds if clock == "wall" else self.cpu
        return statistics.median(a / b for a, b in zip(times[way], times[base]))

    def spread(self, way: str, base: str) -> str:
        """The lowest and highest per-round wall-time ratio, as text for a note."""
        ratios = [a / b for a, b in zip(self.rounds[way], self.rounds[base])]
        return f"rounds {min(ratios):.2f}-{max(ratios):.2f}"


def compare(ways: dict[str, Callable[[], object]], repeats: int, warm_up: bool = True) -> Timings:
    """Time each way: one warm-up call each (unless ``warm_up`` is false), then ``repeats``
    rounds in which every way runs once, the order rotated by one each round."""
    names = list(ways)
    if warm_up:
        for name in names:
            ways[name]()
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            start, start_cpu = time.perf_counter(), time.process_time()
            ways[name]()
            cpu[name].append(time.process_time() - start_cpu)
            wall[name].append(time.perf_counter() - start)
    return Timings(wall, cpu)


def once(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def machine() -> dict:
    """Cores, CPU model, memory and the versions that matter, for the record."""
    model = "?"
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "?":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    memory = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    versions = {"python": platform.python_version()}
    for name in ("tensorflow", "keras", "numpy", "matplotlib", "weasyprint", "pillow", "jinja2"):
        try:  # from the installed metadata: importing TensorFlow here would cost seconds and 1 GB
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "avx512": "avx512f" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx": "amx_tile" in flags,
        "memory": memory,
        "os": platform.platform(),
        "versions": versions,
    }


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return f"load average {load_average()}"


def child_env() -> dict[str, str]:
    """The environment for child processes: quiet TensorFlow, the repository importable."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def python() -> str:
    return sys.executable
