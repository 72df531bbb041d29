"""A screening run, top to bottom: unlabelled scans through a given model, no accuracy claimed.

refuse what is wrong (before a run folder exists) -> the scans (every image under the folder)
-> the model, its classes and its referral rule -> one streaming pass that reads each file once
(its hash, its image facts and the model's prediction from the same bytes, as
:func:`octreport.evaluation.predict.evaluate_files` gives them to a labelled run) -> what the model
would do (predicted classes, confidence, referral under the model's rule and under argmax,
deferrals) -> data shift against the training
profile -> feature maps and Grad-CAM of a sample -> data audit -> the document (shift and data
gates, metrics.json, predictions.csv, manifest) -> the publisher -> run folder.

``octreport report`` runs it for a folder of images without class folders, or with
``--unlabelled``; :func:`octreport.pipeline.run.run_report` hands over to it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import keras

from octreport.audit.gates import GateConfig
from octreport.config import ReportConfig, TrainConfig
from octreport.data.data_audit import audit_prepared_data
from octreport.data.dataset import prepare_unlabelled
from octreport.data.dicom_frames import with_frames
from octreport.data.dicom_headers import DicomHeaderReads
from octreport.data.fingerprint import fingerprint_prepared_data
from octreport.data.image_choice import UNKNOWN_LABEL, choose_images
from octreport.data.image_facts import SplitFacts, split_keys
from octreport.data.layout import ImageItem
from octreport.data.patients import NAMES, read_patients_file
from octreport.document.screening_document import ScreeningResults, build_screening_document
from octreport.engine.layer_selection import choose_drawn_layers
from octreport.engine.layers import discover_conv_layers
from octreport.engine.visuals import compute_visuals
from octreport.evaluation.predict import Predictions, evaluate_files
from octreport.evaluation.referral_rule import applied_rule, check_referral_override
from octreport.evaluation.screening import screen_predictions
from octreport.pipeline.data_stages import evaluated_shift, requested_images, with_dicom_salt
from octreport.pipeline.model_stage import GivenModel, given_model
from octreport.pipeline.publish import PublishedFiles, publish_screening
from octreport.progress import stage
from octreport.report.preview import check_templates
from octreport.runfolder import prepare_output_folder, run_folder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScreeningOutcome:
    run_dir: Path
    files: PublishedFiles
    published_paths: tuple[Path | None, Path | None, Path, Path]
    """html, pdf, metrics.json and manifest.json where the published run folder keeps them."""
    failed_gates: tuple[str, ...]
    timings: dict[str, float]


def run_screening(*, data_dir: Path | str, model: keras.Model | Path | str, train_config: TrainConfig,
                  config: ReportConfig, gate_config: GateConfig, command_line: str, started_at: str) -> ScreeningOutcome:
    """Screen the scans under ``data_dir`` with ``model``; see the module docstring."""
    folders = prepare_unlabelled(data_dir, train_config.follow_symlinks)  # per file: the fingerprint and data audit
    data = with_frames(folders, config.dicom_frames)
    log.info("data: %s; %s (%d scans)", data.root, data.split_note, len(data.test))
    given = given_model(model, (), config.input_scale, config.class_names)
    check_referral_override(config.referral_threshold, given.class_names)
    rule = applied_rule(given.metadata.referral_rule if given.metadata else None, config.referral_threshold,
                        given.class_names)
    requested = requested_images(config, data)  # --image, --sentinels: shown instead of the seed's sample
    layers = discover_conv_layers(given.model)
    selection = choose_drawn_layers(layers, config.layer_names)
    if config.templates_dir:
        check_templates(Path(config.templates_dir))
    config = with_dicom_salt(config, data.test)
    listed = read_patients_file(config.patients_file) if config.patients_file else None
    headers = DicomHeaderReads(data.root, config.dicom_salt)  # a DICOM file's facts, from the bytes of its one read
    prepare_output_folder(Path(config.out_root))
    timings: dict[str, float] = {}
    with run_folder(Path(config.out_root)) as folder:
        with stage(timings, "predict", log):  # each file read once: its hash, facts and prediction
            read = evaluate_files(given.model, layers, data.test, given.preprocessing, config.batch_size,
                                  on_read=headers)
            dicom = headers.tables()
            patients = listed or dicom.patients or NAMES
            predictions = read.predictions
            facts = SplitFacts(split_keys(data.root, {"test": data.test}), read.facts, read.digests)
            screening = screen_predictions(predictions.probabilities, given.class_names, rule)
        with stage(timings, "data shift", log):
            shift, _ = evaluated_shift(data, predictions, facts, given.metadata, given.preprocessing.aspect, dicom.devices)
        with stage(timings, "visualize", log):
            visuals = compute_visuals(
                given.model, selection.drawn, requested or _sample(predictions, given, config), given.preprocessing,
                config.maps_per_layer, config.channel_selection, config.filters_per_layer, config.filter_reduction,
                config.batch_size, None, given.class_names,
            )
        skipped = data.skipped + predictions.skipped
        fingerprint = fingerprint_prepared_data(folders, skipped, digests=facts.digests)
        with stage(timings, "data audit", log):
            audit = audit_prepared_data(folders, fingerprint, patients, config.near_duplicate_bits, facts, dicom.devices)
        results = ScreeningResults(
            data=data, model=given.model, model_source=given.source, model_path=given.path,
            model_registry=given.registry, class_names=given.class_names, preprocessing=given.preprocessing,
            predictions=predictions,
            screening=screening, shift=shift, audit=audit, visuals=visuals, report_config=config,
            command_line=command_line, started_at=started_at,
        )
        document = build_screening_document(results, fingerprint, gate_config=gate_config, train_config=train_config)
        files = publish_screening(document, folder.work, config)
    published = (folder.published(files.html_path) if files.html_path else None,
                 folder.published(files.pdf_path) if files.pdf_path else None,
                 folder.published(files.metrics_path), folder.published(files.manifest_path))
    return ScreeningOutcome(folder.final, files, published, document.failed_gates, timings)


def _sample(predictions: Predictions, given: GivenModel, config: ReportConfig) -> tuple[ImageItem, ...]:
    """``images_per_class`` scans of each predicted class, drawn with the seed, shown without a
    true class (the scans have none)."""
    by_predicted = [replace(item, label=int(p)) for item, p in zip(predictions.items, predictions.predicted)]
    chosen = choose_images(by_predicted, len(given.class_names), max(1, config.images_per_class), config.seed)
    return tuple(replace(item, label=UNKNOWN_LABEL) for item in chosen)
