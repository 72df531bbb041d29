"""Turn a run's results into files: report.html, metrics.json and report.pdf, each written whole.

The PDF comes last because it carries metrics.json and manifest.json as attachments.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from octreport.audit.compare import RunComparison
from octreport.audit.gates import GateResult
from octreport.audit.model_card import ModelCard
from octreport.config import ReportConfig
from octreport.evaluation.predictions_file import PREDICTIONS_NAME, RunPredictions, predictions_csv
from octreport.report.assets import FigureStore, write_text_atomic
from octreport.report.build import build_report_context
from octreport.report.pdf import render_pdf
from octreport.report.render import render_html, template_folders
from octreport.results import RunResults

log = logging.getLogger(__name__)

HTML_NAME = "report.html"
PDF_NAME = "report.pdf"
METRICS_NAME = "metrics.json"


@dataclass(frozen=True)
class RenderedReport:
    html: str
    title: str
    html_path: Path | None


def write_html(
    results: RunResults,
    gates: Sequence[GateResult],
    out_dir: Path,
    config: ReportConfig,
    timings: dict[str, float],
    comparison: RunComparison | None = None,
    card: ModelCard | None = None,
) -> RenderedReport:
    """Draw the figures, render the HTML, and write report.html when HTML is one of the formats."""
    started = time.perf_counter()
    store = FigureStore(config.html_mode, out_dir)
    context = build_report_context(results, store, config.image_format, gates, comparison, card)
    timings["figures"] = time.perf_counter() - started
    log.info("drew %s in %.1f s", store.describe(), timings["figures"])

    started = time.perf_counter()
    html = render_html(context, Path(config.templates_dir) if config.templates_dir else None)
    html_path = None
    if "html" in config.formats:
        html_path = out_dir / HTML_NAME
        write_text_atomic(html_path, html)
    timings["html"] = time.perf_counter() - started
    return RenderedReport(html, context.title, html_path)


def write_metrics(document: dict, out_dir: Path) -> Path:
    path = out_dir / METRICS_NAME
    write_text_atomic(path, json.dumps(document, indent=2))
    return path


def write_predictions(record: RunPredictions, out_dir: Path) -> Path:
    """predictions.csv: every evaluated image's probabilities (see :mod:`octreport.evaluation.predictions_file`)."""
    path = out_dir / PREDICTIONS_NAME
    write_text_atomic(path, predictions_csv(record))
    return path


def write_pdf(
    rendered: RenderedReport, out_dir: Path, attachments: Sequence[Path], config: ReportConfig, timings: dict[str, float]
) -> Path:
    started = time.perf_counter()
    log.info("rendering the PDF")
    info = render_pdf(
        rendered.html, out_dir / PDF_NAME, base_url=out_dir, metadata={"title": rendered.title},
        attachments=attachments, pdf_variant=config.pdf_variant, readable_folders=template_folders(config.templates_dir),
    )
    timings["pdf"] = time.perf_counter() - started
    return info.path
