"""Showing the history of an output root: a text summary for the terminal and one HTML page
(``templates/history.html``) with the trend plots and the table, each run linking to its report.

Links are relative to the folder the page is written to, so the page, the PDF and the archive can
be moved together or served as static files. The one figure is drawn by
:mod:`octreport.drawing.trends` and embedded as a ``data:`` URI.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from octreport._version import __version__
from octreport.audit.history import (
    CONFIG,
    DATA,
    FAILED,
    HEADLINES,
    INCOMPLETE,
    MODEL,
    UNREADABLE,
    HistoryEntry,
    MetricPoint,
    ProblemRun,
    RunHistory,
    short_hash,
)
from octreport.provenance import timestamp_now
from octreport.report.layout import PageHead
from octreport.report.render import render_page
from octreport.report.views import FigureRef

HISTORY_TEMPLATE = "history.html"
TABLE_METRICS = ("accuracy", "urgent_sensitivity", "urgent_specificity", "weighted_error", "dead_filter_share")
TREND_METRICS = ("accuracy", "urgent_sensitivity", "urgent_specificity", "weighted_error")
FIGURE_DPI = 110
FIGURE_WIDTH_IN = 10.0  # the page is A4 landscape
_KINDS = {h.key: h.kind for h in HEADLINES}
_LABELS = {h.key: h.label for h in HEADLINES}


@dataclass(frozen=True)
class HistoryCell:
    """A metric in the table: ``kind`` is ``fraction`` (shown as %) or ``score``."""

    point: MetricPoint
    kind: str


@dataclass(frozen=True)
class HistoryRow:
    name: str
    date: str
    href: str | None
    model: str | None
    data: str | None
    cells: tuple[HistoryCell, ...]
    gates_passed: bool | None
    failed_gates: tuple[str, ...]
    changes: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def model_changed(self) -> bool:
        return MODEL in self.changes

    @property
    def data_changed(self) -> bool:
        return DATA in self.changes


@dataclass(frozen=True)
class ProblemRow:
    name: str
    kind: str
    reason: str
    href: str | None


@dataclass(frozen=True)
class HistoryPage:
    """The one object ``history.html`` receives (as ``page``)."""

    title: str
    root: str
    generated_at: str
    octreport_version: str
    summary: str
    headers: tuple[str, ...]
    rows: tuple[HistoryRow, ...]  # newest first
    figure: FigureRef | None
    stopped: tuple[ProblemRow, ...]  # failed and incomplete runs
    unreadable: tuple[ProblemRow, ...]

    @property
    def head(self) -> PageHead:
        return PageHead(f"{self.title}: {self.root}", self.generated_at, self.octreport_version)


# ---------- text ----------


def summary_line(history: RunHistory) -> str:
    entries, problems = history.entries, history.problems
    counts = {kind: sum(p.kind == kind for p in problems) for kind in (FAILED, INCOMPLETE, UNREADABLE)}
    return (
        f"{len(entries)} complete run(s), {len(history.failed_gate_runs)} with a failed gate; "
        f"{counts[FAILED]} failed, {counts[INCOMPLETE]} incomplete, {counts[UNREADABLE]} unreadable"
    )


def _date(entry: HistoryEntry) -> str:
    if entry.started_at:
        return entry.started_at[:16].replace("T", " ")
    name = entry.name
    return f"{name[:4]}-{name[4:6]}-{name[6:8]} {name[9:11]}:{name[11:13]}" if len(name) >= 13 else "unknown"


def _value_text(point: MetricPoint, kind: str) -> str:
    if point.value is None:
        return "-"
    return f"{100 * point.value:.1f}%" if kind == "fraction" else f"{point.value:.3f}"


def format_history_text(history: RunHistory) -> str:
    """One line per complete run (newest last) and the problem runs, for the terminal."""
    lines = [f"{history.root}: {summary_line(history)}"]
    for e in history.entries:
        gates = "passed" if e.gates_passed else ("FAILED " + "; ".join(e.failed_gates) if e.gates_passed is False else "-")
        values = "  ".join(f"{_LABELS[k].split(' (')[0]} {_value_text(e.metrics[k], _KINDS[k])}" for k in TABLE_METRICS[:4])
        changed = f"  [{', '.join(e.changes)} changed]" if e.changes else ""
        lines.append(f"  {e.name}  {_date(e)}  {values}  gates {gates}{changed}")
    for p in history.problems:
        lines.append(f"  {p.name}  {p.kind.upper()}: {p.reason}")
    return "\n".join(lines) + "\n"


# ---------- the page ----------


def _relative(history: RunHistory, links_from: Path, *parts: str) -> str:
    return Path(os.path.relpath(history.root.joinpath(*parts), links_from)).as_posix()


def _config_text(keys: Sequence[str], shown: int = 3) -> str:
    if not keys:
        return "configuration"
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return f"configuration ({', '.join(keys[:shown])}{more})"


def _row(history: RunHistory, entry: HistoryEntry, links_from: Path) -> HistoryRow:
    changes = tuple(_config_text(entry.config_changes) if c == CONFIG else c for c in entry.changes)
    return HistoryRow(
        name=entry.name,
        date=_date(entry),
        href=None if entry.report is None else _relative(history, links_from, entry.name, entry.report),
        model=short_hash(entry.model_id),
        data=short_hash(entry.data_sha256),
        cells=tuple(HistoryCell(entry.metrics[k], _KINDS[k]) for k in TABLE_METRICS),
        gates_passed=entry.gates_passed,
        failed_gates=entry.failed_gates,
        changes=changes,
        notes=entry.notes,
    )


def _problem(history: RunHistory, problem: ProblemRun, links_from: Path) -> ProblemRow:
    href = None if problem.log is None else _relative(history, links_from, problem.name, problem.log)
    return ProblemRow(problem.name, problem.kind, problem.reason, href)


def _array(entries: Sequence[HistoryEntry], key: str, part: str) -> np.ndarray:
    return np.array([np.nan if getattr(e.metrics[key], part) is None else getattr(e.metrics[key], part) for e in entries], float)


def trend_png(entries: Sequence[HistoryEntry]):
    """The trend figure of ``entries`` (oldest first) as PNG (an EncodedImage), or None when no run
    recorded any headline metric."""
    from octreport.drawing.export import encode_figure
    from octreport.drawing.trends import TrendMarks, TrendSeries, trend_figure

    keys = [k for k in TREND_METRICS if any(e.value(k) is not None for e in entries)]
    if not any(k != "accuracy" for k in keys) and any(e.value("macro_f1") is not None for e in entries):
        keys.append("macro_f1")  # not the four OCT classes: no referral metrics
    if not keys:
        return None
    series = [
        TrendSeries(_LABELS[k].replace("urgent-referral ", "urgent "), _array(entries, k, "value"),
                    _array(entries, k, "low"), _array(entries, k, "high"), fraction=_KINDS[k] == "fraction")
        for k in keys
    ]
    marks = TrendMarks(
        failed=np.array([e.gates_passed is False for e in entries]),
        new_model=np.array([MODEL in e.changes for e in entries]),
        data_changed=np.array([DATA in e.changes for e in entries]),
        config_changed=np.array([CONFIG in e.changes for e in entries]),
    )
    dates = [_date(e) for e in entries]
    # Dates alone, unless several runs share a day (then month, day and time).
    labels = [d[:10] for d in dates] if len({d[:10] for d in dates}) == len(dates) else [d[5:16] for d in dates]
    return encode_figure(trend_figure(labels, series, marks, width_in=FIGURE_WIDTH_IN), FIGURE_DPI)


def history_page(history: RunHistory, links_from: Path) -> HistoryPage:
    """The page's context; links relative to the folder ``links_from`` (where the page is written)."""
    links_from = Path(links_from).resolve()
    image = trend_png(history.entries)
    figure = None if image is None else FigureRef(
        image.data_uri(), "Trends of the headline metrics over the runs",
        "Each point is one complete run, oldest on the left, equally spaced and labelled with its date. Red: a "
        "quality gate failed. Diamond: the model's weights differ from the run before. Dashed line: the data set "
        "changed from that run on; dotted line: the configuration changed. Shaded: the recorded confidence "
        "interval, where the runs recorded one.",
        image.width, image.height,
    )
    return HistoryPage(
        title="octreport history",
        root=str(history.root),
        generated_at=timestamp_now(),
        octreport_version=__version__,
        summary=summary_line(history),
        headers=tuple(_LABELS[k] for k in TABLE_METRICS),
        rows=tuple(_row(history, e, links_from) for e in reversed(history.entries)),
        figure=figure,
        stopped=tuple(_problem(history, p, links_from) for p in history.problems if p.kind != UNREADABLE),
        unreadable=tuple(_problem(history, p, links_from) for p in history.problems if p.kind == UNREADABLE),
    )


def render_history_html(history: RunHistory, links_from: Path, template_dir: Path | None = None) -> str:
    """The history as one self-contained HTML page (``templates/history.html``)."""
    return render_page(HISTORY_TEMPLATE, template_dir, page=history_page(history, links_from))
