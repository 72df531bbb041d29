"""The options of the ``octreport`` commands and the configuration objects they build.

Nothing here imports TensorFlow: building the configuration happens before any work starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import click

from octreport.audit.gates import GATE_ON
from octreport.config import (
    ARCHITECTURE_NAMES,
    DISTRIBUTE_MODES,
    HEATMAP_BASELINES,
    INPUT_SCALE_CHOICES,
    LR_SCHEDULES,
    MAX_HEATMAP_STEPS,
    MAX_SEED,
    MIN_HEATMAP_STEPS,
    PDF_VARIANTS,
    ReportConfig,
    TrainConfig,
)
from octreport.data.dataset import SPLIT_AUTO, SPLIT_CHOICES
from octreport.data.dicom_frames import DICOM_FRAMES, FRAMES_CENTER
from octreport.data.preprocessing import ASPECT_MODES, NORMALIZATION_MODES
from octreport.evaluation.bootstrap_settings import MAX_LEVEL, MAX_RESAMPLES, MIN_LEVEL, MIN_RESAMPLES

PRESET_NAMES = ("oct-real",)  # octreport.models.recipes.PRESETS, named here so --help needs no TensorFlow
MAX_IMAGE_SIDE = 4096
MAX_BATCH_SIZE = 4096


class FiniteFloatRange(click.FloatRange):
    """``click.FloatRange`` that also refuses ``nan`` (which passes every range comparison) and infinities."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if number != number or number in (float("inf"), float("-inf")):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


SEED_TYPE = click.IntRange(0, MAX_SEED)
BATCH_SIZE_TYPE = click.IntRange(1, MAX_BATCH_SIZE)


