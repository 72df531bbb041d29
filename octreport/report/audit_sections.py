"""The report's model card section and reporting-checklist appendix, as context objects.

Called by :func:`octreport.report.build.build_report_context` only; the card itself and the
checklist's items live in :mod:`octreport.audit.model_card` and :mod:`octreport.audit.checklist`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from octreport.audit.checklist import (
    CARD,
    CLAIM_CITATION,
    SECTION,
    TRIPOD_AI_CITATION,
    ChecklistFacts,
    checklist_rows,
    status_counts,
)
from octreport.audit.model_card import CARD_FIELDS, CARD_LABELS, ModelCard
from octreport.data.layout import CLASS_FOLDER_LAYOUT
from octreport.report.audit_views import (
    CardFieldRow,
    ChecklistItemRow,
    ChecklistPlace,
    ChecklistSection,
    ModelCardSection,
)
from octreport.report.sections import TocEntry
from octreport.document.results import RunResults

MODEL_CARD_ANCHOR = "model-card"
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def _card_row(label: str, asks: str, entries: tuple[str, ...]) -> CardFieldRow:
    """A list of entries shows as bullets; one text is cut into paragraphs at its blank lines."""
    if len(entries) > 1:
        return CardFieldRow(label, asks, tuple(" ".join(e.split()) for e in entries), as_list=True)
    paragraphs = tuple(p.strip() for e in entries for p in _PARAGRAPH_BREAK.split(e) if p.strip())
    return CardFieldRow(label, asks, paragraphs)


def model_card_section(card: ModelCard) -> ModelCardSection:
    rows = tuple(_card_row(f.label, f.asks, card.get(f.key)) for f in CARD_FIELDS)
    missing = tuple(CARD_LABELS[key] for key in card.missing)
    if not card.given:
        note = ("No model card was given: nothing below is known about what this model is for, on whom it may be "
                "used or how its labels were obtained. Give one as a [card] table in the configuration file or "
                "with --card FILE.")
    elif missing:
        note = f"From {card.source}. {len(missing)} of {len(rows)} fields are missing."
    else:
        note = f"From {card.source}."
    return ModelCardSection(rows, missing, note)


def checklist_facts(results: RunResults, card: ModelCard, shown: Mapping[str, TocEntry], citation: bool) -> ChecklistFacts:
    return ChecklistFacts(
        card=card,
        trained_in_run=results.train_config is not None,
        referral=results.referral is not None,
        intervals=_has_intervals(results),
        errors_gallery="errors" in shown,
        training_curves="training" in shown,
        split_by_octreport=results.data.layout == CLASS_FOLDER_LAYOUT,
        model_file=results.model_path is not None,
        citation=citation,
        heatmap_checks="heatmap-checks" in shown,
        subgroups="data-shift" in shown and bool(results.group_metrics),
        referral_rule="" if results.referral_rule is None else results.referral_rule.labelled,
        referral_threshold=results.referral_rule is not None and results.referral_rule.threshold is not None,
    )


def _has_intervals(results: RunResults) -> bool:
    """Whether the report shows confidence intervals (computed for every run with test images)."""
    return results.statistics is not None and results.statistics.intervals is not None


def _place(ref, shown: Mapping[str, TocEntry]) -> ChecklistPlace:
    if ref.kind == SECTION:
        entry = shown.get(ref.target)
        if entry is None:  # a checklist entry must only name sections this report shows
            raise ValueError(f"checklist names section '{ref.target}', which this report does not show")
        return ChecklistPlace(entry.title, entry.anchor)
    if ref.kind == CARD:
        return ChecklistPlace(f"Model card: {CARD_LABELS[ref.target]}", MODEL_CARD_ANCHOR)
    return ChecklistPlace(f"{ref.kind}: {ref.target}")


def checklist_section(facts: ChecklistFacts, shown: Mapping[str, TocEntry]) -> ChecklistSection:
    """The appendix; ``shown``: the top-level sections of this report by anchor (links go there)."""
    rows = checklist_rows(facts)
    counts = status_counts(rows)
    summary = f"Of {len(rows)} items: " + ", ".join(f"{n} {status}" for status, n in counts.items()) + "."
    return ChecklistSection(
        rows=tuple(
            ChecklistItemRow(r.checklist, r.item, r.topic, r.status, tuple(_place(ref, shown) for ref in r.where), r.note)
            for r in rows
        ),
        citations=(CLAIM_CITATION, TRIPOD_AI_CITATION),
        summary=summary,
        note=("The items of two reporting checklists that a report on one evaluation run can address, each with "
              "the part of this report, of its manifest.json or metrics.json, or of the model card that addresses "
              "it. Item numbers are the published ones; the topics are abbreviated, see the papers for the full "
              "wording. Items about how a study was conducted (registration, ethics approval, funding, ...) are "
              "left out: they belong to the study, not to one run."),
    )
