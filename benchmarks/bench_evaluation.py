"""Evaluation throughput: octreport's streaming evaluation against the model's own throughput.

Run on demand (not a test):

    python benchmarks/bench_evaluation.py [--quick] [--images 256] [--repeats 3] [--json OUT]

On real-size Kermany JPEGs (``../shared/oct-real``, read only: mostly 1024x496 grayscale; an
evenly spaced subset of ``--images`` files over all four classes), the default network (the
notebook CNN at 128x128x1, untrained: the time of a forward pass does not depend on the weights),
in one process, interleaved, median of ``--repeats`` after a warm-up:

1. the goal: ``predict_items`` and ``evaluate_with_layer_health`` (read, decode, resize, predict;
   tf.data, parallel map, prefetch; one compiled step per batch) against the model's throughput on
   the same images already decoded into memory (``model(x)`` per batch of 32, compiled with
   ``tf.function`` as octreport's step is; eager beside it). Also decoding alone, and the
   bound the two cores allow when decoding and the forward pass share them:
   ``1 / (1/decode + 1/model)`` images per second. Section ``goal-resnet50`` repeats this with
   ResNet50 (``weights=None``), a model whose forward pass costs far more than decoding.
2. tf.data with and without parallel map and prefetch (``num_parallel_calls=AUTOTUNE`` vs 1).
3. batch size 32 vs 64.
4. the forward pass: eager ``model(x)`` vs ``predict_on_batch`` vs ``tf.function`` (what octreport
   does) vs ``tf.function(jit_compile=True)`` (XLA) vs ``Model.predict``, and for the layer-health
   pass the eager extractor + NumPy-side reductions (what octreport did before) vs one
   ``tf.function`` that returns only the per-channel reductions (what it does now); largest
   difference in the probabilities.
5. mixed precision on the CPU (``mixed_bfloat16``, ``mixed_float16``) against float32.
6. decoding, one file at a time: octreport's ``decode_and_fit`` (JPEGs shrunk by 2/4/8 inside
   libjpeg, then an antialiased resize) vs a full-size decode (what it did before; the pixel
   difference is reported) vs the same DCT-scaled decode resizing the uint8 image before the
   float conversion; and streamed through the model with the first two.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench_common import OCT_REAL, Report, compare  # noqa: E402
from octreport.data.layout import ImageItem, scan_dataset  # noqa: E402
from octreport.data.pipeline import _decode, decode_and_fit, image_dataset  # noqa: E402
from octreport.data.preprocessing import Preprocessing  # noqa: E402
from octreport.engine.activations import cached_extractor_model  # noqa: E402
from octreport.engine.layer_health import LayerHealthAccumulator, DEFAULT_EPSILON  # noqa: E402
from octreport.engine.layers import discover_conv_layers  # noqa: E402
from octreport.evaluation.predict import evaluate_with_layer_health, predict_items  # noqa: E402
from octreport.models.architectures import notebook_cnn  # noqa: E402

AUTOTUNE = tf.data.AUTOTUNE
BATCH = 32


def spread_items(root: Path, count: int) -> list[ImageItem]:
    """``count`` files evenly spaced over the sorted list (so every class and size is in)."""
    items = list(scan_dataset(root).splits["all"])
    step = max(1, len(items) // count)
    return items[::step][:count]


# ---------------------------------------------------------------- decoders and streams


def decode_full_size(path: tf.Tensor, p: Preprocessing) -> tf.Tensor:
    """Full-size decode, float conversion, antialiased resize: what ``decode_and_fit`` did before
    it let libjpeg shrink JPEGs while decoding (and what a plain ``decode_image`` pipeline does)."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=p.channels, expand_animations=False)
    image = tf.image.convert_image_dtype(image, tf.float32)
    image = tf.clip_by_value(tf.image.resize(image, (p.height, p.width), antialias=True), 0.0, 1.0)
    image.set_shape(p.input_shape)
    return image