def parse_image_size(ctx, param, value: str | tuple) -> tuple[int, int]:
    """``128`` or ``160x320`` (height x width)."""
    if isinstance(value, tuple):  # a default_map from a config file may already hold the pair
        return value
    try:
        parts = [int(p) for p in str(value).lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 8 or max(parts) > MAX_IMAGE_SIDE:
        raise click.BadParameter(
            f"expected a size like 128 or 160x320 (height x width, each 8 to {MAX_IMAGE_SIDE}), got '{value}'."
        )
    return parts[0], parts[1]


def _apply(options: list) -> Callable:
    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


quiet_option = click.option("--quiet", "-q", is_flag=True, help="Print only errors and the final result.")
run_root_option = click.option(
    "--out", "out_root", type=click.Path(file_okay=False, path_type=Path), default=Path("octreport-runs"),
    show_default=True, help="Output root where a run name, 'latest' and 'previous' are looked up.")

card_option = click.option(
    "--card", "card_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
    help="Model card file (TOML or JSON: intended-use, intended-users, out-of-scope-uses, reference-standard, "
         "data-provenance, limitations, ethical-considerations, contact). Default: the config file's [card] table.",
)

DISTRIBUTE_OPTION = click.option(
    "--distribute", type=click.Choice(DISTRIBUTE_MODES), default="none", show_default=True,
    help="Train and evaluate under tf.distribute: mirrored = every GPU of this machine; multi-worker = "
         "several hosts described by TF_CONFIG (run the same command on each; worker 0 writes the results).",
)

FOLLOW_SYMLINKS_OPTION = click.option(
    "--follow-symlinks/--no-follow-symlinks", default=False, show_default=True,
    help="Read symbolic links that lead outside the data folder (by default they are skipped and listed).",
)

TRAINING_OPTIONS = [
    click.option("--preset", type=click.Choice(PRESET_NAMES), default=None,
                 help="Start from a named recipe (oct-real: real Spectralis B-scans, see README); options given override it."),
    click.option("--architecture", type=click.Choice(ARCHITECTURE_NAMES), default="notebook", show_default=True,
                 help="notebook: the source notebook's 4-conv network; compact-bn: batch-normalised, for real scans."),
    click.option("--epochs", type=click.IntRange(1, 10_000), default=15, show_default=True,
                 help="Maximum epochs (early stopping on the validation split)."),
    click.option("--batch-size", type=BATCH_SIZE_TYPE, default=32, show_default=True,
                 help="Images per batch for training and evaluation (the global batch under --distribute)."),
    click.option("--image-size", default="128", callback=parse_image_size, show_default=True,
                 help="Model input size: N for NxN, or HxW."),
    click.option("--channels", type=click.Choice(["1", "3"]), default="1", show_default=True,
                 help="1 = grayscale (OCT), 3 = RGB."),
    click.option("--aspect", type=click.Choice(ASPECT_MODES), default="stretch", show_default=True,
                 help="How images of another aspect ratio are fitted to the input size; retina: the full width and "
                      "70% of the height around the retina found in the image (its brightest band, the RPE)."),
    click.option("--normalization", type=click.Choice(NORMALIZATION_MODES), default="none", show_default=True,
                 help="Intensity normalization: none, or each image's 1st-99th percentile stretched to 0-1."),
    click.option("--learning-rate", type=FiniteFloatRange(min=0, min_open=True, max=1, max_open=True), default=1e-3,
                 show_default=True, help="Adam's learning rate (the peak of the cosine schedule)."),
    click.option("--augment/--no-augment", default=True, show_default=True,
                 help="Flip, shift, zoom, brightness, contrast (never a vertical flip)."),
    click.option("--class-weights/--no-class-weights", default=True, show_default=True,
                 help="Weigh classes by inverse frequency."),
    click.option("--patience", type=click.IntRange(min=1), default=5, show_default=True,
                 help="Early-stopping patience in epochs."),
    click.option("--early-stopping-start", type=click.IntRange(min=0), default=0, show_default=True,
                 help="Epochs before the validation loss is watched (and its best weights kept)."),
    click.option("--lr-schedule", type=click.Choice(LR_SCHEDULES), default="constant", show_default=True,
                 help="constant, or cosine: warm up from a tenth of --learning-rate, then decay to 0."),
    click.option("--warmup-epochs", type=click.IntRange(min=0), default=0, show_default=True,
                 help="Warm-up epochs of the cosine schedule."),
    click.option("--val-fraction", type=FiniteFloatRange(0, 0.9, min_open=True), default=0.15, show_default=True,
                 help="Share of training patients held out for validation when the data has no val/."),
    click.option("--test-fraction", type=FiniteFloatRange(0, 0.9, min_open=True), default=0.2, show_default=True,
                 help="Share of patients held out for test when the data has class folders only."),
    click.option("--seed", type=SEED_TYPE, default=0, show_default=True,
                 help="Seed for splits, shuffling, augmentation, weights and the images shown."),
    click.option("--referral-sensitivity", type=FiniteFloatRange(0, 1, min_open=True, max_open=True), default=0.95,
                 show_default=True,
                 help="Urgent-referral sensitivity the model's threshold on P(CNV) + P(DME) aims at, chosen on the "
                      "validation split after training and stored with the model (OCT classes only)."),
    DISTRIBUTE_OPTION,
    FOLLOW_SYMLINKS_OPTION,
    click.option("--fast-nondeterministic", is_flag=True, default=False,
                 help="Train without TensorFlow's op determinism: faster where it costs, but two runs with "
                      "the same seed may differ. By default training is bit-reproducible on the same machine."),
]
training_options = _apply(TRAINING_OPTIONS)

INTERVAL_OPTIONS = [
    click.option("--ci-level", type=click.FloatRange(MIN_LEVEL, MAX_LEVEL), default=0.95, show_default=True,
                 help="Confidence level of every interval and significance test."),
    click.option("--bootstrap-resamples", type=click.IntRange(MIN_RESAMPLES, MAX_RESAMPLES), default=2000,
                 show_default=True, help="Bootstrap resamples (of patients when the file names give them)."),
]
interval_options = _apply(INTERVAL_OPTIONS)

DATA_AUDIT_OPTIONS = [
    click.option("--patients", "patients_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
                 help="Data audit: a CSV with columns file,patient (file relative to --data, or a unique file name). "
                      "Default: patients from Kermany-style names CLASS-PATIENT-N."),
    click.option("--near-duplicate-bits", type=click.IntRange(0, 16), default=4, show_default=True,
                 help="Data audit: two images whose 64-bit perceptual hashes differ in at most this many bits are near-duplicates."),
    click.option("--dicom-salt", default="", metavar="TEXT",
                 help="Salt of the hashed DICOM PatientIDs (the IDs themselves are never kept). Default: a new one, "
                      "recorded in the run's manifest; give it again so that two runs of one audit agree."),
]

data_audit_options = _apply(DATA_AUDIT_OPTIONS)

REPORT_OPTIONS = [
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
    click.option("--filters-per-layer", type=click.IntRange(min=1), default=32, show_default=True,
                 help="Filters (kernels) drawn per conv layer: the first N."),
    click.option("--filter-reduction", type=click.Choice(["mean", "max_norm_channel"]), default="mean", show_default=True,
                 help="How a deep kernel becomes one 2-D patch: mean over input channels, or its strongest input channel."),
    click.option("--filter-views", default="kernels,patches,maximisation", show_default=True,
                 help="What the filter section shows per layer (comma-separated): the kernels, the test-image patches "
                      "that excite each filter most, the input each filter responds to most (activation maximisation)."),
    click.option("--layers", "layer_names", multiple=True,
                 help="Conv layers whose feature maps and filters are drawn: names or paths (repeatable or "
                      "comma-separated), or 'all'. Default: all of a model with at most 12, else the first and the "
                      "last of each resolution (stage). Every layer is still listed and audited."),
    click.option("--format", "formats", multiple=True, type=click.Choice(["html", "pdf"]), default=("html", "pdf"),
                 show_default=True, help="Report formats to write (repeatable)."),
    click.option("--html-mode", type=click.Choice(["embedded", "assets"]), default="embedded", show_default=True,
                 help="One self-contained HTML file, or HTML with an assets/ folder."),
    click.option("--image-format", type=click.Choice(["png", "jpeg"]), default="jpeg", show_default=True,
                 help="Encoding of the feature-map and filter grids."),
    click.option("--pdf-variant", type=click.Choice(PDF_VARIANTS), default=None,
                 help="Write an archival PDF/A-3 (keeps the attached metrics.json and manifest.json)."),
    click.option("--templates", "templates_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
                 help="Use your own Jinja2 templates (a folder with base.html; copy templates/ to start)."),
    click.option("--occlusion/--no-occlusion", default=False, show_default=True,
                 help="Add occlusion-sensitivity maps for the shown images (a few batched forward passes each)."),
    click.option("--occlusion-patch", type=click.IntRange(min=1), default=20, show_default=True,
                 help="Occlusion box size in pixels of the original image (Kermany et al. 2018 used 20)."),
    click.option("--occlusion-stride", type=click.IntRange(min=1), default=10, show_default=True,
                 help="Occlusion box step in pixels of the original image."),
    click.option("--errors-per-cell", type=click.IntRange(min=0), default=3, show_default=True,
                 help="Most confident mistakes shown per confusion-matrix cell (0: no errors gallery)."),
    click.option("--compare-to", default=None,
                 help="Put a comparison with this earlier run in the report: a run folder, 'latest' or 'previous'."),
    click.option("--input-scale", type=click.Choice(INPUT_SCALE_CHOICES), default="auto", show_default=True,
                 help="Input convention of a model octreport did not train: unit 0-1, byte 0-255, symmetric -1..1, "
                      "caffe or torch (keras.applications' ImageNet preprocessing). auto: from the model's "
                      "Rescaling/Normalization layer, else 0-1 with a warning. A model octreport trained keeps its own."),
    *INTERVAL_OPTIONS,
    click.option("--temperature-scaling/--no-temperature-scaling", default=True, show_default=True,
                 help="Fit temperature scaling on the validation split of a model trained in the run and report "
                      "what it would change (never applied)."),
    *DATA_AUDIT_OPTIONS,
    click.option("--groups", "groups_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
                 help="Performance by acquisition group: a CSV with columns file,group (file relative to --data, or a "
                      "unique file name; group e.g. the device or site). Always given per image size too."),
    click.option("--heatmap-checks/--no-heatmap-checks", default=True, show_default=True,
                 help="Check the heat maps: deletion and insertion curves (Grad-CAM against a random map, and occlusion) "
                      "and the randomisation sanity check, for the shown images."),
    click.option("--heatmap-steps", type=click.IntRange(MIN_HEATMAP_STEPS, MAX_HEATMAP_STEPS), default=10,
                 show_default=True, help="Steps of each deletion and insertion curve (10: a tenth of the pixels a step)."),
    click.option("--heatmap-baseline", type=click.Choice(HEATMAP_BASELINES), default="blur", show_default=True,
                 help="What a removed pixel becomes: the image blurred, its mean, or black."),
    click.option("--sentinels", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
                 help="File of image paths (one a line, relative to the data folder or absolute; # comments) shown "
                      "in every run instead of images drawn with --seed, so that heat maps compare like with like."),
    click.option("--split", type=click.Choice(SPLIT_CHOICES), default=SPLIT_AUTO, show_default=True,
                 help="What a model that this run does not train (--model) is evaluated on: all: every image of the "
                      "folder; test: test/ of a train/test layout, or 20%% of the patients of class folders as a "
                      "training run would cut them; auto: all for class folders, test for a train/test layout. "
                      "A run that trains always evaluates its test split."),
    click.option("--class-names", "class_names", default=None, metavar="A,B,C,D",
                 help="The classes of a model without a sidecar, in output order, so that evaluation data holding "
                      "some of them is matched by folder name (--model only)."),
    click.option("--class-map", "class_map", default=None, metavar="FILE|\"FOLDER=CLASS,...\"",
                 help="Evaluation folders named another way, mapped onto the model's classes, e.g. "
                      "\"wet AMD=CNV,healthy=NORMAL\" or a file of such pairs (case and spaces ignored; --model only)."),
    click.option("--dicom-frames", "dicom_frames", type=click.Choice(DICOM_FRAMES), default=FRAMES_CENTER,
                 show_default=True,
                 help="Which B-scans a multi-frame DICOM volume gives: its central frame (center, as a Kermany-style "
                      "export shows), or every frame as its own image named FILE#FRAME (all; --model only)."),
    click.option("--unlabelled", is_flag=True, default=False,
                 help="Screen every image under --data without labels (subfolders too, whatever their names): a "
                      "screening report, no accuracy. A folder of images without class folders is screened anyway."),
    click.option("--cache/--no-cache", default=True, show_default=True,
                 help="Keep what depends only on the model's weights (activation maximisation) in the weights cache "
                      "and reuse it when the same model is reported again; --no-cache computes it every time."),
    click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                 help="The weights cache's folder. Default: $OCTREPORT_CACHE_DIR, else $XDG_CACHE_HOME/octreport, "
                      "else ~/.cache/octreport."),
    click.option("--referral-threshold", type=FiniteFloatRange(0, 1), default=None,
                 help="For this report, call a scan urgent when P(CNV) + P(DME) reaches this, instead of the model's "
                      "stored referral rule (recorded in metrics.json; OCT classes only)."),
]
REPORT_OPTION_NAMES = ("out_root", "images_per_class", "image_paths", "maps_per_layer", "channel_selection",
                       "filters_per_layer", "filter_reduction", "filter_views", "layer_names", "formats", "html_mode", "image_format",
                       "pdf_variant", "templates_dir", "occlusion", "occlusion_patch", "occlusion_stride",
                       "errors_per_cell", "compare_to", "ci_level", "bootstrap_resamples", "temperature_scaling",
                       "patients_file", "groups_file", "near_duplicate_bits", "input_scale",
                       "heatmap_checks", "heatmap_steps", "heatmap_baseline", "sentinels", "split",
                       "class_names", "class_map", "unlabelled", "dicom_salt", "dicom_frames", "cache", "cache_dir",
                       "referral_threshold")
