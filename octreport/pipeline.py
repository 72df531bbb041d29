"""One run of octreport, top to bottom:

data -> image facts (one cheap decode of every image) -> model (trained, recording the training images'
     acquisition profile, or loaded) -> conv layers -> {metrics, intervals and calibration, activations, filters}
     -> data shift and performance by acquisition group -> heat-map checks (faithfulness curves, randomisation check) -> gates -> figures -> report context -> HTML -> metrics.json, predictions.csv, manifest.json -> PDF
     -> run folder

This module imports TensorFlow; the CLI and :func:`octreport.make_report` import it only when a
run starts.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np

from octreport.audit.compare import LoadedRun, compare_runs, load_run
from octreport.audit.fingerprint import fingerprint_prepared_data, relative_name
from octreport.audit.gates import GateConfig, check_gate_classes, evaluate_gates, gates_passed
from octreport.audit.manifest import hash_artifacts, manifest_for_run, outcome_for, write_manifest
from octreport.audit.model_card import ModelCard
from octreport.audit_data import audit_prepared_data
from octreport.config import ReportConfig, TrainConfig
from octreport.data.acquisition_profile import ShiftReport, compare_profiles, profile_from_facts, size_labels
from octreport.data.dataset import SPLIT_AUTO, PreparedData, prepare_data
from octreport.data.groups import NOT_LISTED, GroupTable, read_groups_file
from octreport.data.image_facts import SplitFacts, collect_split_facts
from octreport.data.patients import NAMES, read_patients_file
from octreport.data.preprocessing import Preprocessing
from octreport.data.splits import patient_id
from octreport.distribute import distributed, is_chief, output_root
from octreport.errors import ConfigError
from octreport.engine.layer_selection import choose_drawn_layers
from octreport.engine.layers import discover_conv_layers
from octreport.engine.top_activations import TopActivationsAccumulator
from octreport.evaluation.metrics import ClassificationMetrics, compute_classification_metrics
from octreport.evaluation.errors_gallery import errors_gallery
from octreport.evaluation.group_metrics import BY_SIZE, GroupMetrics, compute_group_metrics
from octreport.evaluation.heatmap_checks import HeatmapCheckSettings, HeatmapChecks, compute_heatmap_checks
from octreport.evaluation.predict import Predictions, evaluate_with_layer_health, predict_items
from octreport.evaluation.prediction_spread import prediction_spread
from octreport.evaluation.predictions_file import RunPredictions, run_predictions
from octreport.evaluation.referral import ReferralMetrics, compute_referral_metrics
from octreport.evaluation.statistics import PredictionStatistics, compute_prediction_statistics
from octreport.models.architectures import build_model
from octreport.models.input_scale import AUTO, InputScaleChoice, choose_input_scale
from octreport.models.io import check_model_fits, load_model, preprocessing_for, save_model
from octreport.models.metadata import ModelMetadata, sidecar_path
from octreport.models.training import train_model
from octreport.report.metrics_json import metrics_document, timings_entry
from octreport.report.preview import check_templates
from octreport.report.write import write_html, write_metrics, write_pdf, write_predictions
from octreport.resources import sample_data_dir
from octreport.results import RunResults
from octreport.runfolder import prepare_output_folder, run_folder
from octreport.visuals import (
    OcclusionSettings,
    Visuals,
    choose_images,
    compute_error_gallery,
    compute_filter_views,
    compute_visuals,
    items_from_paths,
    sentinel_paths,
)

log = logging.getLogger(__name__)

TRAINED = "trained in this run"
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class TrainOutcome:
    model_path: Path
    test_accuracy: float
    test_images: int
    train_seconds: float
    saved: bool = True  # False on a non-chief multi-worker task (see octreport.distribute)


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    html_path: Path | None
    pdf_path: Path | None
    metrics_path: Path
    manifest_path: Path
    accuracy: float
    failed_gates: tuple[str, ...]
    timings: dict[str, float]
    published: bool = True  # False on a non-chief multi-worker task: its copy was removed

    @property
    def gates_passed(self) -> bool:
        return not self.failed_gates


@dataclass(frozen=True, eq=False)
class GivenModel:
    """The model a report is about, where it came from, and the preprocessing it expects
    (``input_scale``: the input convention in it, and why)."""

    model: keras.Model
    source: str
    path: Path | None
    metadata: ModelMetadata | None
    preprocessing: Preprocessing
    input_scale: InputScaleChoice


@contextmanager
def _stage(timings: dict[str, float], name: str):
    started = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - started
    log.info("%s took %.1f s", name, timings[name])


def train_evaluate_save(data_dir: Path | None, model_path: Path, config: TrainConfig) -> TrainOutcome:
    """Train on ``data_dir`` (default: the bundled sample data), evaluate on its test split, save."""
    data = _prepare(data_dir, config)
    with distributed(config.distribute) as strategy:
        if is_chief(strategy):
            prepare_output_folder(model_path.parent, "--out's folder")
        facts = _image_facts(data, ("train",))
        trained = train_model(data, config, profile_from_facts(facts.facts))
        predictions = predict_items(trained.model, data.test, config.preprocessing, config.batch_size)
        accuracy = float((predictions.predicted == predictions.labels).mean()) if len(predictions.labels) else 0.0
        with output_root(strategy, model_path.parent) as folder:
            save_model(trained.model, folder / model_path.name, trained.metadata)
    return TrainOutcome(model_path, accuracy, len(predictions.labels), trained.seconds, is_chief(strategy))


def run_report(
    *,
    data_dir: Path | str | None,
    model: keras.Model | Path | str | None = None,
    train_config: TrainConfig = TrainConfig(),
    report_config: ReportConfig = ReportConfig(),
    gate_config: GateConfig = GateConfig(),
    command_line: str = "",
    card: ModelCard | None = None,
) -> RunOutcome:
    """Train (``model=None``), load (a path) or take (a ``keras.Model``) a model, evaluate it on the
    test split, look inside it, gate it, and write the report into a new run folder.

    Everything a user can get wrong (data folder, model file, layer names, images, gate classes,
    the run to compare with) is checked before the run folder is made, so a refused run leaves
    nothing behind. A run whose quality gates fail is still published; ``failed_gates`` says why.
    ``card``: the model card (:mod:`octreport.audit.model_card`); None, or an empty card, and the
    report says which fields are missing.
    """
    started_at = _now()
    if model is None and report_config.input_scale not in (AUTO, "unit"):
        raise ConfigError(
            f"--input-scale {report_config.input_scale} is for a model octreport did not train (--model); a model "
            "trained in this run is fed 0-1 (unit) and keeps that in its sidecar. Leave --input-scale out, or give --model."
        )
    data = _prepare(data_dir, train_config, training=model is None, split=report_config.split)
    report_config = replace(report_config, split=data.evaluated_split)  # recorded as resolved, for verify
    with distributed(train_config.distribute) as strategy:
        with output_root(strategy, Path(report_config.out_root)) as out_root:
            outcome = _run_report(data, model, train_config, replace(report_config, out_root=str(out_root)),
                                  gate_config, command_line, Path(report_config.out_root), started_at, card or ModelCard())
    return replace(outcome, published=is_chief(strategy))


def _run_report(
    data: PreparedData, model: keras.Model | Path | str | None, train_config: TrainConfig,
    report_config: ReportConfig, gate_config: GateConfig, command_line: str, runs_root: Path, started_at: str,
    card: ModelCard,
) -> RunOutcome:
    """:func:`run_report` inside the distribution scope; ``runs_root`` is where earlier runs are
    looked up (``report_config.out_root`` differs from it on non-chief workers)."""
    timings: dict[str, float] = {}
    given = None if model is None else _given_model(model, data, report_config.input_scale)
    _check_layer_names(given, train_config, len(data.class_names), report_config.layer_names)
    check_gate_classes(gate_config, data.class_names)
    requested = _requested_images(report_config, data)
    baseline = load_run(report_config.compare_to, runs_root) if report_config.compare_to else None
    if report_config.templates_dir:
        check_templates(Path(report_config.templates_dir))
    patients = read_patients_file(report_config.patients_file) if report_config.patients_file else NAMES
    groups = read_groups_file(report_config.groups_file, data.root) if report_config.groups_file else None
    prepare_output_folder(Path(report_config.out_root))

    with run_folder(Path(report_config.out_root)) as folder:
        with _stage(timings, "image facts"):
            facts = _image_facts(data)
        if given is None:
            with _stage(timings, "train"):
                trained = train_model(data, train_config, profile_from_facts(facts.split("train")))
                given = GivenModel(trained.model, TRAINED, folder.work / "model.keras", trained.metadata,
                                   train_config.preprocessing, _trained_input_scale(train_config.preprocessing))
                save_model(given.model, given.path, given.metadata)
        results = _evaluate_and_look_inside(data, given, train_config, report_config, requested, command_line, started_at, timings)
        with _stage(timings, "data shift"):
            shift, by_group = _acquisition_shift(results, facts, groups)
            results = replace(results, data_shift=shift, group_metrics=by_group)
        fingerprint = fingerprint_prepared_data(data, results.skipped)
        with _stage(timings, "data audit"):
            results = replace(results, data_audit=audit_prepared_data(data, fingerprint, patients,
                                                                      report_config.near_duplicate_bits, facts))
        document = metrics_document(results)
        document["card"] = card.to_dict()
        gates = evaluate_gates(document, gate_config)
        document["gates"] = {"passed": gates_passed(gates), "results": [g.to_dict() for g in gates]}
        manifest = manifest_for_run(
            results, finished_at=_now(), outcome=outcome_for(gates), fingerprint=fingerprint,
            gates=gates, gate_config=gate_config, train_config=train_config, artifacts=_model_files(given),
        )
        if given.source == TRAINED:  # the manifest names the model file where the published run keeps it
            manifest["model"]["file"] = str(folder.published(given.path))
        recorded = _recorded_predictions(results)
        comparison = _compare_with(baseline, document, manifest, recorded, report_config)
        rendered = write_html(results, gates, folder.work, report_config, timings, comparison, card)
        document["timings_seconds"] = timings_entry(timings)
        metrics_path = write_metrics(document, folder.work)
        predictions_path = write_predictions(recorded, folder.work)
        # The PDF is rendered after the manifest (it carries it), so only files made before it are hashed.
        manifest["artifacts"].update(hash_artifacts(
            [p for p in (rendered.html_path, metrics_path, predictions_path) if p is not None]))
        manifest_path = write_manifest(folder.work / MANIFEST_NAME, manifest)
        pdf_path = write_pdf(rendered, folder.work, [metrics_path, manifest_path], report_config, timings) if "pdf" in report_config.formats else None

    return RunOutcome(
        run_dir=folder.final,
        html_path=folder.published(rendered.html_path) if rendered.html_path else None,
        pdf_path=folder.published(pdf_path) if pdf_path else None,
        metrics_path=folder.published(metrics_path),
        manifest_path=folder.published(manifest_path),
        accuracy=results.metrics.accuracy,
        failed_gates=tuple(g.message for g in gates if not g.passed),
        timings=dict(timings),
    )


def _evaluate_and_look_inside(
    data: PreparedData, given: GivenModel, train_config: TrainConfig, report_config: ReportConfig,
    requested, command_line: str, started_at: str, timings: dict[str, float],
) -> RunResults:
    all_layers = discover_conv_layers(given.model)
    selection = choose_drawn_layers(all_layers, report_config.layer_names)
    views = report_config.filter_views
    top = TopActivationsAccumulator(all_layers) if "patches" in views else None
    with _stage(timings, "evaluate"):
        predictions, health = evaluate_with_layer_health(
            given.model, all_layers, data.test, given.preprocessing, report_config.batch_size, top
        )
        metrics = compute_classification_metrics(predictions.labels, predictions.probabilities, data.class_names)
        referral = compute_referral_metrics(predictions.labels, predictions.probabilities, data.class_names)
        spread = prediction_spread(predictions.probabilities, predictions.labels, data.class_names)
    with _stage(timings, "statistics"):
        statistics = _statistics(data, given, report_config, predictions, metrics, referral)
    with _stage(timings, "visualize"):
        shown = requested or choose_images(predictions.items, len(data.class_names), report_config.images_per_class, report_config.seed)
        occlusion = (
            OcclusionSettings(report_config.occlusion_patch, report_config.occlusion_stride) if report_config.occlusion else None
        )
        visuals = compute_visuals(
            given.model, selection.drawn, shown, given.preprocessing, report_config.maps_per_layer,
            report_config.channel_selection, report_config.filters_per_layer, report_config.filter_reduction,
            report_config.batch_size, occlusion, data.class_names,
        )
        cells = errors_gallery(predictions.labels, predictions.probabilities, predictions.items, data.class_names,
                               max(1, report_config.errors_per_cell))
        if report_config.errors_per_cell:
            errors = compute_error_gallery(given.model, cells, given.preprocessing, visuals.gradcam_layer, report_config.batch_size)
            visuals = replace(visuals, errors=errors)
    with _stage(timings, "filter views"):
        filters = compute_filter_views(
            given.model, visuals.filters, views, top.result() if top is not None else (), data.test,
            given.preprocessing, data.root, report_config.filters_per_layer, report_config.seed,
        )
        visuals = replace(visuals, filters=filters)
    checks = None
    if report_config.heatmap_checks:
        with _stage(timings, "heatmap_checks"):
            checks = _heatmap_checks(given, visuals, report_config)
    return RunResults(
        data=data, model=given.model, model_source=given.source, model_path=given.path, metadata=given.metadata,
        preprocessing=given.preprocessing, predictions=predictions, metrics=metrics, referral=referral,
        statistics=statistics, layers=all_layers, layer_selection=selection, layer_health=health,
        confusion_cells=cells, visuals=visuals, input_scale=given.input_scale, prediction_spread=spread,
        train_config=train_config if given.source == TRAINED else None,
        report_config=report_config, command_line=command_line, started_at=started_at, timings=timings,
        heatmap_checks=checks,
    )


def _image_facts(data: PreparedData, splits: tuple[str, ...] = ("train", "val", "test")) -> SplitFacts:
    """The facts of every image of ``splits`` from one cheap decode (:mod:`octreport.data.image_facts`):
    the training images' acquisition profile, the evaluated images' and the data audit all read them."""
    return collect_split_facts(data.root, {split: [item.path for item in data.split(split)] for split in splits})


def _acquisition_shift(results: RunResults, facts: SplitFacts,
                       groups: GroupTable | None) -> tuple[ShiftReport, tuple[GroupMetrics, ...]]:
    """The evaluated images' acquisition profile against the model's training profile (none for a
    model without one), and performance per image size and per the user's groups."""
    data, predictions = results.data, results.predictions
    names = [relative_name(item.path, data.root) for item in predictions.items]
    evaluated = facts.lookup([("test", name) for name in names])
    training = results.metadata.training_profile if results.metadata is not None else None
    shift = compare_profiles(training, profile_from_facts(evaluated), results.preprocessing.aspect)
    for finding in shift.findings:
        log.warning("data shift: %s", finding.text)
    level = results.report_config.ci_level
    grouped = [compute_group_metrics(predictions.labels, predictions.predicted, data.class_names, size_labels(evaluated),
                                     BY_SIZE, level)]
    if groups is not None:
        by_user = compute_group_metrics(predictions.labels, predictions.predicted, data.class_names,
                                        [groups.group(name) for name in names], groups.source, level)
        if by_user.not_listed:
            log.warning("%s does not list %d of the %d evaluated images; they are grouped as '%s'",
                        groups.source, by_user.not_listed, len(names), NOT_LISTED)
        grouped.append(by_user)
    return shift, tuple(grouped)


