"""The short report of ``octreport audit-data``: the data audit alone, no model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from octreport._version import __version__
from octreport.audit.gates import GateResult
from octreport.document.data_audit_document import DataAuditDocument
from octreport.report.assets import FigureStore
from octreport.report.data_views import DataSection
from octreport.report.views import KeyValue
from octreport.report.data_section import data_section
from octreport.report.layout import SinglePage
from octreport.report.sections import TocEntry, section_entries

DATA_AUDIT_TEMPLATE = "data_audit.html"


@dataclass(frozen=True)
class DataAuditReport(SinglePage):
    """What ``templates/data_audit.html`` receives (as ``report``)."""

    data: DataSection
    gates: tuple[GateResult, ...] = ()
    sections: Mapping[str, TocEntry] = field(default_factory=section_entries)


def build_data_audit_report(document: DataAuditDocument, store: FigureStore, image_format: str = "jpeg") -> DataAuditReport:
    audit, data, gates = document.audit, document.data, document.gates
    worst = audit.worst_finding()
    return DataAuditReport(
        title=f"Data audit: {data.root.name}",
        subtitle=f"{len(data.class_names)} classes ({', '.join(data.class_names)}), data from {data.root}",
        generated_at=document.started_at,
        octreport_version=__version__,
        data_description=(KeyValue("Folder", str(data.root)), KeyValue("Splits", data.split_note),
                          KeyValue("Skipped files", str(len(data.skipped)))),
        headline=worst or "The data audit found no leaked patient, duplicate, label conflict or shortcut.",
        data=data_section(audit, data.root, data.class_names, store, image_format),
        gates=gates,
    )