report_options = _apply(REPORT_OPTIONS)

DATA_GATE_OPTIONS = [
    click.option("--max-leaked-patients", type=click.IntRange(min=0), default=None,
                 help="Gate: fail when more patients than this have images in more than one split (data audit)."),
    click.option("--max-duplicates", type=click.IntRange(min=0), default=None,
                 help="Gate: fail when more files than this are duplicated across splits, exactly or nearly (data audit)."),
]

GATE_OPTIONS = [
    click.option("--min-accuracy", type=FiniteFloatRange(0, 1), default=None, help="Gate: fail below this test accuracy."),
    click.option("--min-sensitivity", "min_sensitivity", multiple=True, metavar="CLASS=VALUE",
                 help="Gate: fail when this class's recall is below VALUE (repeatable)."),
    click.option("--min-urgent-sensitivity", type=FiniteFloatRange(0, 1), default=None,
                 help="Gate: fail below this urgent-referral sensitivity (OCT classes only)."),
    click.option("--max-weighted-error", type=FiniteFloatRange(0, 1), default=None,
                 help="Gate: fail above this Kermany weighted error (OCT classes only)."),
    click.option("--max-dead-filters", type=FiniteFloatRange(0, 1), default=None,
                 help="Gate: fail when any conv layer has a larger share of dead filters."),
    click.option("--require-card", is_flag=True, default=False,
                 help="Gate: fail when a field of the model card is missing (see --card)."),
    *DATA_GATE_OPTIONS,
    click.option("--fail-on-shift", is_flag=True, default=False,
                 help="Gate: fail when the Data shift section finds a material difference from the model's training "
                      "scans (size, channels, intensity, ...), labelled or not; fails too when the model has no training profile."),
    click.option("--gate-on", type=click.Choice(GATE_ON), default="value", show_default=True,
                 help="Compare each gate's threshold with the value, or with the pessimistic end of its confidence "
                      "interval (lower bound; upper bound for --max-weighted-error)."),
]
GATE_OPTION_NAMES = ("min_accuracy", "min_sensitivity", "min_urgent_sensitivity", "max_weighted_error", "max_dead_filters",
                     "require_card", "max_leaked_patients", "max_duplicates", "fail_on_shift", "gate_on")
