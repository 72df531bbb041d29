"""Feature-map extraction speed: octreport's one-pass extractor against the notebook's way.

Run on demand (not a test):

    python benchmarks/bench_extraction.py [--images 8] [--repeats 5] [--notebook-repeats 1]
                                         [--skip-resnet] [--quick] [--json OUT] [--skip-drawing]

In one process, on the same inputs, after a warm-up, the median of several repeats (the first
three ways interleaved, each round running each once, ratios taken within a round) of:

* plain forward       one forward pass of the model itself (``model(x)``), the floor;
* octreport           ``extract_activations``: one multi-output extractor, built once and
                      cached, one forward pass for all conv layers;
* octreport predict   the same extractor run through ``Model.predict`` (compiled graph);
* notebook way        per conv layer, a new ``keras.Model(model.inputs, layer.output)`` and
                      one ``predict`` (what the source notebook did); it caches nothing, so
                      it gets no warm-up and, on ResNet50, fewer repeats (--notebook-repeats);

on the default network (128x128x1, four Conv2D blocks 32/64/128/128 + max-pool + dropout,
flatten, softmax over 4) and on ResNet50 (weights=None, 128x128x3). It also times drawing a
default report's grids (images x 4 layers x 32 feature maps, plus 4 filter grids).

``--quick``: 3 repeats, and on ResNet50 no notebook way (it takes minutes). ``--json OUT``
writes the summary rows for ``run_all.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from bench_common import Report, compare  # noqa: E402

from octreport.drawing.mosaic import feature_map_mosaic, filter_mosaic  # noqa: E402
from octreport.engine.activations import (  # noqa: E402
    build_extractor_model,
    extract_activations,
    select_feature_maps,
)
from octreport.engine.filters import extract_filters  # noqa: E402
from octreport.engine.layers import discover_conv_layers  # noqa: E402


def default_network() -> keras.Model:
    """The source notebook's network on 128x128 grayscale scans, 4 classes."""
    inputs = keras.Input((128, 128, 1))
    x = inputs
    for filters in (32, 64, 128, 128):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D(2)(x)
        x = keras.layers.Dropout(0.3)(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(4, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="default_network")


def resnet50() -> keras.Model:
    return keras.applications.ResNet50(weights=None, input_shape=(128, 128, 3), classes=4)


def median_seconds(fn: Callable[[], object], repeats: int, warm_up: bool = True) -> float:
    if warm_up:
        fn()  # builds, traces and caches whatever the method caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_model(
    model: keras.Model, images: np.ndarray, repeats: int, notebook_repeats: int
) -> list[tuple[str, float]]:
    return list(bench_model_timings(model, images, repeats, notebook_repeats)[0].items())


def bench_model_timings(model: keras.Model, images: np.ndarray, repeats: int, notebook_repeats: int):
    """(median seconds per method, the interleaved timings of the cached methods)."""
    layers = discover_conv_layers(model)
    extractor = build_extractor_model(model, layers)

    def notebook_way() -> None:
        for info in layers:
            keras.Model(model.inputs, info.layer.output).predict(images, verbose=0)

    start = time.perf_counter()
    extract_activations(model, layers, images)
    first_call = time.perf_counter() - start
    timings = compare({
        "plain forward": lambda: model(images, training=False),
        "octreport": lambda: extract_activations(model, layers, images),
        "octreport predict": lambda: extractor.predict(images, verbose=0),
    }, repeats)
    medians = {
        "plain forward": timings["plain forward"],
        "octreport (first call, builds)": first_call,
        "octreport": timings["octreport"],
        "octreport predict": timings["octreport predict"],
    }
    if notebook_repeats > 0:
        # Nothing to warm up: the notebook built new sub-models on every run.
        start_cpu = time.process_time()
        medians["notebook way"] = median_seconds(notebook_way, notebook_repeats, warm_up=False)
        medians["notebook way, CPU"] = (time.process_time() - start_cpu) / notebook_repeats
        medians["octreport, CPU"] = statistics.median(timings.cpu["octreport"])
    return medians, timings


