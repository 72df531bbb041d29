"""Follow one small `octreport run` and count the moves between octreport modules: each distinct
(caller module, callee module) pair of a call, and those whose callee sits on a higher floor
(`tests/test_floors.py`'s FLOORS) than its caller.

    python benchmarks/trace_module_moves.py [CHECKOUT] [FLOORS]

CHECKOUT: the repository to trace (default: this one; an older checkout, e.g. a `git worktree`,
to compare). FLOORS: a Python dict literal {unit: floor number} for a checkout whose units differ
from today's (default: today's floor list). A run of one epoch on 64 px sample data; its chance
gate fails (exit 5), which changes nothing in the route.
"""

from __future__ import annotations

import ast
import collections
import os
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    checkout = Path(argv[0]).resolve() if argv else HERE
    sys.path[:0] = [str(checkout), str(HERE / "tests")]
    os.chdir(checkout)
    import test_floors

    floors = ast.literal_eval(argv[1]) if len(argv) > 1 else test_floors.FLOOR_OF
    moves: collections.Counter = collections.Counter()

    def profile(frame, event, arg):
        if event != "call" or frame.f_back is None:
            return
        callee, caller = frame.f_globals.get("__name__", ""), frame.f_back.f_globals.get("__name__", "")
        if callee != caller and callee.startswith("octreport") and caller.startswith("octreport"):
            moves[(caller, callee)] += 1

    from click.testing import CliRunner

    from octreport.cli import main as octreport_main

    with tempfile.TemporaryDirectory() as out:
        args = ["run", "--out", out, "--epochs", "1", "--image-size", "64", "--images-per-class", "1",
                "--maps-per-layer", "4", "--filters-per-layer", "4", "--bootstrap-resamples", "100", "--quiet"]
        sys.setprofile(profile)
        threading.setprofile(profile)
        result = CliRunner().invoke(octreport_main, args)
        sys.setprofile(None)
        threading.setprofile(None)
    floor = lambda module: floors.get(test_floors._unit(module))  # noqa: E731
    up = sorted(m for m in moves if None not in (floor(m[0]), floor(m[1])) and floor(m[1]) > floor(m[0]))
    print(f"traced {checkout} (exit {result.exit_code})")
    print(f"distinct module-to-module calls: {len(moves)}; going up a floor: {len(up)}")
    for caller, callee in up:
        print(f"  up: {caller} -> {callee} ({moves[(caller, callee)]} calls)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