gate_options = _apply(GATE_OPTIONS)
data_gate_options = _apply(DATA_GATE_OPTIONS)


MLFLOW_OPTIONS = [
    click.option("--mlflow", is_flag=True, default=False,
                 help="Also log the finished run folder to an MLflow tracking server (needs the extra: "
                      "pip install \"octreport[mlflow]\"). The run folder is written first; exit 9 when the server fails."),
    click.option("--mlflow-experiment", default="octreport", show_default=True, metavar="NAME",
                 help="MLflow experiment the run is logged in (made if missing)."),
    click.option("--mlflow-tracking-uri", envvar="MLFLOW_TRACKING_URI", default=None, metavar="URI",
                 help="Tracking server (default: $MLFLOW_TRACKING_URI, else MLflow's own default); also where "
                      "--model models:/... and runs:/... are fetched from."),
]
REGISTER_OPTION = click.option(
    "--mlflow-register", default=None, metavar="NAME",
    help="Register the model the run trained as a new version of this MLflow model (implies --mlflow).")
MLFLOW_OPTION_NAMES = ("mlflow", "mlflow_experiment", "mlflow_tracking_uri", "mlflow_register")
mlflow_options = _apply(MLFLOW_OPTIONS)
mlflow_register_options = _apply([*MLFLOW_OPTIONS, REGISTER_OPTION])


