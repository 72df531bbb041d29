"""Feature-map extraction speed: octreport's one-pass extractor against the notebook's way.

Run on demand (not a test):

    python benchmarks/bench_extraction.py [--images 8] [--repeats 5] [--notebook-repeats 1]
                                         [--skip-resnet]

In one process, on the same inputs, after a warm-up, the median of several repeats of:

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
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

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
    layers = discover_conv_layers(model)
    extractor = build_extractor_model(model, layers)

    def notebook_way() -> None:
        for info in layers:
            keras.Model(model.inputs, info.layer.output).predict(images, verbose=0)

    start = time.perf_counter()
    extract_activations(model, layers, images)
    first_call = time.perf_counter() - start
    return [
        ("plain forward", median_seconds(lambda: model(images, training=False), repeats)),
        ("octreport (first call, builds)", first_call),
        ("octreport", median_seconds(lambda: extract_activations(model, layers, images), repeats)),
        ("octreport predict", median_seconds(lambda: extractor.predict(images, verbose=0), repeats)),
        # Nothing to warm up: the notebook built new sub-models on every run.
        ("notebook way", median_seconds(notebook_way, notebook_repeats, warm_up=False)),
    ]


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
        print(f"{name:<32} {seconds:>10.4f} {seconds / floor:>16.1f}")
    octreport, notebook = dict(rows)["octreport"], dict(rows)["notebook way"]
    print(f"notebook way / octreport: {notebook / octreport:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--notebook-repeats", type=int, default=1,
                        help="repeats of the notebook way on ResNet50 (about 80 s each on 2 CPUs)")
    parser.add_argument("--skip-resnet", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, "
          f"{args.images} images, median of {args.repeats} after a warm-up "
          f"(notebook way: no warm-up; on ResNet50 {args.notebook_repeats} repeat(s))")

    model = default_network()
    gray = rng.random((args.images, 128, 128, 1), dtype=np.float32)
    print_table(f"default network ({len(discover_conv_layers(model))} conv layers)",
                bench_model(model, gray, args.repeats, args.repeats))
    seconds = bench_drawing(model, gray, args.repeats)
    print(f"\ndrawing {args.images} images x 4 layers x 32 feature maps + 4 filter grids: "
          f"{seconds:.3f} s ({args.images * 4 + 4} mosaics)")

    if not args.skip_resnet:
        model = resnet50()
        colour = rng.random((args.images, 128, 128, 3), dtype=np.float32) * 255
        print_table(f"ResNet50 ({len(discover_conv_layers(model))} conv layers)",
                    bench_model(model, colour, args.repeats, args.notebook_repeats))


if __name__ == "__main__":
    main()