def _heatmap_checks(given: GivenModel, visuals: Visuals, config: ReportConfig) -> HeatmapChecks:
    """Faithfulness curves and the randomisation check of the shown images' Grad-CAM maps for
    their predicted class (and their occlusion maps, when the report has them)."""
    shown = visuals.shown
    predicted = [s.predicted for s in shown]
    cams = [next(c.heatmap for c in s.gradcam if c.class_index == s.predicted) for s in shown]
    occlusion = [None if s.occlusion is None else s.occlusion.heatmap for s in shown]
    settings = HeatmapCheckSettings(steps=config.heatmap_steps, baseline=config.heatmap_baseline, seed=config.seed,
                                    batch_size=config.batch_size)
    return compute_heatmap_checks(given.model, np.stack([s.pixels for s in shown]), predicted, np.stack(cams),
                                  occlusion if config.occlusion else None, settings)


def _requested_images(config: ReportConfig, data: PreparedData):
    """The images the user named (``--image``, ``--sentinels``), or None to draw them with the seed."""
    paths = tuple(config.image_paths)
    if config.sentinels:
        paths += sentinel_paths(config.sentinels, data.root)
    return items_from_paths(tuple(dict.fromkeys(paths)), data.class_names) if paths else None


def _statistics(
    data: PreparedData, given: GivenModel, config: ReportConfig, predictions: Predictions,
    metrics: ClassificationMetrics, referral: ReferralMetrics | None,
) -> PredictionStatistics:
    """Intervals (over patients when the file names tell them), calibration and operating points.

    Temperature scaling is fitted on the validation split only for a model trained in this run:
    for a loaded model, octreport cannot know which images it was tuned on.
    """
    validation, reason = None, ""
    if not config.temperature_scaling:
        reason = "Temperature scaling was not asked for (--no-temperature-scaling)."
    elif given.source != TRAINED:
        reason = ("Temperature scaling is fitted only for a model trained in this run: for a loaded model octreport "
                  "cannot tell which images were used to tune it.")
    elif not data.val:
        reason = "Temperature scaling needs a validation split, and this run has none."
    else:
        val = predict_items(given.model, data.val, given.preprocessing, config.batch_size)
        validation = (val.labels, val.probabilities)
    return compute_prediction_statistics(
        metrics, referral, predictions.probabilities, groups=[patient_id(item) for item in predictions.items],
        settings=config.bootstrap, validation=validation, no_validation_reason=reason,
    )