def build_tracking_settings(options: dict):
    """The MLflow settings, or None without ``--mlflow``/``--mlflow-register``; refuses them (exit 2,
    naming the extra) when MLflow is not installed. ``options``: :data:`MLFLOW_OPTION_NAMES`."""
    from octreport.audit.mlflow_tracking import TrackingSettings, require_mlflow

    register = options.get("mlflow_register")
    if not options["mlflow"] and not register:
        return None
    require_mlflow("--mlflow" if options["mlflow"] else "--mlflow-register")
    return TrackingSettings(options["mlflow_tracking_uri"], options["mlflow_experiment"], register)


def take(options: dict, names: tuple[str, ...]) -> dict:
    """Remove and return the ``names`` entries of ``options`` (each command's options in groups;
    a name the command does not have is None)."""
    return {name: options.pop(name, None) for name in names}


# TrainConfig field for each training option; the preprocessing options are handled together.
_TRAIN_FIELDS = {
    "architecture": "architecture", "epochs": "epochs", "batch_size": "batch_size", "learning_rate": "learning_rate",
    "augment": "augment", "class_weights": "class_weights", "patience": "early_stopping_patience", "seed": "seed",
    "val_fraction": "val_fraction", "test_fraction": "test_fraction", "early_stopping_start": "early_stopping_start",
    "lr_schedule": "lr_schedule", "warmup_epochs": "warmup_epochs", "distribute": "distribute",
    "follow_symlinks": "follow_symlinks", "referral_sensitivity": "referral_sensitivity",
}
_PREPROCESSING_OPTIONS = ("image_size", "channels", "aspect", "normalization")


