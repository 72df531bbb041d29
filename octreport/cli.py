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