def add_rows(report: Report, title: str, medians: dict[str, float], timings) -> None:
    ratio = timings.ratio("octreport", "plain forward")
    report.add("1 extraction", f"{title}: octreport all conv layers / one plain forward pass (time)", ratio, "x",
               "<= 1.3", ratio <= 1.3, note=timings.spread("octreport", "plain forward"),
               cpu=timings.ratio("octreport", "plain forward", "cpu"))
    if "notebook way" in medians:
        report.add("1 extraction", f"{title}: notebook way (sub-model + predict per layer) / octreport (time)",
                   medians["notebook way"] / medians["octreport"], "x",
                   cpu=medians["notebook way, CPU"] / medians["octreport, CPU"],
                   note="ratio of medians (the notebook way is not interleaved)")
    report.add("1 extraction", f"{title}: octreport first call (builds the extractor) / plain forward (time)",
               medians["octreport (first call, builds)"] / medians["plain forward"], "x")


def bench_drawing(model: keras.Model, images: np.ndarray, repeats: int) -> float:
    layers = discover_conv_layers(model)[:4]
    activations = extract_activations(model, layers, images)

    def draw() -> None:
        for acts in activations:
            for i in range(images.shape[0]):
                chosen = select_feature_maps(acts, i, n=32)
                feature_map_mosaic(chosen.maps, [str(c) for c in chosen.channels])
            grid = extract_filters(acts.layer, n=32)
            filter_mosaic(grid.patches, [str(i) for i in grid.indices])

    return median_seconds(draw, repeats)


def print_table(title: str, rows: list[tuple[str, float]]) -> None:
    floor = dict(rows)["plain forward"]
    print(f"\n{title}")
    print(f"{'method':<32} {'median s':>10} {'x plain forward':>16}")
    for name, seconds in rows:
        print(f"{name:<32} {seconds:>10.4f} {seconds / floor:>16.2f}")
    if "notebook way" in dict(rows):
        octreport, notebook = dict(rows)["octreport"], dict(rows)["notebook way"]
        print(f"notebook way / octreport: {notebook / octreport:.1f}x")


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=None, help="default 5, --quick 3")
    parser.add_argument("--notebook-repeats", type=int, default=None,
                        help="repeats of the notebook way on ResNet50 (about 80 s each on 2 CPUs; "
                             "default 1, --quick 0)")
    parser.add_argument("--skip-resnet", action="store_true")
    parser.add_argument("--skip-drawing", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 5)
    notebook_repeats = args.notebook_repeats if args.notebook_repeats is not None else (0 if args.quick else 1)
    rng = np.random.default_rng(0)
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, "
          f"{args.images} images, median of {repeats} after a warm-up "
          f"(notebook way: no warm-up; on ResNet50 {notebook_repeats} repeat(s))")
    report = Report("extraction")

    model = default_network()
    gray = rng.random((args.images, 128, 128, 1), dtype=np.float32)
    title = f"default network ({len(discover_conv_layers(model))} conv layers)"
    medians, timings = bench_model_timings(model, gray, repeats, repeats)
    print_table(title, [(k, v) for k, v in medians.items() if "CPU" not in k])
    add_rows(report, "default network", medians, timings)
    if not args.skip_drawing:
        seconds = bench_drawing(model, gray, repeats)
        print(f"\ndrawing {args.images} images x 4 layers x 32 feature maps + 4 filter grids: "
              f"{seconds:.3f} s ({args.images * 4 + 4} mosaics)")

    if not args.skip_resnet:
        model = resnet50()
        colour = rng.random((args.images, 128, 128, 3), dtype=np.float32) * 255
        title = f"ResNet50 ({len(discover_conv_layers(model))} conv layers)"
        medians, timings = bench_model_timings(model, colour, repeats, notebook_repeats)
        print_table(title, [(k, v) for k, v in medians.items() if "CPU" not in k])
        add_rows(report, "ResNet50", medians, timings)
    report.print()
    report.write(args.json)
    return report


if __name__ == "__main__":
    main()
