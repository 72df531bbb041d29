"""``octreport audit-data``, top to bottom: the data audit alone, before any model exists.

data -> fingerprint (SHA-256 of every file) -> image facts (one DCT-scaled decode) -> data audit
     -> the document (data gates, metrics.json, manifest.json) -> the publisher (HTML, files, PDF) -> run folder

Useful before training, and in cron before retraining: the same checks as the Data section of a
full run, in the same kind of run folder, with the same exit codes (5 when a gate fails).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from octreport.audit.gates import GateConfig
from octreport.config import ReportConfig, TrainConfig
from octreport.data.data_audit import DataAudit, audit_prepared_data
from octreport.data.dataset import SPLIT_ALL, PreparedData, prepare_data
from octreport.data.dicom_headers import DicomHeaderReads
from octreport.data.fingerprint import fingerprint_prepared_data
from octreport.data.layout import split_folders_of
from octreport.data.patients import NAMES, read_patients_file
from octreport.document.data_audit_document import build_data_audit_document
from octreport.errors import DataError
from octreport.pipeline.data_stages import image_facts, with_dicom_salt
from octreport.pipeline.publish import publish_data_audit
from octreport.provenance import timestamp_now
from octreport.runfolder import prepare_output_folder, run_folder

log = logging.getLogger(__name__)

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


def run_data_audit(*, data_dir: Path | str, train_config: TrainConfig = TrainConfig(),
                   report_config: ReportConfig = ReportConfig(out_root=DEFAULT_OUT),
                   gate_config: GateConfig = GateConfig(), command_line: str = "", started_at: str = "") -> DataAuditOutcome:
    """Audit ``data_dir`` (split as a run would split it) and write a run folder under
    ``report_config.out_root``. Bad folders and patients files are refused before it is made."""
    started_at = started_at or timestamp_now()
    data = _prepare_for_audit(data_dir, train_config)
    files = data.train + data.val + data.test
    report_config = with_dicom_salt(report_config, files)
    listed = read_patients_file(report_config.patients_file) if report_config.patients_file else None
    headers = DicomHeaderReads(data.root, report_config.dicom_salt)  # PatientID (salted hash) and device
    prepare_output_folder(Path(report_config.out_root))
    with run_folder(Path(report_config.out_root)) as folder:
        facts = image_facts(data, on_read=headers)  # one read of each file: its facts, hash and DICOM header facts
        dicom = headers.tables()
        patients = listed or dicom.patients or NAMES
        fingerprint = fingerprint_prepared_data(data, digests=facts.digests)
        audit = audit_prepared_data(data, fingerprint, patients, report_config.near_duplicate_bits, facts, dicom.devices)
        document = build_data_audit_document(audit, data, fingerprint, started_at=started_at, report_config=report_config,
                                             gate_config=gate_config, command_line=command_line)
        files = publish_data_audit(document, folder.work, report_config)
    return DataAuditOutcome(
        run_dir=folder.final,
        html_path=folder.published(files.html_path) if files.html_path else None,
        pdf_path=folder.published(files.pdf_path) if files.pdf_path else None,
        metrics_path=folder.published(files.metrics_path),
        audit=audit,
        failed_gates=document.failed_gates,
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
