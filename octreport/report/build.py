"""Build the one :class:`ReportContext` the templates receive from a run's document, drawing each
figure on the way. Each part is built by the module of its section; this module puts them together."""

from __future__ import annotations

from dataclasses import replace

from octreport._version import __version__
from octreport.document.run_document import RunDocument
from octreport.formatting import level_text
from octreport.report.assets import FigureStore
from octreport.report.audit_sections import checklist_facts, checklist_section, model_card_section
from octreport.report.context import ReportContext, SkippedFileRow
from octreport.report.data_section import data_section
from octreport.report.descriptions import (
    data_description,
    data_label,
    dataset_citation,
    model_description,
    reproduce_rows,
    version_rows,
)
from octreport.report.heatmap_sections import heatmap_checks_section
from octreport.report.image_sections import (
    attention_note,
    class_sections,
    error_cell,
    errors_note,
    filter_section,
    occlusion_note,
    training_figure,
)
from octreport.report.layer_sections import (
    conv_layer_rows,
    feature_map_note,
    filter_note,
    layer_health_note,
    layer_health_rows,
)
from octreport.report.metrics_sections import average_rows, class_rows, confusion_figure, referral_section
from octreport.report.shift_section import data_shift_section
from octreport.report.statistics_sections import calibration_section, operating_point_section
from octreport.report.summary import summary


def build_report_context(document: RunDocument, store: FigureStore, image_format: str = "png") -> ReportContext:
    """The context of ``templates/base.html`` for a finished run, drawing each figure into ``store``."""
    results, card = document.results, document.card
    class_names = results.data.class_names
    audit, shift, intervals = results.data_audit, results.data_shift, results.statistics.intervals
    citation = dataset_citation(results)
    # The figures are drawn in this order (an assets folder names its files in the order drawn).
    by_class = class_sections(results.visuals.shown, class_names, store, image_format)
    training = training_figure(results, store)
    error_cells = tuple(error_cell(cell, class_names, store, image_format) for cell in results.error_gallery)
    operating = operating_point_section(results.statistics, store, results.referral_rule)
    data = None if audit is None else data_section(audit, results.data.root, class_names, store, image_format)
    data_shift = None if shift is None else data_shift_section(shift, results.group_metrics, store)
    checks = heatmap_checks_section(results, store)
    calibration = calibration_section(results.statistics, store)
    confusion = confusion_figure(results, store)
    kernels = "kernels" in results.report_config.filter_views
    filters = tuple(filter_section(f, store, image_format, class_names, kernels) for f in results.visuals.filters)
    context = ReportContext(
        title=f"Model audit: {results.model.name}",
        subtitle=f"{len(class_names)} classes ({', '.join(class_names)}), data from {data_label(results)}",
        generated_at=results.started_at,
        octreport_version=__version__,
        model_description=model_description(results),
        data_description=data_description(results),
        summary=summary(results, document.gates),
        class_rows=class_rows(results),
        average_rows=average_rows(results),
        referral=referral_section(results),
        interval_note=intervals.describe(),
        interval_level=level_text(intervals.level),
        calibration=calibration,
        operating_point=operating,
        data=data,
        data_shift=data_shift,
        heatmap_checks=checks,
        confusion_figure=confusion,
        training_figure=training,
        conv_layers=conv_layer_rows(results),
        layer_selection_note=results.layer_selection.reason,
        feature_map_note=feature_map_note(results),
        class_sections=by_class,
        filter_note=filter_note(results),
        filter_sections=filters,
        data_warnings=results.data_warnings,
        skipped_files=tuple(SkippedFileRow(str(s.path), s.reason) for s in results.skipped),
        reproduce_command=results.command_line or "(called from Python: octreport.make_report)",
        reproduce=reproduce_rows(results),
        versions=version_rows(),
        citation=citation,
        gates=document.gates,
        comparison=document.comparison,
        attention_note=attention_note(results),
        occlusion_note=occlusion_note(results),
        layer_health_note=layer_health_note(results),
        layer_health=layer_health_rows(results),
        errors_note=errors_note(results),
        error_cells=error_cells,
        model_card=model_card_section(card),
    )
    # The checklist links to the sections this report shows, so it is made from the context without it.
    shown = {section.anchor: context.sections[section.anchor] for section in context.body}
    return replace(context, checklist=checklist_section(checklist_facts(results, card, shown, citation is not None), shown))
