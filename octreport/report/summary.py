"""The report's Summary: the headline, the big numbers and the one warning a reader must see."""

from __future__ import annotations

from collections.abc import Sequence

from octreport.audit.gates import GateResult
from octreport.document.results import RunResults
from octreport.evaluation.errors_gallery import worst_confusion
from octreport.evaluation.intervals import urgent_wilson
from octreport.formatting import with_ci
from octreport.report.context import Summary
from octreport.report.shift_section import shift_warning


def summary(results: RunResults, gates: Sequence[GateResult]) -> Summary:
    metrics, referral = results.metrics, results.referral
    intervals = results.statistics.intervals
    urgent = intervals.referral
    worst = worst_confusion(results.confusion_cells)
    checks = results.heatmap_checks
    return Summary(
        dead_filter_flags=tuple(
            f"{h.layer.path}: {h.dead_share:.0%} of {h.channel_max.shape[0]} filters never active" for h in results.layer_health if h.flagged
        ),
        worst_confusion=(
            None if worst is None else
            f"{worst.true_name} taken for {worst.predicted_name}: {worst.count} test image(s), "
            f"mean confidence {worst.mean_confidence:.0%}"
        ),
        accuracy=metrics.accuracy,
        chance_level=metrics.chance_level,
        n_test_images=metrics.n_images,
        urgent_sensitivity=referral.urgent_sensitivity if referral else None,
        urgent_specificity=referral.urgent_specificity if referral else None,
        macro_f1=metrics.macro.f1,
        key_warning=_key_warning(results, gates),
        headline=_headline(results),
        accuracy_ci=intervals.accuracy,
        urgent_sensitivity_ci=None if urgent is None else urgent.urgent_sensitivity,
        urgent_specificity_ci=None if urgent is None else urgent.urgent_specificity,
        macro_f1_ci=intervals.macro_f1,
        calibration_reading=results.statistics.calibration.reading,
        selective_reading=results.statistics.selective.reading or None,
        data_finding=None if results.data_audit is None else results.data_audit.worst_finding(),
        model_warnings=results.model_warnings,
        heatmap_reading=None if checks is None else checks.faithfulness.reading or None,
        heatmap_flag=(checks.sanity.reading if checks is not None and checks.sanity is not None and checks.sanity.flagged
                      else None),
        shift_warning=shift_warning(results.data_shift),
        **_argmax_beside(results),
    )


def _argmax_beside(results: RunResults) -> dict:
    """The rule the urgent numbers are of and, when it is a threshold, argmax's numbers (with their
    Wilson intervals) beside them: the strings the summary shows, built here, not in the template."""
    rule, argmax = results.referral_rule, results.argmax_referral
    if rule is None or results.referral is None:
        return {}
    if rule.threshold is None or argmax is None:
        return {"urgent_rule": f"Urgent referral rule: {rule.labelled}."}
    sensitivity, specificity = urgent_wilson(argmax, results.statistics.intervals.settings.level)
    return {"urgent_rule": f"Urgent referral rule: {rule.labelled}; beside it, the predicted class (argmax).",
            "urgent_sensitivity_hint": f"CNV or DME found as urgent; argmax: {with_ci(sensitivity)}",
            "urgent_specificity_hint": f"others kept out of urgent; argmax: {with_ci(specificity)}"}


def _key_warning(results: RunResults, gates: Sequence[GateResult]) -> str | None:
    """The one warning shown first: a model at chance level, else the failed gates, else the first data warning."""
    metrics = results.metrics
    failed = [g for g in gates if not g.passed]
    if metrics.at_chance_level():
        return (
            f"Accuracy {metrics.accuracy:.1%} is at chance level ({metrics.chance_level:.1%}, always guessing the "
            "largest class): the model has not learned to tell the classes apart."
        )
    if failed:
        return f"{len(failed)} quality gate(s) failed: " + "; ".join(g.message for g in failed)
    return results.data_warnings[0] if results.data_warnings else None


def _headline(results: RunResults) -> str:
    metrics, referral = results.metrics, results.referral
    intervals = results.statistics.intervals
    urgent = intervals.referral
    evaluated = "test images" if results.train_config is not None else "evaluated images"
    headline = (
        f"{with_ci(intervals.accuracy)} of {metrics.n_images} {evaluated} classified correctly "
        f"(chance level {metrics.chance_level:.1%})."
    )
    if referral is not None and referral.urgent_sensitivity is not None and urgent is not None:
        rule = "" if results.referral_rule is None else f" by the rule {results.referral_rule.text}"
        headline += (
            f" Urgent referral (CNV or DME) detected{rule} with sensitivity {with_ci(urgent.urgent_sensitivity)}"
            + (f" and specificity {with_ci(urgent.urgent_specificity)}." if referral.urgent_specificity is not None else ".")
        )
    elif referral is not None and referral.urgent_specificity is not None and urgent is not None:
        headline += (f" No urgent case in this data: {with_ci(urgent.urgent_specificity)} of the scans kept out of "
                     "urgent referral (specificity).")
    return headline + _classes_note(results)


def _classes_note(results: RunResults) -> str:
    """Which of the model's classes the data holds, and under which folder names."""
    absent = results.metrics.classes_not_in_data
    data = results.data
    renamed = [f"{name} from folder '{folder}'" for name, folder in zip(data.class_names, data.class_folders)
               if folder is not None and folder.strip().casefold() != name.strip().casefold()]
    note = ""
    if absent:
        note += (f" The data holds {len(data.class_names) - len(absent)} of the model's {len(data.class_names)} classes; "
                 f"not in this data: {', '.join(absent)} (no sensitivity is claimed for them).")
    if renamed:
        note += f" Classes read through --class-map: {', '.join(renamed)}."
    return note
