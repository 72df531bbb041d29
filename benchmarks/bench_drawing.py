"""Drawing speed: octreport's NumPy mosaic against a 32-subplot matplotlib figure of the same maps.

Run on demand (not a test):

    python benchmarks/bench_drawing.py [--quick] [--repeats 5] [--json OUT]

The maps: the default network (notebook CNN, 128x128x1, untrained) on eight test images of the
bundled sample data (two per class), its four conv layers, the 32 strongest channels of each
image, as the default report shows them. In one process, interleaved, median after a warm-up,
each way ending in PNG bytes:

* octreport      ``feature_map_mosaic`` (tiles, per-map scaling, colour lookup table, labels) and
                 ``encode_array`` (PNG);
* notebook way   ``plt.subplots(4, 8, figsize=(16, 8))``, ``imshow`` each map with its channel as
                 title, axes off, ``savefig`` PNG at 100 dpi, ``plt.close``.

First for one grid per layer (the 128x128 maps of conv1 and the 16x16 maps of conv4), then
(without ``--quick``) for all 32 feature-map grids of a default report (8 images x 4 layers),
each way once after the warm-up. The time to draw *all* figures of a default report comes from a
real run (``bench_e2e.py``: the ``figures`` stage).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bench_common import SAMPLE_DATA, Report, compare  # noqa: E402
from octreport.data.layout import scan_dataset  # noqa: E402
from octreport.data.pipeline import load_images  # noqa: E402
from octreport.data.preprocessing import Preprocessing  # noqa: E402
from octreport.drawing.export import encode_array  # noqa: E402
from octreport.drawing.mosaic import feature_map_mosaic  # noqa: E402
from octreport.engine.activations import extract_activations, select_feature_maps  # noqa: E402
from octreport.engine.layers import discover_conv_layers  # noqa: E402
from octreport.models.architectures import notebook_cnn  # noqa: E402


def octreport_grid(maps: np.ndarray, channels: Sequence[int]) -> bytes:
    return encode_array(feature_map_mosaic(maps, [str(c) for c in channels]), "png").data


def notebook_grid(maps: np.ndarray, channels: Sequence[int]) -> bytes:
    fig, axes = plt.subplots(4, 8, figsize=(16, 8))
    for ax, tile, channel in zip(axes.flat, maps, channels):
        ax.imshow(tile, cmap="viridis")
        ax.set_title(str(channel), fontsize=8)
        ax.axis("off")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def shown_images(per_class: int = 2) -> np.ndarray:
    test = scan_dataset(SAMPLE_DATA).splits["test"]
    chosen = []
    for label in sorted({item.label for item in test}):
        chosen += [item for item in test if item.label == label][:per_class]
    return load_images(chosen, Preprocessing())


def main(argv: Sequence[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one grid per layer only, 3 repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 5)
    report = Report("drawing")
    model = notebook_cnn((128, 128, 1), 4)
    layers = discover_conv_layers(model)
    images = shown_images()
    activations = extract_activations(model, layers, images)
    grids = [select_feature_maps(acts, i, n=32) for acts in activations for i in range(len(images))]
    print(f"{len(images)} sample images x {len(layers)} conv layers, 32 maps per grid, median of {repeats} "
          "interleaved repeats after a warm-up")

    for acts in (activations[0], activations[-1]):
        chosen = select_feature_maps(acts, 0, n=32)
        maps, channels = chosen.maps, chosen.channels
        t = compare({"octreport": lambda: octreport_grid(maps, channels),
                     "notebook": lambda: notebook_grid(maps, channels)}, repeats)
        ours, theirs = octreport_grid(maps, channels), notebook_grid(maps, channels)
        shape = "x".join(str(s) for s in maps.shape[1:])
        report.add("3 drawing", f"one grid of 32 {shape} maps ({acts.layer.name}): notebook subplots / octreport mosaic "
                   "(time)", t.ratio("notebook", "octreport"), "x", cpu=t.ratio("notebook", "octreport", "cpu"),
                   note=f"{t.spread('notebook', 'octreport')}; PNG {len(ours) / 1e3:.0f} kB vs {len(theirs) / 1e3:.0f} kB")
        report.details[f"grid_{acts.layer.name}_seconds"] = dict(t)

    if not args.quick:
        t = compare({
            "octreport": lambda: [octreport_grid(g.maps, g.channels) for g in grids],
            "notebook": lambda: [notebook_grid(g.maps, g.channels) for g in grids],
        }, 1, warm_up=False)
        report.add("3 drawing", f"all {len(grids)} feature-map grids of a default report: notebook / octreport (time)",
                   t.ratio("notebook", "octreport"), "x", cpu=t.ratio("notebook", "octreport", "cpu"),
                   note="each once, after the warm-up above")
        report.details["all_grids_seconds"] = dict(t)
    report.print()
    report.write(args.json)
    return report


if __name__ == "__main__":
    main()
