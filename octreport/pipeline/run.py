"""One run of octreport (``run``, ``report``, :func:`octreport.make_report`), top to bottom:

refuse what is wrong (before a run folder exists) -> data -> model (trained: one read of each
training image gives its image facts too; or loaded, and the folder's training images' facts read)
-> evaluate (the evaluated images' facts from the same read) and look inside -> data shift -> data audit
-> the run's results, built once -> the run document (metrics, gates, manifest, comparison), judged
once -> the publisher writes the run folder (HTML, metrics.json, predictions.csv, manifest, PDF).

This module imports TensorFlow; the CLI and :func:`octreport.make_report` import it only when a
run starts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import keras

from octreport.audit.compare import load_run
from octreport.audit.gates import GateConfig, check_gate_classes
from octreport.audit.mlflow_models import RegistryModel
from octreport.audit.model_card import ModelCard
from octreport.config import ReportConfig, TrainConfig
from octreport.data.data_audit import audit_prepared_data
from octreport.data.data_warnings import data_warnings
from octreport.data.dataset import PreparedData
from octreport.data.dicom_frames import FRAMES_ALL, with_frames
from octreport.data.dicom_headers import DicomHeaderReads
from octreport.data.fingerprint import fingerprint_prepared_data
from octreport.data.groups import read_groups_file
from octreport.data.layout import looks_unlabelled
from octreport.data.patients import NAMES, read_patients_file
from octreport.document.results import RunResults
from octreport.document.run_document import build_run_document
from octreport.errors import ConfigError
from octreport.evaluation.referral_rule import check_referral_override
from octreport.models.distribute import distributed, is_chief, output_root
from octreport.models.input_scale import AUTO, input_warnings
from octreport.pipeline.data_stages import (
    acquisition_shift,
    image_facts,
    model_classes,
    prepare,
    requested_images,
    with_dicom_salt,
)
from octreport.pipeline.look_inside import look_inside
from octreport.pipeline.model_stage import check_layer_names, given_model, train_given_model
from octreport.pipeline.publish import publish_run
from octreport.pipeline.screening_run import run_screening
from octreport.progress import stage
from octreport.provenance import timestamp_now
from octreport.report.preview import check_templates
from octreport.runfolder import prepare_output_folder, run_folder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    html_path: Path | None
    pdf_path: Path | None
    metrics_path: Path
    manifest_path: Path
    accuracy: float | None
    """None for a screening run over unlabelled scans: no labels, no accuracy."""
    failed_gates: tuple[str, ...]
    timings: dict[str, float]
    published: bool = True  # False on a non-chief multi-worker task: its copy was removed

    @property
    def gates_passed(self) -> bool:
        return not self.failed_gates


def run_report(
    *,
    data_dir: Path | str | None,
    model: keras.Model | Path | str | RegistryModel | None = None,
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
    started_at = timestamp_now()
    if model is None and report_config.input_scale not in (AUTO, "unit"):
        raise ConfigError(
            f"--input-scale {report_config.input_scale} is for a model octreport did not train (--model); a model "
            "trained in this run is fed 0-1 (unit) and keeps that in its sidecar. Leave --input-scale out, or give --model."
        )
    if model is None and (report_config.class_names or report_config.class_map or report_config.unlabelled):
        raise ConfigError("--class-names, --class-map and --unlabelled are for evaluating a model (--model); a model "
                          "trained in this run learns the data's class folders, and needs every one of them.")
    if model is None and report_config.dicom_frames == FRAMES_ALL:
        raise ConfigError("--dicom-frames all is for evaluating a model (--model): training reads one B-scan per file "
                          "(a DICOM volume's central frame), so that every scan weighs alike and a volume's near-identical "
                          "frames do not fill a split. Leave it out to train, then report the model with it.")
    if model is not None and (report_config.unlabelled or (data_dir is not None and looks_unlabelled(data_dir))):
        return _screen(data_dir, model, train_config, report_config, gate_config, command_line, started_at)
    data = prepare(data_dir, train_config, training=model is None, split=report_config.split)
    report_config = replace(report_config, split=data.evaluated_split)  # recorded as resolved, for verify
    runs_root = Path(report_config.out_root)
    with distributed(train_config.distribute) as strategy:
        with output_root(strategy, runs_root) as out_root:
            outcome = _run(data, model, train_config, replace(report_config, out_root=str(out_root)), gate_config,
                           command_line, runs_root, started_at, card or ModelCard())
    return replace(outcome, published=is_chief(strategy))


def _screen(data_dir, model, train_config: TrainConfig, config: ReportConfig, gate_config: GateConfig,
            command_line: str, started_at: str) -> RunOutcome:
    """Unlabelled scans: a screening run (:mod:`octreport.pipeline.screening_run`), no accuracy."""
    if config.class_map:
        raise ConfigError("--class-map names class folders, but unlabelled scans are read without them; leave it out.")
    if config.compare_to:
        raise ConfigError("--compare-to compares the accuracy, recall and gates of two labelled runs, but unlabelled "
                          "scans give none of them (a screening run claims no accuracy); leave it out.")
    if config.groups_file:
        raise ConfigError("--groups gives the performance of each group, but unlabelled scans have no performance "
                          "to give (a per-group share of predicted classes would mix the groups' case mix with the "
                          "model's behaviour); leave it out, or grade the scans into class folders.")
    screened = run_screening(data_dir=data_dir, model=model, train_config=train_config, config=config,
                             gate_config=gate_config, command_line=command_line, started_at=started_at)
    html, pdf, metrics, manifest = screened.published_paths
    return RunOutcome(run_dir=screened.run_dir, html_path=html, pdf_path=pdf, metrics_path=metrics,
                      manifest_path=manifest, accuracy=None, failed_gates=screened.failed_gates,
                      timings=screened.timings)


def _run(
    data: PreparedData, model: keras.Model | Path | str | RegistryModel | None, train_config: TrainConfig, config: ReportConfig,
    gate_config: GateConfig, command_line: str, runs_root: Path, started_at: str, card: ModelCard,
) -> RunOutcome:
    """:func:`run_report` inside the distribution scope; ``runs_root`` is where earlier runs are
    looked up (``config.out_root`` differs from it on non-chief workers)."""
    # Everything a user can get wrong, refused before the run folder exists.
    folders = data  # the data as its folders label it: what the fingerprint (and verify) and the data audit read
    given = None if model is None else given_model(model, data.class_names, config.input_scale, config.class_names)
    data = data if given is None else with_frames(model_classes(data, given.class_names, config), config.dicom_frames)
    check_layer_names(given, train_config, len(data.class_names), config.layer_names)
    check_gate_classes(gate_config, data.class_names)
    check_referral_override(config.referral_threshold, data.class_names)
    requested = requested_images(config, data)
    baseline = load_run(config.compare_to, runs_root) if config.compare_to else None
    if config.templates_dir:
        check_templates(Path(config.templates_dir))
    config = with_dicom_salt(config, data.test)
    listed_patients = read_patients_file(config.patients_file) if config.patients_file else None
    listed_groups = read_groups_file(config.groups_file, data.root) if config.groups_file else None
    headers = DicomHeaderReads(data.root, config.dicom_salt)  # DICOM header facts, from each file's one read
    prepare_output_folder(Path(config.out_root))
    if config.cache and config.cache_dir:
        prepare_output_folder(Path(config.cache_dir), "--cache-dir")

    timings: dict[str, float] = {}
    with run_folder(Path(config.out_root)) as folder:
        # Each image's facts come from the one read a run makes of it: training's for the images it
        # trains on, the evaluation pass's for the evaluated ones; a given model's data folder may
        # still have training images, which only the facts pass reads.
        if given is None:
            with stage(timings, "train", log):
                given, facts = train_given_model(data, train_config, folder.work / "model.keras", headers)
        else:
            with stage(timings, "image facts", log):
                facts = image_facts(data, ("train", "val"), headers)
        inside = look_inside(data, given, config, requested, timings, headers=headers)
        dicom = headers.tables()  # every file read by now: train and val above, the evaluated ones inside
        patients = listed_patients or dicom.patients or NAMES
        groups = listed_groups or dicom.devices
        facts = facts.merged(inside.evaluated_facts)
        with stage(timings, "data shift", log):
            shift, by_group = acquisition_shift(data, inside.predictions, facts, given.metadata,
                                                given.preprocessing.aspect, groups, config.ci_level, dicom.devices,
                                                None if inside.referral is None else inside.referral.threshold)
        skipped = data.skipped + inside.predictions.skipped
        fingerprint = fingerprint_prepared_data(folders, skipped, digests=facts.digests)
        with stage(timings, "data audit", log):
            audit = audit_prepared_data(folders, fingerprint, patients, config.near_duplicate_bits, facts, dicom.devices)
        results = RunResults(
            data=data, model=given.model, model_source=given.source, model_path=given.path, metadata=given.metadata,
            preprocessing=given.preprocessing, predictions=inside.predictions, metrics=inside.metrics,
            referral=inside.referral, referral_rule=inside.rule, argmax_referral=inside.argmax_referral,
            statistics=inside.statistics, layers=inside.layers,
            layer_selection=inside.selection, layer_health=inside.health, confusion_cells=inside.confusion_cells,
            visuals=inside.visuals, train_config=train_config if given.trained_in_run else None, report_config=config,
            command_line=command_line, started_at=started_at, data_audit=audit, input_scale=given.input_scale,
            model_registry=given.registry,
            prediction_spread=inside.spread, heatmap_checks=inside.heatmap_checks, data_shift=shift,
            group_metrics=by_group, error_gallery=inside.error_gallery,
            data_warnings=data_warnings(data, skipped, not given.trained_in_run,
                                        [(g.grouping, g.not_listed) for g in by_group]),
            model_warnings=input_warnings(given.input_scale, inside.spread),
        )
        document = build_run_document(
            results, card=card, gate_config=gate_config, train_config=train_config, fingerprint=fingerprint,
            timings=timings, baseline=baseline, model_files=given.files(),
            recorded_model_file=folder.published(given.path) if given.trained_in_run else None,
        )
        files = publish_run(document, folder.work, config, timings)

    return RunOutcome(
        run_dir=folder.final,
        html_path=folder.published(files.html_path) if files.html_path else None,
        pdf_path=folder.published(files.pdf_path) if files.pdf_path else None,
        metrics_path=folder.published(files.metrics_path),
        manifest_path=folder.published(files.manifest_path),
        accuracy=results.metrics.accuracy,
        failed_gates=document.failed_gates,
        timings=dict(timings),
    )
