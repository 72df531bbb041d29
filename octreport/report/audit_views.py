"""The model card section and the reporting-checklist appendix as the templates receive them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CardFieldRow:
    """One model-card field: ``paragraphs`` holds its text, empty when the field was not given;
    ``as_list`` when it was given as a list (each entry one bullet) rather than as text."""

    label: str
    asks: str
    paragraphs: tuple[str, ...]
    as_list: bool = False

    @property
    def missing(self) -> bool:
        return not self.paragraphs


@dataclass(frozen=True)
class ModelCardSection:
    """The "Model card" section. ``missing``: the labels of the fields not given; ``note`` says
    where the card came from, or that none was given."""

    rows: tuple[CardFieldRow, ...]
    missing: tuple[str, ...]
    note: str


@dataclass(frozen=True)
class ChecklistPlace:
    """Where the report addresses a checklist item: ``text`` to show, and ``anchor`` when it is a
    section (or the model card) of this report, to link to."""

    text: str
    anchor: str | None = None


@dataclass(frozen=True)
class ChecklistItemRow:
    checklist: str
    item: str
    topic: str
    status: str
    places: tuple[ChecklistPlace, ...]
    note: str

    @property
    def addressed(self) -> bool:
        return self.status == "addressed"

    @property
    def not_addressed(self) -> bool:
        return self.status == "not addressed"


@dataclass(frozen=True)
class ChecklistSection:
    """The reporting-checklist appendix: ``summary`` counts the items by status."""

    rows: tuple[ChecklistItemRow, ...]
    citations: tuple[str, ...]
    summary: str
    note: str
