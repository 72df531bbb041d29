"""The report's statistics sections: calibration and confidence (reliability, ECE, Brier,
temperature scaling, selective prediction) and the urgent-referral operating point, drawn and
stored as figure references with their tables."""

from __future__ import annotations

from octreport.drawing.evaluation_figures import reliability_figure, selective_figure, urgent_roc_figure
from octreport.drawing.export import encode_figure
from octreport.evaluation.calibration import uniform_brier_score
from octreport.evaluation.referral import KERMANY_2018_REFERENCE
from octreport.evaluation.referral_rule import ReferralRule
from octreport.evaluation.statistics import PredictionStatistics
from octreport.formatting import pct
from octreport.report.assets import FIGURE_DPI, FigureStore
from octreport.report.context import CalibrationSection, OperatingPointSection, SelectiveRowView, ThresholdRowView
from octreport.report.views import KeyValue


def calibration_section(statistics: PredictionStatistics, store: FigureStore) -> CalibrationSection:
    calibration, selective = statistics.calibration, statistics.selective
    scaling = calibration.temperature
    temperature_rows = () if scaling is None else (
        KeyValue("Temperature T (fitted on validation)", f"{scaling.temperature:.3f}"),
        KeyValue("Validation NLL: as is → scaled", f"{scaling.val_nll_before:.3f} → {scaling.val_nll_after:.3f}"),
        KeyValue("Test NLL: as is → scaled", f"{scaling.test_nll_before:.3f} → {scaling.test_nll_after:.3f}"),
        KeyValue("Test ECE: as is → scaled", f"{calibration.ece:.3f} → {scaling.test_ece_after:.3f}"),
        KeyValue("Test Brier score: as is → scaled", f"{calibration.brier:.3f} → {scaling.test_brier_after:.3f}"),
    )
    return CalibrationSection(
        figure=store.add(
            encode_figure(reliability_figure(calibration), FIGURE_DPI),
            "reliability", "Reliability diagram",
            "Top: each bar is the share of test images classified correctly among those whose confidence (largest "
            "class probability) falls in that tenth of the range; the dots mark the bins' mean confidence and the "
            "dashed line perfect calibration. Bars below the line: overconfident. Bottom: images per bin.",
        ),
        reading=calibration.reading,
        rows=(
            KeyValue("Expected calibration error (ECE, 10 bins)", f"{calibration.ece:.3f}"),
            KeyValue("Brier score (0 best, 2 worst)", f"{calibration.brier:.3f}"),
            KeyValue("Negative log-likelihood", f"{calibration.nll:.3f}"),
            KeyValue("Mean confidence", pct(calibration.mean_confidence)),
            KeyValue("Accuracy", pct(calibration.accuracy)),
        ),
        explanation=(
            "ECE: the gap between confidence and accuracy, averaged over the confidence bins and weighted by the "
            "images in each. Brier score: the mean squared difference between the predicted probabilities and the "
            f"true class (a uniform guess over {len(statistics.intervals.per_class)} classes scores "
            f"{uniform_brier_score(len(statistics.intervals.per_class)):.2f})."
        ),
        temperature_rows=temperature_rows,
        temperature_note=calibration.temperature_note,
        selective_figure=store.add(
            encode_figure(selective_figure(selective), FIGURE_DPI),
            "selective-prediction", "Accuracy against coverage",
            "Scans ordered by the model's confidence; going right, the least confident are referred to a human "
            "and the accuracy is measured on the scans the model still decides.",
        ),
        selective_rows=tuple(SelectiveRowView(r.referred_share, r.n_kept, r.accuracy) for r in selective.rows),
        selective_reading=selective.reading,
    )


def operating_point_section(statistics: PredictionStatistics, store: FigureStore,
                            rule: ReferralRule | None = None) -> OperatingPointSection | None:
    """The ROC curve with the report's rule marked, the threshold table, and the rule named with its
    provenance (``rule``: None in results built by hand)."""
    point = statistics.urgent
    if point is None:
        return None
    ref = KERMANY_2018_REFERENCE
    rows = [ThresholdRowView(r.threshold, r.sensitivity, r.specificity, r.flagged_share, r.label) for r in point.rows]
    if point.reference_match is not None:
        m = point.reference_match
        rows.append(ThresholdRowView(m.threshold, m.sensitivity, m.specificity, m.flagged_share, m.label))
    used = point.used
    return OperatingPointSection(
        figure=store.add(
            encode_figure(urgent_roc_figure(point), FIGURE_DPI),
            "urgent-roc", "Urgent-referral ROC curve",
            "Each point of the curve is one threshold on P(CNV) + P(DME): scans at or above it are called urgent. "
            f"The filled dot is the rule this report's metrics use ({point.used_rule}); the open "
            f"square is {ref.source} (sensitivity {ref.urgent_sensitivity:.1%}, specificity {ref.urgent_specificity:.1%}). "
            "The right panel enlarges the top-left corner.",
        ),
        explanation=(
            f"{point.n_urgent:,} urgent (CNV or DME) and {point.n_non_urgent:,} non-urgent test scans. Lowering the "
            "threshold finds more urgent cases (sensitivity) at the cost of calling more non-urgent scans urgent "
            "(lower specificity); the table shows the trade at a few thresholds."
        ),
        rows=tuple(rows),
        used_note=(
            f"The rule the report uses reaches sensitivity {pct(used.true_positive_rate)} and specificity "
            f"{pct(used.specificity)} on these scans."
        ),
        rule=point.used_rule,
        rule_provenance="" if rule is None else rule.provenance(),
    )
