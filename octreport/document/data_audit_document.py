"""The document of ``octreport audit-data``: the data audit of a folder, judged once by the data
gates, with the metrics.json and manifest.json it is published as."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from octreport.audit.gates import GateConfig, GateResult, data_gates, failed_gate_messages, gates_entry
from octreport.audit.manifest import build_manifest, outcome_for
from octreport.config import ReportConfig
from octreport.data.data_audit import DataAudit
from octreport.data.dataset import PreparedData
from octreport.data.fingerprint import DatasetFingerprint
from octreport.provenance import timestamp_now

DATA_AUDIT_SCHEMA = 2  # 2: near-duplicate clusters (biggest first, bounded) instead of every pair; DICOM devices


@dataclass(frozen=True, eq=False)
class DataAuditDocument:
    """``metrics`` and ``manifest`` as far as the computation knows them (the publisher adds the
    hashes of the files it writes, in a copy)."""

    audit: DataAudit
    data: PreparedData
    started_at: str
    gates: tuple[GateResult, ...]
    metrics: Mapping[str, Any]
    manifest: Mapping[str, Any]

    @property
    def failed_gates(self) -> tuple[str, ...]:
        return failed_gate_messages(self.gates)


def build_data_audit_document(audit: DataAudit, data: PreparedData, fingerprint: DatasetFingerprint, *,
                              started_at: str, report_config: ReportConfig, gate_config: GateConfig,
                              command_line: str) -> DataAuditDocument:
    core = {
        "schema_version": DATA_AUDIT_SCHEMA, "kind": "data-audit", "started_at": started_at,
        "data": {"root": str(data.root), "layout": data.layout, "class_names": list(data.class_names),
                 "split_note": data.split_note, "counts": data.counts(),
                 "skipped_files": [s.to_dict() for s in data.skipped]},
        "data_audit": audit.to_dict(),
    }
    gates = tuple(data_gates(core, gate_config))
    metrics = {**core, "gates": gates_entry(gates)}
    manifest = build_manifest(
        model=None, class_names=data.class_names, preprocessing=None, data=fingerprint, train_config=None,
        report_config=report_config.to_dict(), command_line=command_line, started_at=started_at,
        finished_at=timestamp_now(), outcome=outcome_for(gates), gates=gates, gate_config=gate_config,
    )
    return DataAuditDocument(audit, data, started_at, gates, metrics, manifest)