def _prepare(data_dir: Path | str | None, config: TrainConfig, training: bool = True, split: str = SPLIT_AUTO) -> PreparedData:
    """The data folder (default: the bundled sample data) split for training, or, for a model that
    is only evaluated, the images ``split`` names (:data:`~octreport.data.dataset.SPLIT_CHOICES`)."""
    data = prepare_data(data_dir or sample_data_dir(), config.seed, config.val_fraction, config.test_fraction,
                        config.follow_symlinks, training=training, split=split)
    log.info("data: %s (%s); %s", data.root, ", ".join(data.class_names), data.split_note)
    return data


def _given_model(model: keras.Model | Path | str, data: PreparedData, input_scale: str = AUTO) -> GivenModel:
    """Load (a path) or take (a ``keras.Model``) the model, check it fits the data and has
    convolutional layers to show, and settle the input convention it is fed in."""
    if isinstance(model, keras.Model):
        source, path, metadata = f"in-memory model '{model.name}'", None, None
    else:
        loaded = load_model(model)
        model, source, path, metadata = loaded.model, str(loaded.path), loaded.path, loaded.metadata
    check_model_fits(model, data.class_names, metadata)
    saved = metadata.preprocessing if metadata else None
    preprocessing = preprocessing_for(model, saved)
    discover_conv_layers(model)
    choice = choose_input_scale(model, input_scale, saved)
    preprocessing = replace(preprocessing, input_scale=choice.scale)
    log.info("input convention: %s", choice.reason)
    return GivenModel(model, source, path, metadata, preprocessing, choice)


