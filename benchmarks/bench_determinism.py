"""What reproducible training costs: deterministic (the default) against ``--fast-nondeterministic``.

Run on demand (not a test):

    python benchmarks/bench_determinism.py [--quick] [--epochs 3] [--repeats 3] [--json OUT]

TensorFlow's op determinism is process-wide and cannot be turned off again, so each training runs
in a child process of its own: ``octreport train`` of the default network on the bundled
``sample_data`` for ``--epochs`` epochs (no early stop in so few), once per mode in every round,
the order rotated, ``--repeats`` rounds. The time compared is the training time the model's
sidecar records (``fit`` alone: no start-up, decoding or evaluation), and the ratio is the median
of the per-round ratios. It also checks what determinism is for: the two deterministic trainings
of a round give identical weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import SAMPLE_DATA, Report, child_env  # noqa: E402

MODES = {"deterministic": [], "fast-nondeterministic": ["--fast-nondeterministic"]}
WEIGHTS_DIGEST = (
    "import hashlib, sys, keras, numpy as np; m = keras.models.load_model(sys.argv[1], compile=False); "
    "print(hashlib.sha256(b''.join(np.asarray(w).tobytes() for w in m.get_weights())).hexdigest())"
)


def train_once(mode: str, epochs: int, folder: Path) -> tuple[float, str]:
    """Training seconds (from the sidecar) and a digest of the weights, of one child process."""
    model = folder / f"{mode}.keras"
    command = [sys.executable, "-m", "octreport", "train", "--data", str(SAMPLE_DATA), "--epochs", str(epochs),
               "--patience", str(epochs), "--out", str(model), "--quiet", *MODES[mode]]
    subprocess.run(command, env=child_env(), check=True, capture_output=True, text=True)
    seconds = json.loads(model.with_name(f"{mode}.octreport.json").read_text())["training"]["seconds"]
    digest = subprocess.run([sys.executable, "-c", WEIGHTS_DIGEST, str(model)], env=child_env(), check=True,
                            capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return seconds, digest


def main(argv: Sequence[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs, 2 rounds")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    epochs = args.epochs or (2 if args.quick else 3)
    repeats = args.repeats or (2 if args.quick else 3)
    names = list(MODES)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    digests: dict[str, list[str]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="octreport-bench-det-") as tmp:
        for round_index in range(repeats):
            k = round_index % len(names)
            for name in names[k:] + names[:k]:
                took, digest = train_once(name, epochs, Path(tmp))
                seconds[name].append(took)
                digests[name].append(digest)
                print(f"round {round_index + 1}: {name:<22} {took:6.1f} s  weights {digest[:12]}", flush=True)
    ratios = sorted(d / f for d, f in zip(seconds["deterministic"], seconds["fast-nondeterministic"]))
    median = ratios[len(ratios) // 2]
    report = Report("determinism")
    report.add("determinism", f"training, {epochs} epochs of the default network on sample_data: deterministic / "
               "--fast-nondeterministic (time)", median, "x", goal="<= 1.15x (else still the default, README says)",
               met=median <= 1.15, note=f"rounds {ratios[0]:.2f}-{ratios[-1]:.2f}")
    identical = len(set(digests["deterministic"])) == 1
    report.add("determinism", "deterministic trainings with identical weights", float(identical), "-",
               goal="1 (all identical)", met=identical, note=f"{len(set(digests['fast-nondeterministic']))} distinct "
               f"weight sets among {repeats} fast trainings")
    report.details.update(seconds=seconds, digests=digests, epochs=epochs)
    report.print()
    report.write(args.json)
    return report


if __name__ == "__main__":
    main()
