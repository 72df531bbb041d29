"""The report's Metrics section (per-class and average rows, the urgent-referral table beside the
published figures) and its Confusion matrix figure."""

from __future__ import annotations

from octreport.document.results import RunResults
from octreport.drawing.export import encode_figure
from octreport.drawing.figures import confusion_matrix_figure
from octreport.evaluation.intervals import ClassIntervals, urgent_wilson
from octreport.evaluation.metrics import PerClassMetrics
from octreport.evaluation.referral import KERMANY_2018_REFERENCE, urgent_rule_text
from octreport.report.assets import FIGURE_DPI, FigureStore
from octreport.report.context import AverageRow, ClassMetricsRow, ReferralRow, ReferralSection
from octreport.report.views import FigureRef


def class_rows(results: RunResults) -> tuple[ClassMetricsRow, ...]:
    intervals = results.statistics.intervals
    return tuple(_class_row(c, intervals.for_class(c.name)) for c in results.metrics.per_class)


def _class_row(c: PerClassMetrics, ci: ClassIntervals) -> ClassMetricsRow:
    return ClassMetricsRow(c.name, c.precision, c.recall, c.specificity, c.f1, c.roc_auc, c.support, c.predicted_count,
                           ci.precision, ci.recall, ci.specificity, ci.f1, ci.roc_auc, in_data=c.support > 0)


def average_rows(results: RunResults) -> tuple[AverageRow, ...]:
    metrics, intervals = results.metrics, results.statistics.intervals
    return (
        AverageRow("macro average", metrics.macro.precision, metrics.macro.recall, metrics.macro.f1,
                   intervals.macro_precision, intervals.macro_recall, intervals.macro_f1),
        AverageRow("weighted average", metrics.weighted.precision, metrics.weighted.recall, metrics.weighted.f1,
                   intervals.weighted_precision, intervals.accuracy, intervals.weighted_f1),
    )


def referral_section(results: RunResults) -> ReferralSection | None:
    referral = results.referral
    if referral is None:
        return None
    ref = KERMANY_2018_REFERENCE
    intervals = results.statistics.intervals
    ci = intervals.referral
    return ReferralSection(
        rows=(
            ReferralRow("Accuracy (4 classes)", referral.accuracy, ref.accuracy, ours_ci=intervals.accuracy),
            ReferralRow("Urgent-referral sensitivity", referral.urgent_sensitivity, ref.urgent_sensitivity,
                        ours_ci=ci and ci.urgent_sensitivity),
            ReferralRow("Urgent-referral specificity", referral.urgent_specificity, ref.urgent_specificity,
                        ours_ci=ci and ci.urgent_specificity),
            *_argmax_rows(results),
            ReferralRow("Urgent-referral ROC AUC", referral.urgent_roc_auc, ref.urgent_roc_auc,
                        ours_ci=ci and ci.urgent_roc_auc),
            ReferralRow("Weighted error", referral.weighted_error, ref.weighted_error, lower_is_better=True,
                        ours_ci=ci and ci.weighted_error),
        ),
        reference_source=ref.source,
        explanation=(
            "CNV and DME need urgent referral, DRUSEN routine referral, NORMAL observation. Urgent-vs-rest "
            f"sensitivity and specificity use the model's referral rule ({urgent_rule_text(referral.threshold)}; "
            "see the operating point); accuracy and the weighted error use the predicted class; the ROC AUC scores "
            "each image by P(CNV) + P(DME). Weighted error: each error costs 4 when an urgent case is called NORMAL, 2 when "
            "it is called DRUSEN, 1 otherwise, summed and divided by the number of images "
            f"({referral.total_penalty} penalty points over {referral.n_images} images here)."
            + _one_sided_note(referral)
        ),
    )


def _one_sided_note(referral) -> str:
    """Said when the data holds only urgent or only non-urgent cases: one of the pair is not measured."""
    if not referral.n_urgent:
        return " No urgent case (CNV or DME) is in this data: urgent-referral sensitivity and ROC AUC are not measured."
    if not referral.n_non_urgent:
        return " No non-urgent case (DRUSEN or NORMAL) is in this data: urgent-referral specificity and ROC AUC are not measured."
    return ""


def _absent_rows_note(absent: tuple[str, ...]) -> str:
    if not absent:
        return ""
    return (f" Not in this data, so without a row: {', '.join(absent)}; their columns count the images the model "
            "called so.")


def _argmax_rows(results: RunResults) -> tuple[ReferralRow, ...]:
    """The urgent sensitivity and specificity of the predicted class, beside a threshold rule's."""
    argmax, ref = results.argmax_referral, KERMANY_2018_REFERENCE
    if argmax is None or results.referral is None or results.referral.threshold is None:
        return ()
    sensitivity, specificity = urgent_wilson(argmax, results.statistics.intervals.settings.level)
    return (ReferralRow("Urgent-referral sensitivity, predicted class (argmax)", argmax.urgent_sensitivity,
                        ref.urgent_sensitivity, ours_ci=sensitivity),
            ReferralRow("Urgent-referral specificity, predicted class (argmax)", argmax.urgent_specificity,
                        ref.urgent_specificity, ours_ci=specificity))


def confusion_figure(results: RunResults, store: FigureStore) -> FigureRef:
    return store.add(
        encode_figure(confusion_matrix_figure(results.metrics), FIGURE_DPI),
        "confusion-matrix",
        "Confusion matrix",
        "Rows: true class; columns: predicted class. Each cell gives the number of test images; "
        "its colour is the share of its row (row-normalised), so the diagonal reads as per-class recall."
        + _absent_rows_note(results.metrics.classes_not_in_data),
    )