def _trained_input_scale(preprocessing: Preprocessing) -> InputScaleChoice:
    return InputScaleChoice(preprocessing.input_scale, "trained",
                            f"{preprocessing.input_scale_text}: the model was trained in this run on it")


def _check_layer_names(given: GivenModel | None, config: TrainConfig, num_classes: int, names) -> None:
    """Refuse unknown ``--layers`` names up front; a model still to be trained is checked on its
    untrained architecture, which has the same layers."""
    if not names:
        return
    probe = given.model if given else build_model(config.architecture, config.preprocessing.input_shape, num_classes)
    choose_drawn_layers(discover_conv_layers(probe), names)


def _model_files(given: GivenModel) -> list[Path]:
    """The model files the manifest hashes: the model, and its sidecar when the run trained it
    (both then lie in the run folder)."""
    if given.path is None:
        return []
    return [given.path, sidecar_path(given.path)] if given.source == TRAINED else [given.path]


def _recorded_predictions(results: RunResults) -> RunPredictions:
    """What predictions.csv records of this run: each test image's path relative to the data root."""
    predictions, data = results.predictions, results.data
    return run_predictions([relative_name(item.path, data.root) for item in predictions.items], predictions.labels,
                           predictions.probabilities, data.class_names)


def _compare_with(baseline: LoadedRun | None, document: dict, manifest: dict, recorded: RunPredictions,
                  config: ReportConfig):
    if baseline is None:
        return None
    current = LoadedRun(name="this run", path=Path("."), metrics=document, manifest=manifest, predictions=recorded)
    return compare_runs(baseline, current, config.bootstrap)


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
