"""The one object the report templates receive. Templates compute nothing: every number and
every caption is here, ready to show; numbers are formatted by the registered Jinja filters.

Section titles are written once: in :data:`octreport.report.sections.SECTIONS` for the top-level
sections (the context holds them as ``sections``), and as the ``title`` of each
:class:`ClassSection` and :class:`FilterSection`. The contents list and each section's heading both
read them from the context, so they cannot drift apart.

Built in one place, :func:`octreport.report.build.build_report_context`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from octreport.audit.compare import RunComparison
from octreport.audit.gates import GateResult
from octreport.evaluation.intervals import Interval
from octreport.report.layout import REPORT_KEYWORDS, PageHead
from octreport.report.sections import ReportSection, TocEntry, contents, section_entries, shown_sections


@dataclass(frozen=True)
class FigureRef:
    """An image on the page: ``src`` is a ``data:`` URI (self-contained HTML) or a relative path
    into the assets folder. ``width_px``/``height_px`` are the image's pixel size."""

    src: str
    alt: str
    caption: str
    width_px: int
    height_px: int


@dataclass(frozen=True)
class KeyValue:
    label: str
    value: str


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
class LayerGrid:
    """The feature-map grid of one conv layer for one image."""

    layer_path: str
    figure: FigureRef


@dataclass(frozen=True)
class ShownImage:
    """One image chosen for the visual sections, with what the model made of it."""

    title: str
    file_name: str
    true_class: str | None
    predicted_class: str
    correct: bool | None
    probabilities: tuple[KeyValue, ...]
    image: FigureRef
    probability_chart: FigureRef
    layer_grids: tuple[LayerGrid, ...]
    gradcam: tuple[FigureRef, ...] = ()
    occlusion: FigureRef | None = None


@dataclass(frozen=True)
class ClassSection:
    anchor: str
    class_name: str
    images: tuple[ShownImage, ...]

    @property
    def title(self) -> str:
        """The heading of this class's feature maps, and its entry in the contents."""
        return f"Class {self.class_name}"


@dataclass(frozen=True)
class FilterSection:
    anchor: str
    layer_path: str
    figure: FigureRef | None  # the kernels; None when --filter-views leaves them out
    norm_min: float
    norm_median: float
    norm_max: float
    patches_figure: FigureRef | None = None  # top-activating test-image patches, a row per filter
    maximised_figure: FigureRef | None = None  # activation maximisation, one tile per filter
    views_note: str = ""  # why a view asked for is missing

    @property
    def title(self) -> str:
        """The heading of this layer's filters (and its contents entry, where one is listed)."""
        return self.layer_path


@dataclass(frozen=True)
class LayerHealthRow:
    path: str
    filters: int
    dead_share: float
    dead_strict_share: float
    sparsity: float
    norm_min: float
    norm_median: float
    norm_max: float
    norm_cv: float | None
    basis: str
    flagged: bool


@dataclass(frozen=True)
class ErrorCase:
    """One mistake in the errors gallery: the image with Grad-CAM for the predicted class."""

    file_name: str
    confidence: float
    true_probability: float
    figure: FigureRef


@dataclass(frozen=True)
class ErrorCell:
    anchor: str
    true_class: str
    predicted_class: str
    count: int
    mean_confidence: float
    cases: tuple[ErrorCase, ...]


@dataclass(frozen=True)
class FaithfulnessRow:
    """One image's (or the mean's) deletion and insertion areas and drop at 10% for one map."""

    image: str
    class_name: str
    method: str
    deletion_area: float
    insertion_area: float
    drop_at_read: float
    is_mean: bool = False


@dataclass(frozen=True)
class SanityStepRow:
    """One step of the randomisation cascade: the layer re-initialised and the mean similarity
    of the maps to the trained model's."""

    step: int
    layer: str
    mean_spearman: float | None
    mean_ssim: float | None


@dataclass(frozen=True)
class SanityImageRow:
    """One image after the whole cascade; ``flagged`` when its map barely changed."""

    image: str
    class_name: str
    spearman: float | None
    ssim: float | None
    flagged: bool


@dataclass(frozen=True)
class HeatmapChecksSection:
    """Faithfulness (deletion and insertion curves) and the randomisation sanity check."""

    note: str
    reading: str
    figure: FigureRef
    rows: tuple[FaithfulnessRow, ...]
    sanity_note: str
    sanity_reading: str
    sanity_flagged: bool
    sanity_steps: tuple[SanityStepRow, ...] = ()
    sanity_images: tuple[SanityImageRow, ...] = ()


@dataclass(frozen=True)
class SkippedFileRow:
    path: str
    reason: str


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
