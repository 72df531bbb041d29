"""``octreport audit-data``, top to bottom: the data audit alone, before any model exists.

data -> fingerprint (SHA-256 of every file) -> image facts (one DCT-scaled decode) -> data audit
     -> data gates -> Data section -> HTML -> metrics.json, manifest.json -> PDF -> run folder

Useful before training, and in cron before retraining: the same checks as the Data section of a
full run, in the same kind of run folder, with the same exit codes (5 when a gate fails).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from octreport.audit.fingerprint import fingerprint_prepared_data
from octreport.audit.gates import GateConfig, data_gates, gates_passed
from octreport.audit.manifest import build_manifest, hash_artifacts, outcome_for, write_manifest
from octreport.config import ReportConfig, TrainConfig
from octreport.data.data_audit import AuditedImage, DataAudit, audit_data
from octreport.data.dataset import SPLIT_ALL, PreparedData, prepare_data
from octreport.data.image_facts import SplitFacts, collect_image_facts
from octreport.data.layout import split_folders_of
from octreport.data.patients import NAMES, PatientTable, read_patients_file
from octreport.errors import DataError
from octreport.report.assets import FigureStore, write_text_atomic
from octreport.report.data_report import DATA_AUDIT_TEMPLATE, build_data_audit_report
from octreport.report.render import render_html
from octreport.report.write import HTML_NAME, RenderedReport, write_metrics, write_pdf
from octreport.runfolder import prepare_output_folder, run_folder

log = logging.getLogger(__name__)

DATA_AUDIT_SCHEMA = 1
DEFAULT_OUT = "octreport-data-audits"
"""Its own runs folder: a data audit is not a model run, and ``compare``/``history`` read model runs."""


@dataclass(frozen=True)
class DataAuditOutcome:
    run_dir: Path
    html_path: Path | None
    pdf_path: Path | None
    metrics_path: Path
    audit: DataAudit
    failed_gates: tuple[str, ...]


def audit_prepared_data(data: PreparedData, fingerprint, patients: PatientTable = NAMES,
                        near_duplicate_bits: int = 4, collected: SplitFacts | None = None) -> DataAudit:
    """The data audit of a run: the fingerprint's SHA-256 of every file (no second hashing) and
    the facts of one DCT-scaled decode of every image (:mod:`octreport.data.image_facts`):
    ``collected`` when the run has them already (a model run collects them before training),
    else collected here."""
    images = [AuditedImage(r.path, r.split, r.class_name, r.sha256) for r in fingerprint.files]
    facts = (collect_image_facts([data.root / r.path for r in fingerprint.files]) if collected is None
             else collected.lookup([(r.split, r.path) for r in fingerprint.files]))
    audit = audit_data(images, data.class_names, facts, patients, near_duplicate_bits)
    for line in audit.findings():
        log.warning("data audit: %s", line)
    return audit


def run_data_audit(*, data_dir: Path | str, train_config: TrainConfig = TrainConfig(),
                   report_config: ReportConfig = ReportConfig(out_root=DEFAULT_OUT),
                   gate_config: GateConfig = GateConfig(), command_line: str = "", started_at: str = "") -> DataAuditOutcome:
    """Audit ``data_dir`` (split as a run would split it) and write a run folder under
    ``report_config.out_root``. Bad folders and patients files are refused before it is made."""
    started_at = started_at or _now()
    data = _prepare_for_audit(data_dir, train_config)
    patients = read_patients_file(report_config.patients_file) if report_config.patients_file else NAMES
    prepare_output_folder(Path(report_config.out_root))
    with run_folder(Path(report_config.out_root)) as folder:
        fingerprint = fingerprint_prepared_data(data)
        audit = audit_prepared_data(data, fingerprint, patients, report_config.near_duplicate_bits)
        document = {
            "schema_version": DATA_AUDIT_SCHEMA, "kind": "data-audit", "started_at": started_at,
            "data": {"root": str(data.root), "layout": data.layout, "class_names": list(data.class_names),
                     "split_note": data.split_note, "counts": data.counts(),
                     "skipped_files": [s.to_dict() for s in data.skipped]},
            "data_audit": audit.to_dict(),
        }
        gates = tuple(data_gates(document, gate_config))
        document["gates"] = {"passed": gates_passed(gates), "results": [g.to_dict() for g in gates]}
        store = FigureStore(report_config.html_mode, folder.work)
        context = build_data_audit_report(audit, data, store, started_at, gates, report_config.image_format)
        templates = Path(report_config.templates_dir) if report_config.templates_dir else None
        html = render_html(context, templates, entry=DATA_AUDIT_TEMPLATE)
        html_path = None
        if "html" in report_config.formats:
            html_path = folder.work / HTML_NAME
            write_text_atomic(html_path, html)
        metrics_path = write_metrics(document, folder.work)
        manifest = build_manifest(
            model=None, class_names=data.class_names, preprocessing=None, data=fingerprint, train_config=None,
            report_config=report_config.to_dict(), command_line=command_line, started_at=started_at,
            finished_at=_now(), outcome=outcome_for(gates), gates=gates, gate_config=gate_config,
            artifacts=hash_artifacts([p for p in (html_path, metrics_path) if p is not None]),
        )
        manifest_path = write_manifest(folder.work / "manifest.json", manifest)
        pdf_path = None
        if "pdf" in report_config.formats:
            pdf_path = write_pdf(RenderedReport(html, context.title, html_path), folder.work, [metrics_path, manifest_path],
                                 report_config, {})
    return DataAuditOutcome(
        run_dir=folder.final,
        html_path=folder.published(html_path) if html_path else None,
        pdf_path=folder.published(pdf_path) if pdf_path else None,
        metrics_path=folder.published(metrics_path),
        audit=audit,
        failed_gates=tuple(g.message for g in gates if not g.passed),
    )


def _prepare_for_audit(data_dir: Path | str, config: TrainConfig) -> PreparedData:
    """The folder split as a training run would split it; a Kermany layout without ``train/`` (an
    external set to evaluate a model on: ``test/`` alone, say) is audited as one set instead."""
    try:
        return prepare_data(data_dir, config.seed, config.val_fraction, config.test_fraction, config.follow_symlinks)
    except DataError:
        splits = split_folders_of(data_dir)
        if not splits or "train" in splits:
            raise
    log.info("%s has no train/: audited as one set of images to evaluate", data_dir)
    data = prepare_data(data_dir, config.seed, config.val_fraction, config.test_fraction, config.follow_symlinks,
                        training=False, split=SPLIT_ALL)
    note = f"{', '.join(f'{name}/' for name in sorted(splits))} without train/ (a set to evaluate a model on): audited as one set"
    return replace(data, split_note=note)


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
