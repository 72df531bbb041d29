"""Pages and size of the default report of deep keras.applications networks (issue 16).

Run on demand (not a test):

    python benchmarks/bench_deep_reports.py [--size 128] [--models ResNet50,DenseNet121] [--layers all]
                                            [--out DIR] [--json OUT]

Each network is built with ``weights=None`` (nothing is downloaded) at ``--size`` x ``--size`` x 3,
nested as a backbone under a new 4-class head (global average pooling, softmax), the way a
transfer-learning model is, and reported with ``octreport.make_report`` on the bundled sample data
with one image per class and every other option at its default (``--layers all``: every conv layer
drawn, as octreport did before issue 16). Each row: conv layers found, layers drawn, PDF pages
(pypdf), PDF and HTML size, and the report's wall time.

The code under test is whichever ``octreport`` is imported: put an older tree first on
``PYTHONPATH`` to measure it (``--layers`` is then left out, since all layers were its default).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"
MODELS = ("ResNet50", "DenseNet121", "EfficientNetB0", "MobileNetV2", "Xception")


def build(name: str, size: int):
    """``name`` from keras.applications (random weights) under a 4-class head."""
    import keras

    backbone = getattr(keras.applications, name)(weights=None, include_top=False, input_shape=(size, size, 3))
    inputs = keras.Input((size, size, 3))
    features = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
    return keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(features), name=f"{name.lower()}_oct")


def measure(name: str, size: int, out: Path, layers: str | None) -> dict:
    import octreport
    from pypdf import PdfReader

    model = build(name, size)
    options = {"images_per_class": 1}
    if layers:
        options["layer_names"] = (layers,)
    started = time.perf_counter()
    outcome = octreport.make_report(model, SAMPLE_DATA, out / name, **options)
    seconds = time.perf_counter() - started
    metrics = json.loads(Path(outcome.metrics_path).read_text())
    drawn = metrics.get("drawn_layers", {}).get("drawn")
    return {
        "model": name,
        "size": size,
        "conv_layers": len(metrics["conv_layers"]),
        "drawn": len(drawn) if drawn is not None else len(metrics["filters"]),
        "pages": len(PdfReader(outcome.pdf_path).pages),
        "pdf_mb": round(Path(outcome.pdf_path).stat().st_size / 1e6, 2),
        "html_mb": round(Path(outcome.html_path).stat().st_size / 1e6, 2),
        "seconds": round(seconds, 1),
        "octreport": str(Path(octreport.__file__).parent),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="input height and width (default 128)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated keras.applications names")
    parser.add_argument("--layers", default=None, help="'all' to draw every conv layer (default: octreport's default)")
    parser.add_argument("--out", type=Path, default=None, help="keep the run folders here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch)
        for name in [m.strip() for m in args.models.split(",") if m.strip()]:
            row = measure(name, args.size, out, args.layers)
            rows.append(row)
            print(f"{name:<15} {row['conv_layers']:>4} conv, {row['drawn']:>4} drawn, {row['pages']:>4} pages, "
                  f"PDF {row['pdf_mb']:6.2f} MB, HTML {row['html_mb']:6.2f} MB, {row['seconds']:6.1f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
