"""Training step speed: the compile octreport uses against XLA (``jit_compile=True``) on the CPU.

Run on demand (not a test):

    python benchmarks/bench_training.py [--quick] [--images 64] [--repeats 2] [--json OUT]

Training is most of a default ``octreport run`` (see ``bench_e2e.py``), so this is where a faster
step would matter. The default network (notebook CNN, 128x128x1, 4 classes) is compiled as
``octreport.models.training`` compiles it (Adam, sparse categorical cross-entropy, accuracy;
``jit_compile`` left at Keras's ``"auto"``, whose resolved value is printed) and once more with
``jit_compile=True``; then one epoch of ``fit`` over the same in-memory images (batch 32), after
a warm-up epoch (which also compiles), interleaved, median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from bench_common import Report, compare  # noqa: E402
from octreport.models.architectures import notebook_cnn  # noqa: E402


def compiled(jit_compile: bool | str) -> keras.Model:
    model = notebook_cnn((128, 128, 1), 4)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=jit_compile)
    return model


def main(argv: Sequence[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32 images, 1 repeat")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    count = args.images or (32 if args.quick else 64)
    repeats = args.repeats or (1 if args.quick else 2)
    rng = np.random.default_rng(0)
    images = rng.random((count, 128, 128, 1), dtype=np.float32)
    labels = rng.integers(0, 4, count)
    octreport_way, xla = compiled("auto"), compiled(True)
    print(f"{count} images, batch 32, one epoch per call; octreport's jit_compile='auto' resolves to "
          f"{octreport_way.jit_compile}")
    t = compare({
        "octreport compile": lambda: octreport_way.fit(images, labels, batch_size=32, epochs=1, verbose=0),
        "jit_compile=True": lambda: xla.fit(images, labels, batch_size=32, epochs=1, verbose=0),
    }, repeats)
    report = Report("training")
    report.add("training", f"fit epoch: jit_compile=True (XLA) / octreport's compile (auto -> "
               f"{octreport_way.jit_compile}) (time)", t.ratio("jit_compile=True", "octreport compile"), "x",
               cpu=t.ratio("jit_compile=True", "octreport compile", "cpu"), note=t.spread("jit_compile=True", "octreport compile"))
    report.details.update(seconds=dict(t), auto_resolves_to=str(octreport_way.jit_compile))
    report.print()
    report.write(args.json)
    return report


if __name__ == "__main__":
    main()
