"""The ``octreport`` command. It parses, validates and wires; the library does the work.

TensorFlow and friends are imported inside the commands, so ``--help`` and ``--version`` are instant.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from octreport._version import __version__
from octreport.errors import OctReportError
from octreport.logsetup import configure_logging, import_tensorflow_quietly, quiet_tensorflow


def handle_errors(command):
    """Turn our own errors into a one-line message and a documented exit code, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except OctReportError as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)

    return wrapper


def parse_image_size(ctx, param, value: str) -> tuple[int, int]:
    """``128`` or ``160x320`` (height x width)."""
    try:
        parts = [int(p) for p in value.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 8:
        raise click.BadParameter(f"expected a size like 128 or 160x320 (height x width, at least 8), got '{value}'.")
    return parts[0], parts[1]


def quiet_option(command):
    return click.option("--quiet", "-q", is_flag=True, help="Print only errors and the final result.")(command)


def training_options(command):
    """The options that shape training, shared by `train` and `run`."""
    options = [
        click.option("--architecture", type=click.Choice(["notebook", "compact-bn"]), default="notebook",
                     show_default=True, help="notebook: the source notebook's 4-conv network; compact-bn: batch-normalised, for real scans."),
        click.option("--epochs", type=click.IntRange(min=1), default=15, show_default=True, help="Maximum epochs (early stopping on the validation split)."),
        click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True),
        click.option("--image-size", default="128", callback=parse_image_size, show_default=True,
                     help="Model input size: N for NxN, or HxW."),
        click.option("--channels", type=click.Choice(["1", "3"]), default="1", show_default=True,
                     help="1 = grayscale (OCT), 3 = RGB."),
        click.option("--aspect", type=click.Choice(["stretch", "pad", "crop"]), default="stretch", show_default=True,
                     help="How images of another aspect ratio are fitted to the input size."),
        click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True, max=1, max_open=True), default=1e-3, show_default=True),
        click.option("--augment/--no-augment", default=True, show_default=True, help="Flip, shift, zoom, brightness, contrast (never a vertical flip)."),
        click.option("--class-weights/--no-class-weights", default=True, show_default=True, help="Weigh classes by inverse frequency."),
        click.option("--patience", type=click.IntRange(min=1), default=5, show_default=True, help="Early-stopping patience in epochs."),
        click.option("--val-fraction", type=click.FloatRange(0, 0.9, min_open=True), default=0.15, show_default=True,
                     help="Share of training patients held out for validation when the data has no val/."),
        click.option("--test-fraction", type=click.FloatRange(0, 0.9, min_open=True), default=0.2, show_default=True,
                     help="Share of patients held out for test when the data has class folders only."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed for splits, shuffling, augmentation and weights."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def build_train_config(options: dict):
    from octreport.config import TrainConfig
    from octreport.data.preprocessing import Preprocessing

    height, width = options["image_size"]
    return TrainConfig(
        architecture=options["architecture"],
        preprocessing=Preprocessing(height, width, int(options["channels"]), options["aspect"]),
        epochs=options["epochs"],
        batch_size=options["batch_size"],
        learning_rate=options["learning_rate"],
        augment=options["augment"],
        class_weights=options["class_weights"],
        early_stopping_patience=options["patience"],
        seed=options["seed"],
        val_fraction=options["val_fraction"],
        test_fraction=options["test_fraction"],
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="octreport")
def main() -> None:
    """Reports on convolutional image classifiers: what each conv layer sees and learned, how well
    the model does, in one HTML and PDF. Built for retinal OCT B-scans (CNV, DME, DRUSEN, NORMAL)."""
    quiet_tensorflow()


@main.command()
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="Image folder (Kermany train/test layout or class folders). Default: the bundled sample_data.")
@click.option("--out", "model_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("model.keras"),
              show_default=True, help="Where to save the model (.keras); its history and classes go beside it.")
@training_options
@quiet_option
@handle_errors
def train(data_dir, model_path, quiet, **options):
    """Train a model, evaluate it on the test split and save it with its history."""
    configure_logging(quiet)
    if model_path.suffix != ".keras":
        raise click.BadParameter(f"the model file must end in .keras, got '{model_path}'.", param_hint="--out")
    import_tensorflow_quietly()
    from octreport.pipeline import train_evaluate_save

    outcome = train_evaluate_save(data_dir, model_path, build_train_config(options))
    click.echo(
        f"test accuracy {outcome.test_accuracy:.1%} on {outcome.test_images} images "
        f"(trained {outcome.train_seconds:.0f} s); model saved to {outcome.model_path}"
    )


