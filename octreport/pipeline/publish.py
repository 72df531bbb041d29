"""The one publisher: every report file octreport writes, from a finished document.

A run folder (``run``, ``report``, a screening ``report``, ``audit-data``) gets report.html, metrics.json, the run's CSV
files, manifest.json (with the hashes of the files written before it) and report.pdf (last: it
carries metrics.json and manifest.json as attachments), each written whole
(:func:`octreport.runfolder.atomic_path`). A page outside a run folder (``compare``, ``history``)
gets its HTML and PDF through :func:`publish_page`. Nothing here computes a number: it draws the
figures the report context asks for, renders and writes. (A model trained in a run is saved into
the run folder by :mod:`octreport.models.io` as soon as it is trained, with its sidecar.)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from octreport.audit.manifest import MANIFEST_NAME, hash_artifacts, write_manifest
from octreport.progress import stage
from octreport.report.pdf import render_pdf
from octreport.report.render import render_html, template_folders
from octreport.runfolder import write_text_atomic

if TYPE_CHECKING:
    from octreport.config import ReportConfig
    from octreport.document.data_audit_document import DataAuditDocument
    from octreport.document.run_document import RunDocument
    from octreport.document.screening_document import ScreeningDocument

log = logging.getLogger(__name__)

HTML_NAME = "report.html"
PDF_NAME = "report.pdf"
METRICS_NAME = "metrics.json"


@dataclass(frozen=True)
class PublishedFiles:
    """Where the publisher wrote each file (None: that format was not asked for)."""

    html_path: Path | None
    pdf_path: Path | None
    metrics_path: Path
    manifest_path: Path


def publish_run(document: RunDocument, folder: Path, config: ReportConfig, timings: dict[str, float]) -> PublishedFiles:
    """Write a model run's files into ``folder``; ``timings`` gains figures, html and pdf."""
    # Imported here: the report's context reaches TensorFlow, which compare and history never need.
    from octreport.document.run_document import published_metrics
    from octreport.evaluation.predictions_file import PREDICTIONS_NAME, predictions_csv
    from octreport.report.assets import FigureStore
    from octreport.report.build import build_report_context

    store = FigureStore(config.html_mode, folder)
    with stage(timings, "figures"):
        context = build_report_context(document, store, config.image_format)
    log.info("drew %s in %.1f s", store.describe(), timings["figures"])
    with stage(timings, "html"):
        html = render_html(context, _templates(config))
        html_path = _write_html(html, folder, config)
    metrics = published_metrics(document, {name: timings[name] for name in ("figures", "html")})
    extra = {PREDICTIONS_NAME: predictions_csv(document.predictions)}
    return _write_run_files(html, context.title, html_path, folder, metrics, document.manifest, extra, config, timings)


def publish_data_audit(document: DataAuditDocument, folder: Path, config: ReportConfig) -> PublishedFiles:
    """Write a data audit's files into ``folder``."""
    from octreport.report.assets import FigureStore
    from octreport.report.data_report import DATA_AUDIT_TEMPLATE, build_data_audit_report

    store = FigureStore(config.html_mode, folder)
    context = build_data_audit_report(document, store, config.image_format)
    html = render_html(context, _templates(config), entry=DATA_AUDIT_TEMPLATE)
    html_path = _write_html(html, folder, config)
    return _write_run_files(html, context.title, html_path, folder, document.metrics, document.manifest, {}, config, {})


def publish_screening(document: ScreeningDocument, folder: Path, config: ReportConfig) -> PublishedFiles:
    """Write a screening run's files into ``folder``: its page, metrics.json, predictions.csv
    (no true class), manifest.json and the PDF."""
    from octreport.evaluation.predictions_file import PREDICTIONS_NAME, predictions_csv
    from octreport.report.assets import FigureStore
    from octreport.report.screening_report import SCREENING_TEMPLATE, build_screening_report

    store = FigureStore(config.html_mode, folder)
    context = build_screening_report(document, store, config.image_format)
    html = render_html(context, _templates(config), entry=SCREENING_TEMPLATE)
    html_path = _write_html(html, folder, config)
    extra = {PREDICTIONS_NAME: predictions_csv(document.predictions)}
    return _write_run_files(html, context.title, html_path, folder, document.metrics, document.manifest, extra, config, {})


def publish_page(html: str, html_path: Path | None, pdf_path: Path | None, *, base_url: Path | None,
                 title: str | None = None) -> list[Path]:
    """A page that is not a run (a comparison, a history) as HTML and/or PDF; the paths written."""
    written = []
    if html_path:
        write_text_atomic(html_path, html)
        written.append(html_path)
    if pdf_path:
        render_pdf(html, pdf_path, base_url=base_url, metadata=None if title is None else {"title": title})
        written.append(pdf_path)
    return written


def _templates(config: ReportConfig) -> Path | None:
    return Path(config.templates_dir) if config.templates_dir else None


def _write_html(html: str, folder: Path, config: ReportConfig) -> Path | None:
    if "html" not in config.formats:
        return None
    path = folder / HTML_NAME
    write_text_atomic(path, html)
    return path


def _write_run_files(html: str, title: str, html_path: Path | None, folder: Path, metrics: Mapping[str, Any],
                     manifest: Mapping[str, Any], extra: Mapping[str, str], config: ReportConfig,
                     timings: dict[str, float]) -> PublishedFiles:
    """metrics.json, the extra text files, manifest.json (hashing what was written before it), then the PDF."""
    metrics_path = folder / METRICS_NAME
    write_text_atomic(metrics_path, json.dumps(metrics, indent=2))
    extra_paths = []
    for name, text in extra.items():
        write_text_atomic(folder / name, text)
        extra_paths.append(folder / name)
    # The PDF is rendered after the manifest (it carries it), so only files made before it are hashed.
    hashes = hash_artifacts([p for p in (html_path, metrics_path, *extra_paths) if p is not None])
    final_manifest = {**manifest, "artifacts": {**manifest["artifacts"], **hashes}}
    manifest_path = write_manifest(folder / MANIFEST_NAME, final_manifest)
    pdf_path = None
    if "pdf" in config.formats:
        log.info("rendering the PDF")
        with stage(timings, "pdf"):
            pdf_path = render_pdf(
                html, folder / PDF_NAME, base_url=folder, metadata={"title": title},
                attachments=[metrics_path, manifest_path], pdf_variant=config.pdf_variant,
                readable_folders=template_folders(config.templates_dir),
            ).path
    return PublishedFiles(html_path, pdf_path, metrics_path, manifest_path)
