"""The report's sections, in page order: the one list from which both the contents
(``report.toc``) and the body (``templates/base.html`` includes each shown section's partial) are
made, so the two cannot disagree.

Adding a section is one :class:`ReportSection` here and its partial, which takes its
``<section id>`` and ``<h2>`` from ``report.sections["<anchor>"]`` (a user's partial included).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TocEntry:
    """A section as the contents list shows it: ``anchor`` is the id of the section's element and
    ``title`` the text of both its contents entry and its heading."""

    anchor: str
    title: str
    level: int = 1


@dataclass(frozen=True)
class ReportSection:
    """One top-level section of the report."""

    anchor: str
    title: str
    partial: str
    """The template that draws it, as ``{% include %}`` names it."""
    shown_when: str | None = None
    """The report context's field that must hold something (what ``{% if %}`` calls true) for a
    report to show the section; None: every report shows it."""
    subsections: str | None = None
    """The report context's field whose items (each with ``anchor`` and ``title``) the contents
    lists under this section, one level down."""


SECTIONS: tuple[ReportSection, ...] = (
    ReportSection("summary", "Summary", "partials/summary.html"),
    ReportSection("data", "Data", "partials/data.html", shown_when="data"),
    ReportSection("data-shift", "Data shift", "partials/data_shift.html", shown_when="data_shift"),
    ReportSection("model-card", "Model card", "partials/model_card.html"),
    ReportSection("comparison", "Comparison with an earlier run", "partials/comparison_section.html",
                  shown_when="comparison"),
    ReportSection("metrics", "Metrics", "partials/metrics.html"),
    ReportSection("calibration", "Calibration and confidence", "partials/calibration.html", shown_when="calibration"),
    ReportSection("operating-point", "Urgent-referral operating point", "partials/operating_point.html",
                  shown_when="operating_point"),
    ReportSection("confusion", "Confusion matrix", "partials/confusion.html"),
    ReportSection("training", "Training curves", "partials/training.html", shown_when="training_figure"),
    ReportSection("layers", "Convolutional layers", "partials/layers.html"),
    ReportSection("feature-maps", "Feature maps", "partials/feature_maps.html", subsections="class_sections"),
    ReportSection("attention", "Where the model looks", "partials/attention.html"),
    ReportSection("heatmap-checks", "Heat-map checks", "partials/heatmap_checks.html", shown_when="heatmap_checks"),
    ReportSection("filters", "Filters", "partials/filters.html"),
    ReportSection("layer-health", "Layer health", "partials/layer_health.html"),
    ReportSection("errors", "Errors gallery", "partials/errors.html", shown_when="error_cells"),
    ReportSection("warnings", "Data warnings", "partials/warnings.html"),
    ReportSection("appendix", "Appendix: how to reproduce", "partials/appendix.html"),
    ReportSection("checklist", "Appendix: reporting checklist", "partials/checklist.html"),
)


def section_entries() -> dict[str, TocEntry]:
    """Every top-level section, shown or not, as the contents entry that links to it, by anchor."""
    return {section.anchor: TocEntry(section.anchor, section.title) for section in SECTIONS}


def shown_sections(context: Any) -> tuple[ReportSection, ...]:
    """The sections a report context shows, in page order."""
    return tuple(s for s in SECTIONS if s.shown_when is None or bool(getattr(context, s.shown_when)))


def contents(context: Any) -> tuple[TocEntry, ...]:
    """The contents of a report context: each shown section's entry from ``context.sections`` (so it
    reads as the section's heading does), each followed by its subsections one level down."""
    entries: list[TocEntry] = []
    for section in shown_sections(context):
        entries.append(context.sections[section.anchor])
        if section.subsections is not None:
            entries += [TocEntry(s.anchor, s.title, level=2) for s in getattr(context, section.subsections)]
    return tuple(entries)