def report_options(command):
    """The options that shape the report, shared by `run` and `report`."""
    options = [
        click.option("--out", "out_root", type=click.Path(file_okay=False, path_type=Path), default=Path("octreport-runs"),
                     show_default=True, help="Output root: each run gets a new folder in it; 'latest' links to the newest."),
        click.option("--images-per-class", type=click.IntRange(min=0), default=2, show_default=True,
                     help="Test images shown per class (chosen with --seed)."),
        click.option("--image", "image_paths", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
                     help="Show this image instead (repeatable); its class is read from its folder name."),
        click.option("--maps-per-layer", type=click.IntRange(min=1), default=32, show_default=True,
                     help="Feature maps shown per layer and image."),
        click.option("--maps", "channel_selection", type=click.Choice(["strongest", "first"]), default="strongest",
                     show_default=True, help="Which maps: the most active channels for each image, or the first ones."),
        click.option("--filters-per-layer", type=click.IntRange(min=1), default=32, show_default=True),
        click.option("--filter-reduction", type=click.Choice(["mean", "max_norm_channel"]), default="mean", show_default=True,
                     help="How a deep kernel becomes one 2-D patch: mean over input channels, or its strongest input channel."),
        click.option("--layers", "layer_names", multiple=True,
                     help="Only these conv layers (name or path; repeatable or comma-separated). Default: all."),
        click.option("--format", "formats", multiple=True, type=click.Choice(["html", "pdf"]), default=("html", "pdf"),
                     show_default=True, help="Report formats to write (repeatable)."),
        click.option("--html-mode", type=click.Choice(["embedded", "assets"]), default="embedded", show_default=True,
                     help="One self-contained HTML file, or HTML with an assets/ folder."),
        click.option("--image-format", type=click.Choice(["png", "jpeg"]), default="png", show_default=True,
                     help="Encoding of the feature-map and filter grids."),
        click.option("--templates", "templates_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
                     help="Use your own Jinja2 templates (a folder with base.html; copy templates/ to start)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def build_report_config(options: dict, seed: int, batch_size: int = 32):
    from octreport.config import ReportConfig

    layer_names = tuple(name.strip() for value in options["layer_names"] for name in value.split(",") if name.strip())
    return ReportConfig(
        images_per_class=options["images_per_class"],
        image_paths=tuple(str(p) for p in options["image_paths"]),
        maps_per_layer=options["maps_per_layer"],
        channel_selection=options["channel_selection"],
        filters_per_layer=options["filters_per_layer"],
        filter_reduction=options["filter_reduction"],
        layer_names=layer_names,
        formats=tuple(dict.fromkeys(options["formats"])),
        html_mode=options["html_mode"],
        image_format=options["image_format"],
        templates_dir=str(options["templates_dir"]) if options["templates_dir"] else None,
        out_root=str(options["out_root"]),
        seed=seed,
        batch_size=batch_size,
    )


def _report_and_echo(**kwargs) -> None:
    import shlex

    from octreport.pipeline import run_report

    outcome = run_report(command_line=shlex.join(["octreport", *sys.argv[1:]]), **kwargs)
    click.echo(f"accuracy {outcome.accuracy:.1%}; report in {outcome.run_dir}")
    click.echo(str(outcome.pdf_path or outcome.html_path))


REPORT_OPTION_NAMES = (
    "out_root", "images_per_class", "image_paths", "maps_per_layer", "channel_selection", "filters_per_layer",
    "filter_reduction", "layer_names", "formats", "html_mode", "image_format", "templates_dir",
)


@main.command()
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="Image folder (Kermany train/test layout or class folders). Default: the bundled sample_data.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Load this model (.keras or .h5) instead of training one.")
@training_options
@report_options
@quiet_option
@handle_errors
def run(data_dir, model_path, quiet, **options):
    """The whole job: train (or load) a model, evaluate it, look inside it, write HTML + PDF.

    With no options it trains the default network on the bundled synthetic sample_data.
    """
    configure_logging(quiet)
    import_tensorflow_quietly()
    report_options_given = {k: options.pop(k) for k in REPORT_OPTION_NAMES}
    train_config = build_train_config(options)
    report_config = build_report_config(report_options_given, train_config.seed, train_config.batch_size)
    _report_and_echo(data_dir=data_dir, model=model_path, train_config=train_config, report_config=report_config)


@main.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The model to report on (.keras or .h5).")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), required=True,
              help="Image folder whose test split is evaluated (Kermany layout or class folders).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for splits and the images shown.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@report_options
@quiet_option
@handle_errors
def report(model_path, data_dir, seed, batch_size, quiet, **options):
    """Report on an existing model: evaluate it and look inside it, without training."""
    from octreport.config import TrainConfig

    configure_logging(quiet)
    import_tensorflow_quietly()
    _report_and_echo(
        data_dir=data_dir, model=model_path, train_config=TrainConfig(seed=seed, batch_size=batch_size),
        report_config=build_report_config(options, seed, batch_size),
    )


@main.command()
@click.argument("model_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")
@handle_errors
def layers(model_path, as_json):
    """List the convolutional layers octreport finds in MODEL_PATH, in forward order."""
    import json

    configure_logging(quiet=True)
    import_tensorflow_quietly()
    from octreport.engine.layers import discover_conv_layers, format_layer_table, layers_to_json
    from octreport.models.io import load_model

    found = discover_conv_layers(load_model(model_path).model)
    click.echo(json.dumps(layers_to_json(found), indent=2) if as_json else format_layer_table(found))


@main.command("sample-data")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write the synthetic data set into (must be empty or new).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace the contents of a non-empty folder.")
@handle_errors
def sample_data(out_dir, seed, overwrite):
    """Generate the synthetic OCT B-scan data set that ships in sample_data/."""
    from octreport.synthetic import write_sample_dataset

    counts = write_sample_dataset(out_dir, seed=seed, overwrite=overwrite)
    click.echo(f"wrote synthetic OCT data to {out_dir}: {counts}")
