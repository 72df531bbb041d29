"""The screening report: unlabelled scans through a model, no accuracy claimed. What the model
predicts and how sure it is, what its referral rule and selective prediction would do, the data
shift against its training scans, feature maps and Grad-CAM of a sample, and the data audit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from octreport._version import __version__
from octreport.audit.gates import GateResult
from octreport.document.screening_document import ScreeningDocument
from octreport.drawing.export import encode_figure
from octreport.drawing.screening_figures import screening_figure
from octreport.report.assets import FIGURE_DPI, FigureStore
from octreport.report.context import SkippedFileRow
from octreport.report.image_views import ClassSection
from octreport.report.data_section import data_section
from octreport.report.data_views import DataSection, DataShiftSection
from octreport.report.image_sections import class_sections
from octreport.report.layout import SinglePage
from octreport.report.sections import TocEntry, section_entries
from octreport.report.shift_section import data_shift_section
from octreport.report.views import FigureRef, KeyValue

SCREENING_TEMPLATE = "screening.html"
NO_LABELS = ("These scans have no labels: this report claims no accuracy, sensitivity or specificity. It shows what "
             "the model would do with them, and whether they look like the scans it was trained on.")


@dataclass(frozen=True)
class ScreeningReport(SinglePage):
    """What ``templates/screening.html`` receives (as ``report``)."""

    figure: FigureRef
    predicted: tuple[KeyValue, ...]
    referral: tuple[KeyValue, ...]
    """Under the model's referral rule (``referral_rule``)."""
    referral_rule: str
    """The rule and where it came from: ``P(CNV) + P(DME) >= 0.12 (chosen on the validation split)``."""
    referral_provenance: str
    argmax_referral: tuple[KeyValue, ...]
    """Under the argmax rule, shown beside ``referral``; empty when the rule is argmax."""
    deferrals: tuple[KeyValue, ...]
    data_shift: DataShiftSection
    data: DataSection
    class_sections: tuple[ClassSection, ...]
    feature_map_note: str
    attention_note: str
    skipped_files: tuple[SkippedFileRow, ...]
    gates: tuple[GateResult, ...] = ()
    occlusion_note: str | None = None
    sections: Mapping[str, TocEntry] = field(default_factory=section_entries)


def build_screening_report(document: ScreeningDocument, store: FigureStore, image_format: str = "jpeg") -> ScreeningReport:
    results = document.results
    screening, names, data = results.screening, results.class_names, results.data
    shown = class_sections(results.visuals.shown, names, store, image_format)
    figure = store.add(encode_figure(screening_figure(screening), FIGURE_DPI), "screening", "Predicted class and confidence",
                       "Left: how many scans the model assigns to each class. Right: how sure it is (the top class "
                       "probability); a scan below a dashed threshold would be deferred to a human.")
    n = screening.n_images
    return ScreeningReport(
        title=f"Screening: {results.model.name} on {data.root.name}",
        subtitle=f"{n} unlabelled scans from {data.root}; the model's classes: {', '.join(names)}",
        generated_at=results.started_at,
        octreport_version=__version__,
        data_description=(KeyValue("Folder", str(data.root)), KeyValue("Model", results.model_source),
                          KeyValue("Scans screened", str(n)), KeyValue("Skipped files", str(len(results.skipped)))),
        headline=_headline(document),
        figure=figure,
        predicted=tuple(KeyValue(name, _share(count, n)) for name, count in zip(names, screening.predicted_counts)),
        referral=tuple(KeyValue(decision, _share(count, n)) for decision, count in screening.referral_counts or ()),
        referral_rule="" if screening.rule is None else screening.rule.labelled,
        referral_provenance="" if screening.rule is None else screening.rule.provenance(),
        argmax_referral=(() if screening.rule is None or screening.rule.threshold is None else
                         tuple(KeyValue(decision, _share(count, n))
                               for decision, count in screening.argmax_referral_counts or ())),
        deferrals=tuple(KeyValue(f"confidence below {d.threshold:.0%}", _share(d.count, n)) for d in screening.deferrals),
        data_shift=data_shift_section(results.shift, (), store),
        data=data_section(results.audit, data.root, data.class_names, store, image_format),
        class_sections=shown,
        feature_map_note=("A sample of the scans, drawn with the seed: for each, the feature maps of the layers drawn "
                          "(each map scaled to its own range, viridis) and the Grad-CAM map of the predicted class."),
        attention_note=(f"{results.visuals.gradcam_caption} Red marks the regions that raised the score of the predicted "
                        "class. Without labels, nothing here says whether the prediction is right."),
        skipped_files=tuple(SkippedFileRow(str(s.path), s.reason) for s in results.skipped),
        gates=document.gates,
    )


def _share(count: int, total: int) -> str:
    return f"{count} ({count / total:.1%})"


def _headline(document: ScreeningDocument) -> str:
    results = document.results
    screening, shift = results.screening, results.shift
    top = max(zip(screening.predicted_counts, results.class_names))
    text = f"{NO_LABELS} Most scans are predicted {top[1]} ({top[0]} of {screening.n_images})."
    if screening.rule is not None and screening.referral_counts:
        urgent = dict(screening.referral_counts)["urgent referral"]
        text += f" The model's referral rule ({screening.rule.labelled}) would refer {urgent} urgently"
        if screening.rule.threshold is not None and screening.argmax_referral_counts:
            text += f"; the predicted class alone (argmax) {dict(screening.argmax_referral_counts)['urgent referral']}"
        text += "."
    if shift.findings:
        text += f" Data shift: {len(shift.findings)} material difference(s) from the training scans ({shift.findings[0].text})"
    elif shift.note:
        text += f" {shift.note}"
    else:
        text += " The scans were acquired and exported like the training scans: no material difference."
    return text
