"""Turn a run's results into files: report.html, report.pdf and metrics.json, each written whole."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from octreport.config import ReportConfig
from octreport.report.assets import FigureStore, write_text_atomic
from octreport.report.build import build_report_context
from octreport.report.metrics_json import metrics_document
from octreport.report.pdf import render_pdf
from octreport.report.render import render_html
from octreport.results import RunResults

log = logging.getLogger(__name__)

HTML_NAME = "report.html"
PDF_NAME = "report.pdf"
METRICS_NAME = "metrics.json"


@dataclass(frozen=True)
class WrittenReport:
    html: Path | None
    pdf: Path | None
    metrics: Path


def write_report(results: RunResults, out_dir: Path, config: ReportConfig, timings: dict[str, float]) -> WrittenReport:
    """Draw the figures, render the HTML and PDF, and write metrics.json into ``out_dir``."""
    started = time.perf_counter()
    store = FigureStore(config.html_mode, out_dir)
    context = build_report_context(results, store, config.image_format)
    timings["figures"] = time.perf_counter() - started
    log.info("drew %s in %.1f s", store.describe(), timings["figures"])

    started = time.perf_counter()
    template_dir = Path(config.templates_dir) if config.templates_dir else None
    html = render_html(context, template_dir)
    html_path = None
    if "html" in config.formats:
        html_path = out_dir / HTML_NAME
        write_text_atomic(html_path, html)
    timings["html"] = time.perf_counter() - started

    pdf_path = None
    if "pdf" in config.formats:
        started = time.perf_counter()
        log.info("rendering the PDF")
        info = render_pdf(html, out_dir / PDF_NAME, base_url=out_dir, metadata={"title": context.title})
        pdf_path = info.path
        timings["pdf"] = time.perf_counter() - started
        log.info("PDF: %d pages, %.1f MB in %.1f s", info.pages, info.bytes / 1e6, timings["pdf"])

    metrics_path = out_dir / METRICS_NAME
    write_text_atomic(metrics_path, json.dumps(metrics_document(results), indent=2))
    return WrittenReport(html_path, pdf_path, metrics_path)
