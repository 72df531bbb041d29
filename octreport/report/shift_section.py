"""The report's Data shift section: the evaluated images' acquisition profile beside the training
images', the material differences, and the performance per acquisition group."""

from __future__ import annotations

from collections.abc import Sequence

from octreport.data.acquisition_profile import (
    COMMON_IN_EVALUATED,
    INTENSITY_FLOOR,
    INTENSITY_SHIFT,
    RARE_IN_TRAINING,
    UNSEEN_MIN_SHARE,
    AcquisitionProfile,
    Counts,
    ShiftReport,
)
from octreport.data.groups import NOT_LISTED
from octreport.drawing.data_figures import SIZES_DRAWN, acquisition_figure
from octreport.drawing.export import encode_figure
from octreport.evaluation.group_metrics import BY_SIZE, GroupMetrics, GroupRow
from octreport.formatting import level_text
from octreport.report.assets import FIGURE_DPI, FigureStore
from octreport.report.data_views import DataShiftSection, GroupRowView, GroupTableView, ProfileRow

VALUES_SHOWN = 4
"""Most common values of a property listed in the side-by-side table."""
NOT_RECORDED = "not recorded"


def data_shift_section(shift: ShiftReport, groups: Sequence[GroupMetrics], store: FigureStore) -> DataShiftSection:
    training, evaluated = shift.training, shift.evaluated
    if shift.note:
        note = shift.note
    elif not shift.findings:
        note = "The evaluated scans were acquired and exported like the training scans: no material difference."
    else:
        note = ""
    return DataShiftSection(
        findings=tuple(f.text for f in shift.findings),
        note=note,
        rows=_profile_rows(training, evaluated),
        figure=store.add(
            encode_figure(acquisition_figure(training, evaluated), FIGURE_DPI), "data-shift", "Acquisition profiles",
            f"Left: the share of each set's images (0-100% of that set) per stored size, width x height in pixels, "
            f"the {SIZES_DRAWN} most common sizes and the rest as 'other'. Right: for each per-image intensity "
            "percentile (1st, 50th, 99th of a scan's grayscale values on a 0-1 scale, from a 64x64 reduction of the "
            "scan so that it does not depend on the resolution), the range of the middle 90% of the images (line, "
            "5th to 95th percentile over the images) and the median image (dot). Blue: training images"
            + ("" if training is not None else " (not recorded for this model)") + "; orange: evaluated images."),
        group_tables=tuple(_group_table(g) for g in groups),
        method_note=(
            f"A difference is named when a size, aspect ratio, file type or channel count is under "
            f"{RARE_IN_TRAINING:.0%} of the training images but over {COMMON_IN_EVALUATED:.0%} of the evaluated ones "
            f"(a file type or channel count absent from training: from {UNSEEN_MIN_SHARE:.0%}), or when the typical "
            f"evaluated scan's intensity percentile moved from the typical training scan's by more than "
            f"{INTENSITY_SHIFT:g} x the training images' middle-90% range (and at least {INTENSITY_FLOOR:g}). "
            "The training profile is recorded in the model's sidecar when octreport trains it; the evaluated one comes "
            "from the same reduced decode of each image as the data audit."),
    )


def _profile_rows(training: AcquisitionProfile | None, evaluated: AcquisitionProfile) -> tuple[ProfileRow, ...]:
    def row(label: str, text) -> ProfileRow:
        return ProfileRow(label, NOT_RECORDED if training is None else text(training), text(evaluated))

    rows = [
        row("Images", lambda p: f"{p.n_images:,}" + (f" ({p.undecoded} unreadable)" if p.undecoded else "")),
        row("Sizes (width x height, px)", lambda p: _counts_text(p, p.sizes, "", p.other_sizes)),
        row("Aspect ratio (width:height)", lambda p: _counts_text(p, p.aspect_ratios, ":1")),
        row("File types", lambda p: _counts_text(p, tuple((k.upper(), n) for k, n in p.file_types))),
        row("Colour channels", lambda p: _counts_text(p, p.channels)),
    ]
    if evaluated.devices or (training is not None and training.devices):
        rows.append(row("Device (DICOM Manufacturer and model)", _devices_text))
    for spread in evaluated.intensity:
        rows.append(row(f"Intensity, {_ordinal(spread.percentile)} percentile: median image (middle 90%)",
                        lambda p, q=spread.percentile: _spread_text(p, q)))
    return tuple(rows)


def _counts_text(profile: AcquisitionProfile, counts: Counts, unit: str = "", other: int = 0) -> str:
    if not profile.n_images:
        return "none"
    shown = [f"{value}{unit} ({_share(n / profile.n_images)})" for value, n in counts[:VALUES_SHOWN]]
    rest = sum(n for _, n in counts[VALUES_SHOWN:]) + other
    if rest:
        shown.append(f"others ({_share(rest / profile.n_images)})")
    return ", ".join(shown)


def _devices_text(profile: AcquisitionProfile) -> str:
    named = sum(n for _, n in profile.devices)
    unnamed = profile.n_images - named
    if not named:
        return "none named"
    return _counts_text(profile, profile.devices) + (f", none named ({_share(unnamed / profile.n_images)})" if unnamed else "")


def _spread_text(profile: AcquisitionProfile, percentile: int) -> str:
    spread = profile.spread(percentile)
    return "–" if spread is None else f"{spread.median:.2f} ({spread.low:.2f}–{spread.high:.2f})"


def _share(share: float) -> str:
    return "<1%" if 0 < share < 0.005 else f"{share:.0%}"


def _ordinal(n: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def _group_table(groups: GroupMetrics) -> GroupTableView:
    caption = ("Performance by image size (width x height, px)" if groups.grouping == BY_SIZE
               else f"Performance by group ({groups.grouping})")
    if groups.referral:
        caption += ("; urgent: CNV or DME, called by the report's referral rule, sensitivity over the urgent cases, "
                    "specificity over the other cases")
    caption += (f". Under each value its {level_text(groups.level)} Wilson interval; every group is shown with its "
                "number of images, however small.")
    note = (f"{groups.not_listed} evaluated image(s) are not listed in the groups file: they form the group "
            f"'{NOT_LISTED}'." if groups.not_listed else "")
    return GroupTableView(caption, tuple(_group_row(row) for row in groups.rows), groups.referral, note)


def _group_row(row: GroupRow) -> GroupRowView:
    sensitivity, specificity = row.urgent_sensitivity, row.urgent_specificity
    return GroupRowView(
        group=row.group, n=row.n, accuracy=row.accuracy.value, accuracy_ci=row.accuracy,
        urgent_sensitivity=None if sensitivity is None else sensitivity.value, urgent_sensitivity_ci=sensitivity,
        n_urgent=row.n_urgent,
        urgent_specificity=None if specificity is None else specificity.value, urgent_specificity_ci=specificity,
        n_non_urgent=row.n_non_urgent,
    )


def shift_warning(shift: ShiftReport | None) -> str | None:
    """The summary's line: the first material finding, and how many more the section names."""
    if shift is None or not shift.findings:
        return None
    more = len(shift.findings) - 1
    return shift.findings[0].text + (f" ({more} more difference(s) in the Data shift section.)" if more else "")
