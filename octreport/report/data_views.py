"""The data sections of a page (the data audit, the data shift) as the templates receive them."""

from __future__ import annotations

from dataclasses import dataclass

from octreport.evaluation.intervals import Interval
from octreport.report.views import FigureRef, KeyValue


@dataclass(frozen=True)
class DataCountRow:
    """Images per class in one split, their total, and the split's distinct patients (None: unknown)."""

    split: str
    counts: tuple[int, ...]
    total: int
    patients: int | None


@dataclass(frozen=True)
class ShortcutRow:
    feature: str
    accuracy: float
    chance: float
    flagged: bool


@dataclass(frozen=True)
class DataSection:
    """The data audit (:mod:`octreport.data.data_audit`) as the report shows it."""

    findings: tuple[str, ...]
    class_names: tuple[str, ...]
    count_rows: tuple[DataCountRow, ...]
    facts: tuple[KeyValue, ...]
    shared_patients: tuple[KeyValue, ...]
    duplicates: tuple[KeyValue, ...]
    """One row per duplicate group: what it is, and its files."""
    near_clusters: tuple[KeyValue, ...]
    """One row per listed near-duplicate cluster, biggest first: its size and pairs, its first images."""
    pairs: tuple[FigureRef, ...]
    same_patient_note: str
    shortcuts: tuple[ShortcutRow, ...]
    shortcut_note: str
    skipped: tuple[str, ...]
    more_note: str = ""


@dataclass(frozen=True)
class ProfileRow:
    """One property of the acquisition profile, as text, for the training and the evaluated images."""

    label: str
    training: str
    evaluated: str


@dataclass(frozen=True)
class GroupRowView:
    """One acquisition group; a ``*_ci`` of None (or with no value) shows as a dash."""

    group: str
    n: int
    accuracy: float | None
    accuracy_ci: Interval | None
    urgent_sensitivity: float | None = None
    urgent_sensitivity_ci: Interval | None = None
    n_urgent: int = 0
    urgent_specificity: float | None = None
    urgent_specificity_ci: Interval | None = None
    n_non_urgent: int = 0


@dataclass(frozen=True)
class GroupTableView:
    """The performance of one grouping (by image size, or the user's groups)."""

    caption: str
    rows: tuple[GroupRowView, ...]
    referral: bool
    note: str = ""


@dataclass(frozen=True)
class DataShiftSection:
    """The evaluated images' acquisition profile beside the training images', what differs, and
    the performance per acquisition group (:mod:`octreport.data.acquisition_profile`)."""

    findings: tuple[str, ...]
    note: str
    """Why nothing could be compared, or what was compared and found alike."""
    rows: tuple[ProfileRow, ...]
    figure: FigureRef
    group_tables: tuple[GroupTableView, ...]
    method_note: str