def _scaled_decode(path: tf.Tensor, p: Preprocessing) -> tf.Tensor:
    """The decode of ``decode_and_fit`` (JPEGs shrunk by 2, 4 or 8 inside libjpeg where they stay
    at least the input size); uint8, not resized."""
    return _decode(tf.io.read_file(path), p.channels, p.height, p.width)


def decode_scaled_uint8_resize(path: tf.Tensor, p: Preprocessing) -> tf.Tensor:
    """The DCT-scaled decode, then the uint8 image resized and divided by 255, instead of
    converted to float first: one float pass over the small image instead of two."""
    image = tf.image.resize(_scaled_decode(path, p), (p.height, p.width), antialias=True) / 255.0
    image = tf.clip_by_value(image, 0.0, 1.0)
    image.set_shape(p.input_shape)
    return image


def decode_without_resize(path: tf.Tensor, p: Preprocessing) -> tf.Tensor:
    """Only the decode of ``decode_and_fit``: what its resize costs, by difference."""
    return tf.image.convert_image_dtype(_scaled_decode(path, p), tf.float32)


def decode_area_resize(path: tf.Tensor, p: Preprocessing) -> tf.Tensor:
    """``decode_and_fit`` with an ``area`` resize instead of the antialiased bilinear one."""
    return tf.image.resize(tf.image.convert_image_dtype(_scaled_decode(path, p), tf.float32), (p.height, p.width),
                           method="area")


def decode_bilinear_resize(path: tf.Tensor, p: Preprocessing) -> tf.Tensor:
    """``decode_and_fit`` with a plain bilinear resize (no antialiasing)."""
    return tf.image.resize(tf.image.convert_image_dtype(_scaled_decode(path, p), tf.float32), (p.height, p.width),
                           antialias=False)


def stream(items: Sequence[ImageItem], p: Preprocessing, batch: int = BATCH, parallel: bool = True,
           prefetch: bool = True, decode: Callable = decode_and_fit) -> tf.data.Dataset:
    """image_dataset's stream with the knobs exposed (no ignore_errors: these files are sound)."""
    paths = [str(item.path) for item in items]
    mapping = dict(num_parallel_calls=AUTOTUNE, deterministic=True) if parallel else {}
    dataset = tf.data.Dataset.from_tensor_slices(paths).map(lambda path: decode(path, p), **mapping).batch(batch)
    return dataset.prefetch(AUTOTUNE) if prefetch else dataset


def consume(dataset: tf.data.Dataset, forward: Callable | None = None) -> None:
    for batch in dataset:
        images = batch[0] if isinstance(batch, tuple) else batch
        if forward is not None:
            np.asarray(forward(images))


def in_memory(images: np.ndarray, forward: Callable, batch: int = BATCH) -> list[np.ndarray]:
    return [np.asarray(forward(images[i:i + batch])) for i in range(0, len(images), batch)]


# ---------------------------------------------------------------- layer health, two ways


def health_eager(extractor, layers, images: np.ndarray) -> tuple[np.ndarray, LayerHealthAccumulator]:
    """What predict_with_layer_health did per batch before it was compiled, on in-memory batches."""
    acc = LayerHealthAccumulator(layers)
    probs = []
    for i in range(0, len(images), BATCH):
        outputs = keras.tree.flatten(extractor(images[i:i + BATCH], training=False))
        acc.update(outputs[:-1])
        probs.append(keras.ops.convert_to_numpy(outputs[-1]))
    return np.concatenate(probs), acc


def fused_health_function(extractor, jit_compile: bool = False) -> Callable:
    """One compiled call per batch that returns the probabilities and, per layer, only the
    per-channel max and count of values <= epsilon (channels last): what octreport's streaming
    step (``octreport.engine.layer_health._health_step``) computes, here on in-memory batches."""

    @tf.function(reduce_retracing=True, jit_compile=jit_compile)
    def run(images):
        outputs = extractor(images, training=False)
        maps, probs = outputs[:-1], outputs[-1]
        stats = []
        for output in maps:
            axes = list(range(len(output.shape) - 1))
            stats.append((tf.reduce_max(output, axis=axes),
                          tf.reduce_sum(tf.cast(output <= DEFAULT_EPSILON, tf.int32), axis=axes)))
        return probs, stats

    return run


