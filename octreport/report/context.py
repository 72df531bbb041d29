"""The one object the report templates receive. Templates compute nothing: every number and
every caption is here, ready to show; numbers are formatted by the registered Jinja filters.

Section titles are written once: in :data:`octreport.report.sections.SECTIONS` for the top-level
sections (the context holds them as ``sections``), and as the ``title`` of each
:class:`ClassSection` and :class:`FilterSection`. The contents list and each section's heading both
read them from the context, so they cannot drift apart.

Built in one place, :func:`octreport.report.build.build_report_context`. The views of the data,
image and audit sections live in :mod:`~octreport.report.data_views`,
:mod:`~octreport.report.image_views` and :mod:`~octreport.report.audit_views`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from octreport.audit.compare import RunComparison
from octreport.audit.gates import GateResult
from octreport.evaluation.intervals import Interval
from octreport.report.audit_views import ChecklistSection, ModelCardSection
from octreport.report.data_views import DataSection, DataShiftSection
from octreport.report.image_views import ClassSection, ErrorCell, FilterSection, HeatmapChecksSection, LayerHealthRow
from octreport.report.layout import REPORT_KEYWORDS, PageHead
from octreport.report.sections import ReportSection, TocEntry, contents, section_entries, shown_sections
from octreport.report.views import FigureRef, KeyValue


@dataclass(frozen=True)
class ClassMetricsRow:
    """One row of the per-class table. None means undefined (shown as a dash). Each ``*_ci`` is
    that value's confidence interval, None when the report has none."""

    name: str
    precision: float | None
    recall: float | None
    specificity: float | None
    f1: float | None
    roc_auc: float | None
    support: int
    predicted: int
    precision_ci: Interval | None = None
    recall_ci: Interval | None = None
    specificity_ci: Interval | None = None
    f1_ci: Interval | None = None
    roc_auc_ci: Interval | None = None
    in_data: bool = True
    """False for a model's class the evaluated data does not hold: its precision, sensitivity,
    F1 and ROC AUC read "not in this data"."""


@dataclass(frozen=True)
class AverageRow:
    name: str  # "macro average" / "weighted average"
    precision: float | None
    recall: float | None
    f1: float | None
    precision_ci: Interval | None = None
    recall_ci: Interval | None = None
    f1_ci: Interval | None = None


@dataclass(frozen=True)
class ReferralRow:
    """A referral metric, ours beside the published figure (None when the paper gives none)."""

    name: str
    ours: float | None
    reference: float | None
    lower_is_better: bool = False
    ours_ci: Interval | None = None
    kind: str = "fraction"
    """``fraction`` (shown as %) or ``score``."""


@dataclass(frozen=True)
class ReferralSection:
    rows: tuple[ReferralRow, ...]
    reference_source: str
    explanation: str


@dataclass(frozen=True)
class Summary:
    """What a reader gets in ten seconds."""

    accuracy: float
    chance_level: float
    n_test_images: int
    urgent_sensitivity: float | None
    urgent_specificity: float | None
    macro_f1: float | None
    key_warning: str | None
    headline: str
    dead_filter_flags: tuple[str, ...] = ()
    worst_confusion: str | None = None
    accuracy_ci: Interval | None = None
    urgent_sensitivity_ci: Interval | None = None
    urgent_specificity_ci: Interval | None = None
    macro_f1_ci: Interval | None = None
    calibration_reading: str | None = None
    selective_reading: str | None = None
    data_finding: str | None = None
    """The data audit's worst finding, one line; None when it found nothing."""
    model_warnings: tuple[str, ...] = ()
    """About the model's input: an input convention octreport had to assume, predictions that look
    like the wrong one."""
    heatmap_reading: str | None = None
    """The faithfulness summary line, when the heat maps were checked."""
    heatmap_flag: str | None = None
    """The randomisation check's verdict when the maps are not explained by what the model learned."""
    shift_warning: str | None = None
    """The data-shift check's first material finding (and how many more), None when it found none."""
    urgent_rule: str | None = None
    """A sentence: the urgent-referral rule the sensitivity and specificity are of, where it came
    from, and whether argmax's numbers stand beside them."""
    urgent_sensitivity_hint: str = "CNV or DME found as urgent"
    """Under the urgent sensitivity; with argmax's, and its interval, when the rule is a threshold."""
    urgent_specificity_hint: str = "others kept out of urgent"


