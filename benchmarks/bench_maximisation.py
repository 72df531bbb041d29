"""Issue 28: activation maximisation alone, on a window of the receptive field against the whole image.

Run on demand (not a test):

    python benchmarks/bench_maximisation.py [--model M.keras] [--repeats 3] [--json OUT]

``maximise_channels`` for the first 8 filters of every conv layer a report draws, with the report's
settings (48 steps, seed 0), two ways interleaved in the same process (``bench_common.compare``):

* ``window`` (now): each layer optimised on the window around the centre position's receptive
  field, through the same layers built for that size;
* ``whole image`` (before): the same steps on the whole input image;
* ``two at a time`` (a report now): the window way, two layers at a time in threads
  (``engine/visuals.py: _maximise_layers``), which must give the same inputs bit for bit.

Both ways include everything ``maximise_channels`` does for a layer (building the window's model,
its check, tracing the step). Also printed per layer: the window's size and the activation each way
reaches (the window must not make the pictures worse: the same objective, the same activations).
``--model``: the model; default: the ``oct-real`` preset trained for one epoch on ``../shared/oct-real``
(the cost depends on the architecture, not on how well it learned).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from bench_common import OCT_REAL, Report, compare, load_average  # noqa: E402
from bench_one_read import train_oct_real_model  # noqa: E402
from octreport.engine.activations import cached_extractor_model  # noqa: E402
from octreport.engine.layers import discover_conv_layers  # noqa: E402
from octreport.engine.maximisation import MaximisationSettings, maximise_channels, working_canvas  # noqa: E402
from octreport.engine.receptive_field import receptive_fields  # noqa: E402
from octreport.engine.visuals import PATCH_CHANNELS, _maximise_layers  # noqa: E402


def measure(report: Report, model_path: Path, repeats: int) -> None:
    model = keras.models.load_model(model_path)
    layers = [info for info in discover_conv_layers(model) if info.spatial_rank == 2]
    fields = receptive_fields(model, layers)
    shape = tuple(int(s) for s in model.inputs[0].shape[1:4])
    settings = MaximisationSettings(seed=0)
    channels = {info.path: list(range(min(PATCH_CHANNELS, info.filters))) for info in layers}

    def every_layer(window: bool) -> dict:
        return {info.path: maximise_channels(model, info, channels[info.path], field, settings, shape, window=window)
                for info, field in zip(layers, fields)}

    jobs = [(info, field, np.array(channels[info.path])) for info, field in zip(layers, fields)]

    def two_at_a_time() -> dict:
        by_layer = _maximise_layers(model, jobs, settings, shape, None, "")
        return {info.path: by_layer[id(info.layer)] for info in layers}

    results = {"window": every_layer(True), "whole image": every_layer(False), "two at a time": two_at_a_time()}
    timings = compare({"window": lambda: every_layer(True), "whole image": lambda: every_layer(False),
                       "two at a time": two_at_a_time}, repeats, warm_up=False)
    same = all(np.array_equal(results["window"][p].images, results["two at a time"][p].images, equal_nan=True)
               for p in results["window"])
    report.add("maximisation", "every drawn layer, two at a time: wall s (median)", timings["two at a time"], "-")
    report.add("maximisation", "two at a time / one at a time (window), wall", timings.ratio("two at a time", "window"),
               "x", note=timings.spread("two at a time", "window"),
               cpu=timings.ratio("two at a time", "window", "cpu"))
    report.add("maximisation", "two at a time: the same inputs as one at a time", float(same), "-")
    report.add("maximisation", "every drawn layer, window: wall s (median)", timings["window"], "-")
    report.add("maximisation", "every drawn layer, whole image: wall s (median)",
               timings["whole image"], "-")
    report.add("maximisation", "window / whole image, wall", timings.ratio("window", "whole image"), "x",
               note=timings.spread("window", "whole image"), cpu=timings.ratio("window", "whole image", "cpu"))
    print(f"\n{'layer':<14} {'field':>6} {'window':>9}  activation reached, mean (window / whole image)")
    per_layer = {}
    for info, field in zip(layers, fields):
        out = cached_extractor_model(model, [info])(np.zeros((1,) + shape, np.float32))
        centre = (int(out.shape[1]) // 2, int(out.shape[2]) // 2)
        canvas = working_canvas(cached_extractor_model(model, [info]), info, field, shape, centre, settings.jitter)
        window, whole = (results[w][info.path].activation for w in ("window", "whole image"))
        per_layer[info.path] = {"window": list(canvas.size), "activation window": window.tolist(),
                                "activation whole image": whole.tolist()}
        print(f"{info.path:<14} {field.size[0] if field else '-':>6} {canvas.size[0]:>4}x{canvas.size[1]:<4}"
              f"  {window.mean():.4f} / {whole.mean():.4f}")
    report.details["per layer"] = per_layer
    report.details["rounds"] = {"wall": timings.rounds, "cpu": timings.cpu}
    gain = np.mean([np.mean(v["activation window"]) - np.mean(v["activation whole image"]) for v in per_layer.values()])
    report.add("maximisation", "activation reached, window minus whole image, mean over layers", float(gain), "-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    report = Report("activation maximisation: window against whole image (issue 28)")
    report.details["load average before"] = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        if args.model is None and not OCT_REAL.is_dir():
            raise SystemExit(f"needs the real scans at {OCT_REAL} or --model")
        measure(report, args.model or train_oct_real_model(Path(tmp)), args.repeats)
    report.details["load average after"] = load_average()
    report.print()
    print(json.dumps({k: v for k, v in report.details.items() if k != "per layer"}, indent=1, default=str))
    report.write(args.json)


if __name__ == "__main__":
    main()