def health_fused(run, layers, images: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    maxima = [np.full(info.filters, -np.inf) for info in layers]
    counts = [np.zeros(info.filters, np.int64) for info in layers]
    probs = []
    for i in range(0, len(images), BATCH):
        p, stats = run(tf.constant(images[i:i + BATCH]))
        probs.append(p.numpy())
        for k, (m, c) in enumerate(stats):
            np.maximum(maxima[k], m.numpy(), out=maxima[k])
            counts[k] += c.numpy()
    return np.concatenate(probs), maxima


# ---------------------------------------------------------------- the sections


def _time_row(report: Report, item: str, what: str, t, way: str, base: str, note: str = "", **goal) -> float:
    """A row "way / base (time)": the median of per-round ratios, with their range."""
    ratio = t.ratio(way, base)
    report.add(item, what, ratio, "x", note=", ".join(x for x in (note, t.spread(way, base)) if x),
               cpu=t.ratio(way, base, "cpu"), **goal)
    return ratio


def _throughput_row(report: Report, item: str, what: str, t, way: str, base: str, note: str = "",
                    goal: float | None = None) -> float:
    """A row "way / base (throughput)" = time(base) / time(way), per round, median."""
    ratio = t.ratio(base, way)
    spread = t.spread(base, way)
    extra = dict(goal=f">= {goal}", met=ratio >= goal) if goal is not None else {}
    report.add(item, what, ratio, "of", note=", ".join(x for x in (note, spread) if x),
               cpu=t.ratio(base, way, "cpu"), **extra)
    return ratio


def goal_section(report: Report, model, layers, items, p, images, repeats: int, label: str = "") -> None:
    """Item 2; ``label`` (a model name) prefixes every row when the model is not the default one."""
    extractor = cached_extractor_model(model, layers, with_output=True)
    n = len(items)
    eager = lambda x: model(x, training=False)  # noqa: E731
    compiled = tf.function(eager, reduce_retracing=True)
    fused = fused_health_function(extractor)
    t = compare({
        "memory: model(x)": lambda: in_memory(images, compiled),
        "memory: model(x) eager": lambda: in_memory(images, eager),
        "memory: extractor + layer health": lambda: health_fused(fused, layers, images),
        "decode only": lambda: consume(image_dataset(items, p, BATCH)),
        "predict_items": lambda: predict_items(model, items, p, BATCH),
        "evaluate_with_layer_health": lambda: evaluate_with_layer_health(model, layers, items, p, BATCH),
    }, repeats, warm_up=False)
    item = "2 evaluation"
    # The reference is the model's best in-memory throughput: model(x) compiled with tf.function,
    # as octreport's streaming step is; eager model(x), the usual way, is given beside it.
    for name in ("predict_items", "evaluate_with_layer_health"):
        _throughput_row(report, item, f"{label}{name}, streamed from JPEGs / compiled model(x) on decoded images", t, name,
                        "memory: model(x)", goal=0.8)
        _throughput_row(report, item, f"{label}{name}, streamed from JPEGs / eager model(x) on decoded images", t, name,
                        "memory: model(x) eager")
    # The layer audit is work on top of the forward pass: against the same pass on decoded images.
    _throughput_row(report, item, f"{label}evaluate_with_layer_health, streamed / the same compiled pass on decoded images", t,
                    "evaluate_with_layer_health", "memory: extractor + layer health")
    # Decoding and the forward pass share the two cores: at best their times add up.
    for reference, what in (("memory: model(x)", "model"), ("memory: extractor + layer health", "layer-health pass")):
        bounds = {clock: [m / (m + d) for m, d in zip(times[reference], times["decode only"])]
                  for clock, times in (("wall", t.rounds), ("cpu", t.cpu))}
        report.add(item, f"{label}limit when decoding and the {what} share the cores: {what} / ({what} + decode)",
                   statistics.median(bounds["wall"]), "of", cpu=statistics.median(bounds["cpu"]),
                   note="the most streaming can reach with both keeping every core busy")
    _throughput_row(report, item, f"{label}decoding alone (image_dataset, no model) / model(x) (throughput)", t,
                    "decode only", "memory: model(x)")
    _time_row(report, item, f"{label}layer-health pass / plain model(x), both compiled, on decoded images (time)", t,
              "memory: extractor + layer health", "memory: model(x)")
    report.details[f"{label}goal_images_per_second"] = {k: n / v for k, v in t.items()}
    # Cores kept busy (process CPU seconds per wall second): under load, how much CPU a way got.
    busy = {k: statistics.median(c / w for c, w in zip(t.cpu[k], t.rounds[k])) for k in t}
    report.details[f"{label}goal_cores_busy"] = busy
    print("cores busy (CPU s / wall s): " + ", ".join(f"{k} {v:.2f}" for k, v in busy.items()))


def tfdata_section(report: Report, model, items, p, repeats: int) -> None:
    forward = lambda x: model(x, training=False)  # noqa: E731
    ways = {
        "parallel map + prefetch (octreport)": dict(parallel=True, prefetch=True),
        "serial map + prefetch": dict(parallel=False, prefetch=True),
        "parallel map, no prefetch": dict(parallel=True, prefetch=False),
        "serial map, no prefetch": dict(parallel=False, prefetch=False),
    }
    t = compare({k: (lambda kw=kw: consume(stream(items, p, **kw), forward)) for k, kw in ways.items()}, repeats,
                warm_up=False)
    base = "parallel map + prefetch (octreport)"
    for name in list(ways)[1:]:
        _time_row(report, "tf.data", f"stream + predict: {name} / parallel map + prefetch (time)", t, name, base)
    report.details["tfdata_seconds"] = dict(t)


def batch_section(report: Report, model, layers, items, p, images, repeats: int) -> None:
    forward = lambda x: model(x, training=False)  # noqa: E731
    t = compare({
        "predict_items 32": lambda: predict_items(model, items, p, 32),
        "predict_items 64": lambda: predict_items(model, items, p, 64),
        "evaluate_with_layer_health 32": lambda: evaluate_with_layer_health(model, layers, items, p, 32),
        "evaluate_with_layer_health 64": lambda: evaluate_with_layer_health(model, layers, items, p, 64),
        "model(x) on decoded images 32": lambda: in_memory(images, forward, 32),
        "model(x) on decoded images 64": lambda: in_memory(images, forward, 64),
    }, repeats, warm_up=False)
    for name in ("predict_items", "evaluate_with_layer_health", "model(x) on decoded images"):
        _time_row(report, "batch size", f"{name}: batch 64 / batch 32 (time)", t, f"{name} 64", f"{name} 32")
    report.details["batch_seconds"] = dict(t)


def at_least(images: np.ndarray, count: int) -> np.ndarray:
    """``images`` repeated to at least ``count`` (so each timed call lasts long enough)."""
    return np.concatenate([images] * -(-count // len(images)))


def forward_section(report: Report, model, layers, images, repeats: int) -> None:
    images = at_least(images, 128)
    compiled = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    xla = tf.function(lambda x: model(x, training=False), jit_compile=True, reduce_retracing=True)
    tensors = [tf.constant(images[i:i + BATCH]) for i in range(0, len(images), BATCH)]
    over = lambda f: [np.asarray(f(x)) for x in tensors]  # noqa: E731
    ways = {
        "model(x) eager": lambda: over(lambda x: model(x, training=False)),
        "predict_on_batch": lambda: over(model.predict_on_batch),
        "tf.function (octreport)": lambda: over(compiled),
        "tf.function(jit_compile=True), XLA": lambda: over(xla),
        "Model.predict(all, batch_size=32)": lambda: model.predict(images, batch_size=BATCH, verbose=0),
    }
    reference = np.concatenate(ways["model(x) eager"]())
    t = compare(ways, repeats)
    base = "model(x) eager"
    for name, fn in list(ways.items())[1:]:
        out = fn()
        out = np.concatenate(out) if isinstance(out, list) else out
        diff = float(np.abs(out - reference).max())
        _time_row(report, "forward pass", f"{name} / model(x) eager (time)", t, name, base,
                  note=f"max |dp| {diff:.0e}" + (" > 1e-5" if diff > 1e-5 else ""))
    extractor = cached_extractor_model(model, layers, with_output=True)
    run = fused_health_function(extractor)
    run_xla = fused_health_function(extractor, jit_compile=True)
    t = compare({
        "eager extractor + reductions (before)": lambda: health_eager(extractor, layers, images),
        "one tf.function returning reductions (octreport)": lambda: health_fused(run, layers, images),
        "the same, XLA": lambda: health_fused(run_xla, layers, images),
    }, repeats)
    probs_e, acc = health_eager(extractor, layers, images)
    probs_f, maxima = health_fused(run, layers, images)
    same = all(np.allclose(m, h.channel_max, atol=1e-5) for m, h in zip(maxima, acc.result()))
    _time_row(report, "forward pass", "layer health: one tf.function / eager extractor + reductions (time)", t,
              "one tf.function returning reductions (octreport)", "eager extractor + reductions (before)",
              note=f"max |dp| {np.abs(probs_e - probs_f).max():.0e}, same channel maxima: {same}")
    _time_row(report, "forward pass", "layer health: the same tf.function with XLA / without (time)", t,
              "the same, XLA", "one tf.function returning reductions (octreport)")


def mixed_precision_section(report: Report, model, images, repeats: int) -> None:
    images = at_least(images, 128)
    diffs = {}
    reference = np.concatenate(in_memory(images, lambda x: model(x, training=False)))
    ways = {"float32": lambda: in_memory(images, lambda x: model(x, training=False))}
    for policy in ("mixed_bfloat16", "mixed_float16"):
        keras.config.set_dtype_policy(policy)
        try:
            other = notebook_cnn(tuple(model.inputs[0].shape[1:]), int(model.outputs[0].shape[-1]))
        finally:
            keras.config.set_dtype_policy("float32")
        other.set_weights(model.get_weights())
        forward = lambda x, m=other: keras.ops.cast(m(x, training=False), "float32")  # noqa: E731
        diffs[policy] = float(np.abs(np.concatenate(in_memory(images, forward)) - reference).max())
        ways[policy] = lambda f=forward: in_memory(images, f)
    t = compare(ways, repeats)
    for policy in ("mixed_bfloat16", "mixed_float16"):
        _time_row(report, "mixed precision", f"{policy} / float32, model(x) on decoded images (time)", t,
                  policy, "float32", note=f"max |dp| {diffs[policy]:.0e}")


def decode_section(report: Report, model, items, p, images, repeats: int) -> None:
    """Per-image decoding (one compiled call per file, serially: CPU time is steady under load),
    then what each decoder gives streamed through the model."""
    forward = lambda x: model(x, training=False)  # noqa: E731
    decoders = {
        "decode_and_fit (octreport)": decode_and_fit,
        "full-size decode (octreport before DCT scaling)": decode_full_size,
        "DCT-scaled decode, resize uint8, then /255": decode_scaled_uint8_resize,
        "DCT-scaled decode, area resize": decode_area_resize,
        "DCT-scaled decode, bilinear resize without antialiasing": decode_bilinear_resize,
        "DCT-scaled decode only, no resize": decode_without_resize,
    }
    sample = [tf.constant(str(item.path)) for item in items[:: max(1, len(items) // 48)]]
    compiled = {name: tf.function(lambda x, d=d: d(x, p)) for name, d in decoders.items()}
    ways = {f"decode: {name}": (lambda f=f: [f(x) for x in sample]) for name, f in compiled.items()}
    t = compare(ways, repeats + 2)
    reference = np.stack([decode_and_fit(x, p).numpy() for x in sample])
    base = "decode: decode_and_fit (octreport)"
    for name, decode in list(decoders.items())[1:]:
        note = ""
        if decode is not decode_without_resize:
            diff = np.abs(np.stack([decode(x, p).numpy() for x in sample]) - reference)
            note = f"pixels differ by max {255 * diff.max():.2g}/255, mean {255 * diff.mean():.2g}/255"
        _time_row(report, "decoding", f"decode one file: {name} / decode_and_fit (time)", t, f"decode: {name}", base,
                  note=note)
    ways = {"model(x) on decoded images": lambda: in_memory(images, forward)}
    for name, decode in list(decoders.items())[:2]:
        ways[f"stream+predict: {name}"] = lambda d=decode: consume(stream(items, p, decode=d), forward)
    streamed = compare(ways, repeats, warm_up=False)
    for name in list(decoders)[:2]:
        _throughput_row(report, "decoding", f"stream + predict with {name} / model(x) on decoded images", streamed,
                        f"stream+predict: {name}", "model(x) on decoded images")
    report.details["decode_seconds"] = {**t, **streamed}


SECTIONS = ("goal", "goal-resnet50", "tfdata", "batch", "forward", "mixed", "decode")


def warm_up(model, layers, items, p, images) -> None:
    """Build and trace once what every streaming way shares (model, extractor, both batch sizes),
    so that the streaming ways need no full warm-up pass of their own."""
    few = items[:BATCH + 1]  # a full batch and a partial one
    for size in (32, 64):
        predict_items(model, few, p, size)
        evaluate_with_layer_health(model, layers, few, p, size)
        in_memory(images[:size + 1], lambda x: model(x, training=False), size)


def main(argv: Sequence[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 images, 2 repeats")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--data", type=Path, default=OCT_REAL)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--sections", default=None,
                        help=f"comma-separated, of {','.join(SECTIONS)} (default: all; --quick: goal)")
    args = parser.parse_args(argv)
    sections = (args.sections or ("goal" if args.quick else ",".join(SECTIONS))).split(",")
    count = args.images or (64 if args.quick else 160)
    repeats = args.repeats or (2 if args.quick else 3)
    report = Report("evaluation")
    if not args.data.is_dir():
        print(f"{args.data} not found: evaluation benchmark skipped")
        report.write(args.json)
        return report
    items = spread_items(args.data, count)
    p = Preprocessing()
    model = notebook_cnn(p.input_shape, 4)
    layers = discover_conv_layers(model)
    images = np.concatenate([x.numpy() for x, _ in image_dataset(items, p, BATCH)])
    print(f"{len(items)} real JPEGs from {args.data}, notebook CNN at {p.height}x{p.width}x{p.channels}, "
          f"batch {BATCH}, median of {repeats} interleaved repeats after a warm-up")
    warm_up(model, layers, items, p, images)
    if "goal" in sections:
        goal_section(report, model, layers, items, p, images, repeats)
    if "goal-resnet50" in sections:
        # A model whose forward pass costs far more than decoding, as most real ones do.
        deep = keras.applications.ResNet50(weights=None, input_shape=p.input_shape, classes=4)
        deep_layers = discover_conv_layers(deep)
        warm_up(deep, deep_layers, items, p, images)
        goal_section(report, deep, deep_layers, items, p, images, repeats, label="ResNet50: ")
    if "tfdata" in sections:
        tfdata_section(report, model, items, p, repeats)
    if "batch" in sections:
        batch_section(report, model, layers, items, p, images, repeats)
    if "forward" in sections:
        forward_section(report, model, layers, images, repeats)
    if "mixed" in sections:
        mixed_precision_section(report, model, images, repeats)
    if "decode" in sections:
        decode_section(report, model, items, p, images, repeats)
    report.details.update(images=len(items), repeats=repeats)
    report.print()
    report.write(args.json)
    return report


if __name__ == "__main__":
    main()