@dataclass(frozen=True)
class SelectiveRowView:
    """Accuracy on the scans kept when ``referred_share`` of them, the least confident, are referred."""

    referred_share: float
    kept: int
    accuracy: float | None


@dataclass(frozen=True)
class CalibrationSection:
    """Reliability, ECE and Brier in numbers, a figure and plain words; temperature scaling as
    reported (never applied); selective prediction."""

    figure: FigureRef
    reading: str
    rows: tuple[KeyValue, ...]
    explanation: str
    temperature_rows: tuple[KeyValue, ...]
    temperature_note: str
    selective_figure: FigureRef
    selective_rows: tuple[SelectiveRowView, ...]
    selective_reading: str


@dataclass(frozen=True)
class ThresholdRowView:
    threshold: float
    sensitivity: float | None
    specificity: float | None
    flagged_share: float
    label: str = ""


@dataclass(frozen=True)
class OperatingPointSection:
    """The urgent-referral ROC curve with the used and published points, and a threshold table."""

    figure: FigureRef
    explanation: str
    rows: tuple[ThresholdRowView, ...]
    used_note: str
    rule: str = ""
    """The report's referral rule in words."""
    rule_provenance: str = ""
    """Where the rule came from (chosen on validation, --referral-threshold, or no stored rule)."""


@dataclass(frozen=True)
class ConvLayerRow:
    index: int
    path: str
    kind: str
    kernel: str
    filters: int
    strides: str
    output_shape: str
    params: int
    drawn: bool = True
    """Whether the report draws this layer's feature maps and filters."""


@dataclass(frozen=True)
class SkippedFileRow:
    path: str
    reason: str


@dataclass(frozen=True)
class ReportContext:
    # Title block
    title: str
    subtitle: str
    generated_at: str
    octreport_version: str
    model_description: tuple[KeyValue, ...]
    data_description: tuple[KeyValue, ...]
    summary: Summary
    class_rows: tuple[ClassMetricsRow, ...]
    average_rows: tuple[AverageRow, ...]
    referral: ReferralSection | None
    confusion_figure: FigureRef
    training_figure: FigureRef | None
    conv_layers: tuple[ConvLayerRow, ...]
    feature_map_note: str
    class_sections: tuple[ClassSection, ...]
    filter_note: str
    filter_sections: tuple[FilterSection, ...]
    data_warnings: tuple[str, ...]
    skipped_files: tuple[SkippedFileRow, ...]
    reproduce_command: str
    reproduce: tuple[KeyValue, ...]
    versions: tuple[KeyValue, ...]
    citation: str | None = None
    gates: tuple[GateResult, ...] = ()
    attention_note: str = ""
    occlusion_note: str | None = None
    layer_health_note: str = ""
    layer_health: tuple[LayerHealthRow, ...] = ()
    errors_note: str = ""
    error_cells: tuple[ErrorCell, ...] = ()
    comparison: RunComparison | None = None
    model_card: ModelCardSection = field(default_factory=lambda: ModelCardSection((), (), "No model card was given."))
    checklist: ChecklistSection = field(default_factory=lambda: ChecklistSection((), (), "", ""))
    layer_selection_note: str = ""
    """Which conv layers are drawn (feature maps, filters) and why."""
    interval_note: str = ""
    interval_level: str = "95%"
    """The confidence level of every interval in the report, as text."""
    calibration: CalibrationSection | None = None
    operating_point: OperatingPointSection | None = None
    data: DataSection | None = None
    data_shift: DataShiftSection | None = None
    heatmap_checks: HeatmapChecksSection | None = None
    # Every top-level section's id and title by anchor, shown or not: each partial's <section id>
    # and <h2> come from here, as do the top-level entries of ``toc``.
    sections: Mapping[str, TocEntry] = field(default_factory=section_entries)

    @property
    def body(self) -> tuple[ReportSection, ...]:
        """The sections this report shows, in page order: base.html includes each one's partial."""
        return shown_sections(self)

    @property
    def toc(self) -> tuple[TocEntry, ...]:
        """The contents: the sections this report shows, in order, each class's feature maps one level down."""
        return contents(self)

    @property
    def head(self) -> PageHead:
        return PageHead(self.title, self.generated_at, self.octreport_version, self.subtitle, REPORT_KEYWORDS)