def build_train_config(options: dict, given: set[str] | frozenset[str] = frozenset()) -> TrainConfig:
    """The training configuration: the defaults, or the ``--preset`` with the options in ``given``
    (those set on the command line, in the environment or in a config file) laid over it."""
    preset_name = options.get("preset")
    if preset_name is None:
        given = set(_TRAIN_FIELDS) | set(_PREPROCESSING_OPTIONS)
        base = TrainConfig()
    else:
        from octreport.models.recipes import PRESETS

        base = PRESETS[preset_name]
    overrides = {field: options[name] for name, field in _TRAIN_FIELDS.items() if name in given}
    prep = base.preprocessing
    if "image_size" in given:
        prep = replace(prep, height=options["image_size"][0], width=options["image_size"][1])
    if "channels" in given:
        prep = replace(prep, channels=int(options["channels"]))
    for name in ("aspect", "normalization"):
        if name in given:
            prep = replace(prep, **{name: options[name]})
    if options.get("fast_nondeterministic"):
        overrides["deterministic"] = False
    return replace(base, preprocessing=prep, **overrides)


def build_report_config(options: dict, seed: int, batch_size: int = 32) -> ReportConfig:
    layer_names = tuple(name.strip() for value in options["layer_names"] for name in value.split(",") if name.strip())
    return ReportConfig(
        images_per_class=options["images_per_class"],
        image_paths=tuple(str(p) for p in options["image_paths"]),
        maps_per_layer=options["maps_per_layer"],
        channel_selection=options["channel_selection"],
        filters_per_layer=options["filters_per_layer"],
        filter_reduction=options["filter_reduction"],
        filter_views=tuple(dict.fromkeys(v.strip() for v in options["filter_views"].split(",") if v.strip())),
        layer_names=layer_names,
        formats=tuple(dict.fromkeys(options["formats"])),
        html_mode=options["html_mode"],
        image_format=options["image_format"],
        pdf_variant=options["pdf_variant"],
        templates_dir=str(options["templates_dir"]) if options["templates_dir"] else None,
        compare_to=options["compare_to"],
        occlusion=options["occlusion"],
        occlusion_patch=options["occlusion_patch"],
        occlusion_stride=options["occlusion_stride"],
        errors_per_cell=options["errors_per_cell"],
        out_root=str(options["out_root"]),
        seed=seed,
        batch_size=batch_size,
        ci_level=options["ci_level"],
        bootstrap_resamples=options["bootstrap_resamples"],
        temperature_scaling=options["temperature_scaling"],
        patients_file=str(options["patients_file"]) if options["patients_file"] else None,
        groups_file=str(options["groups_file"]) if options["groups_file"] else None,
        near_duplicate_bits=options["near_duplicate_bits"],
        input_scale=options["input_scale"],
        heatmap_checks=options["heatmap_checks"],
        heatmap_steps=options["heatmap_steps"],
        heatmap_baseline=options["heatmap_baseline"],
        sentinels=str(options["sentinels"]) if options["sentinels"] else None,
        split=options["split"],
        **_external_data_options(options),
        cache=options["cache"],
        cache_dir=str(options["cache_dir"]) if options["cache_dir"] else None,
        referral_threshold=options["referral_threshold"],
    )


def _external_data_options(options: dict) -> dict:
    """``--class-names`` and ``--class-map`` parsed (:mod:`octreport.data.class_map`; a map file is
    read here, so the run's configuration records the pairs themselves), ``--unlabelled`` and
    ``--dicom-salt`` (see docs/external-data.md)."""
    from octreport.data.class_map import parse_class_map, parse_class_names

    names = parse_class_names(options["class_names"]) if options.get("class_names") else ()
    pairs = tuple(parse_class_map(options["class_map"]).items()) if options.get("class_map") else ()
    return {"class_names": names, "class_map": pairs, "unlabelled": bool(options.get("unlabelled")),
            "dicom_salt": options.get("dicom_salt") or "", "dicom_frames": options.get("dicom_frames") or FRAMES_CENTER}


def build_gate_config(options: dict):
    from octreport.audit.gates import GateConfig, parse_sensitivity_options

    return GateConfig(
        min_accuracy=options["min_accuracy"],
        min_sensitivity=parse_sensitivity_options(options["min_sensitivity"]),
        min_urgent_sensitivity=options["min_urgent_sensitivity"],
        max_weighted_error=options["max_weighted_error"],
        max_dead_filters=options["max_dead_filters"],
        require_card=options["require_card"],
        max_leaked_patients=options.get("max_leaked_patients"),
        max_duplicates=options.get("max_duplicates"),
        fail_on_shift=options.get("fail_on_shift", False),
        gate_on=options["gate_on"],
    )
