"""Build the one :class:`ReportContext` the templates receive, drawing each figure on the way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from octreport._version import __version__
from octreport.audit.gates import GateResult
from octreport.drawing.export import encode_figure
from octreport.drawing.figures import confusion_matrix_figure
from octreport.evaluation.errors_gallery import worst_confusion
from octreport.evaluation.intervals import ClassIntervals
from octreport.evaluation.metrics import PerClassMetrics
from octreport.evaluation.referral import KERMANY_2018_REFERENCE
from octreport.formatting import level_text, with_ci
from octreport.report.assets import FigureStore
from octreport.report.audit_sections import checklist_facts, checklist_section, model_card_section
from octreport.report.context import (
    AverageRow,
    ClassMetricsRow,
    ClassSection,
    ConvLayerRow,
    GateRow,
    KeyValue,
    LayerHealthRow,
    ReferralRow,
    ReferralSection,
    ReportContext,
    SkippedFileRow,
    Summary,
    TocEntry,
    section_entries,
)
from octreport.report.heatmap_sections import heatmap_checks_section
from octreport.provenance import package_versions
from octreport.report.data_section import data_section
from octreport.report.shift_section import data_shift_section, shift_warning
from octreport.report.statistics_sections import calibration_section, operating_point_section
from octreport.resources import sample_data_dir
from octreport.document.results import RunResults
from octreport.document.run_document import RunDocument
from octreport.report.image_sections import (
    FIGURE_DPI,
    class_sections,
    error_cell,
    filter_section,
    shape_text,
    sizes_text,
    training_figure,
)

DATASET_CITATION = (
    "Kermany, D.; Zhang, K.; Goldbaum, M. (2018), Large Dataset of Labeled Optical Coherence Tomography (OCT) "
    "and Chest X-Ray Images, Mendeley Data, doi:10.17632/rscbjbr9sj, CC BY 4.0. Paper: Kermany et al., "
    "Identifying Medical Diagnoses and Treatable Diseases by Image-Based Deep Learning, Cell 172(5):1122-1131, 2018."
)


def build_report_context(document: RunDocument, store: FigureStore, image_format: str = "png") -> ReportContext:
    """The context of ``templates/base.html`` for a finished run, drawing each figure into ``store``."""
    results, gates, comparison, card = document.results, document.gates, document.comparison, document.card
    metrics = results.metrics
    class_names = results.data.class_names
    by_class = class_sections(results.visuals.shown, class_names, store, image_format)
    warnings = list(results.data_warnings)
    training = training_figure(results, store)
    error_cells = tuple(error_cell(cell, class_names, store, image_format) for cell in results.error_gallery)
    sections = section_entries()
    operating = operating_point_section(results.statistics, store)
    audit = results.data_audit
    data = None if audit is None else data_section(audit, results.data.root, class_names, store, image_format)
    shift = None if results.data_shift is None else data_shift_section(results.data_shift, results.group_metrics, store)
    checks = heatmap_checks_section(results, store)
    toc = _toc(sections, by_class, comparison=comparison is not None, training=training is not None,
               errors=bool(error_cells), operating_point=operating is not None, data=data is not None,
               heatmap_checks=checks is not None, data_shift=shift is not None)
    intervals = results.statistics.intervals
    citation = None if _is_bundled_sample(results) else (DATASET_CITATION if results.referral else None)
    shown = {entry.anchor: entry for entry in toc if entry.level == 1}
    return ReportContext(
        title=f"Model audit: {results.model.name}",
        subtitle=f"{len(class_names)} classes ({', '.join(class_names)}), data from {data_label(results)}",
        generated_at=results.started_at,
        octreport_version=__version__,
        model_description=_model_description(results),
        data_description=_data_description(results),
        toc=toc,
        sections=sections,
        summary=_summary(results, warnings, gates),
        class_rows=tuple(_class_row(c, intervals.for_class(c.name)) for c in metrics.per_class),
        average_rows=(
            AverageRow("macro average", metrics.macro.precision, metrics.macro.recall, metrics.macro.f1,
                       intervals.macro_precision, intervals.macro_recall, intervals.macro_f1),
            AverageRow("weighted average", metrics.weighted.precision, metrics.weighted.recall, metrics.weighted.f1,
                       intervals.weighted_precision, intervals.accuracy, intervals.weighted_f1),
        ),
        referral=_referral_section(results),
        interval_note=intervals.describe(),
        interval_level=level_text(intervals.level),
        calibration=calibration_section(results.statistics, store),
        operating_point=operating,
        data=data,
        data_shift=shift,
        heatmap_checks=checks,
        confusion_figure=store.add(
            encode_figure(confusion_matrix_figure(metrics), FIGURE_DPI),
            "confusion-matrix",
            "Confusion matrix",
            "Rows: true class; columns: predicted class. Each cell gives the number of test images; "
            "its colour is the share of its row (row-normalised), so the diagonal reads as per-class recall.",
        ),
        training_figure=training,
        conv_layers=tuple(_layer_row(layer, results.layer_selection.is_drawn(layer)) for layer in results.layers),
        layer_selection_note=results.layer_selection.reason,
        feature_map_note=(
            "For each image and each convolutional layer drawn, one grid of that layer's output channels "
            f"(feature maps) for that image, computed in one forward pass. {results.layer_selection.reason} Channels shown: "
            f"{_channel_rule(results)}; the number under each tile is the channel index. Each map is scaled "
            "from its own minimum to its own maximum (so brightness is not comparable between tiles) and "
            "drawn with the viridis colour map (dark blue low, yellow high)."
        ),
        class_sections=by_class,
        filter_note=_filter_note(results),
        filter_sections=tuple(
            filter_section(f, store, image_format, results.data.class_names, "kernels" in results.report_config.filter_views)
            for f in results.visuals.filters
        ),
        data_warnings=tuple(warnings),
        skipped_files=tuple(SkippedFileRow(str(s.path), s.reason) for s in results.skipped),
        reproduce_command=results.command_line or "(called from Python: octreport.make_report)",
        reproduce=_reproduce(results),
        versions=tuple(KeyValue(name, version) for name, version in package_versions().items()),
        citation=citation,
        gates=tuple(GateRow(g.name, g.threshold, g.value, g.passed, g.message, g.compared) for g in gates),
        comparison=comparison,
        attention_note=(
            f"{results.visuals.gradcam_caption} ({results.visuals.gradcam_layer.path} is the model's last convolutional layer.) "
            "Red marks the regions that raised the score of the class named, blue those that did not; the heat map "
            "is scaled to its own maximum, so compare where, not how hot. Shown for the predicted class, and for the "
            "true class too when the prediction is wrong."
        ),
        occlusion_note=_occlusion_note(results),
        layer_health_note=(
            "Measured on every test image in the evaluation pass. A filter is dead when its output never rose "
            f"above {_epsilon(results)} on any image (the strict count: never above zero); sparsity is the share of "
            "output values at or below that. Layers flagged have at least half of their filters dead. For a conv "
            "layer without its own activation (followed by batch normalisation and ReLU) the count is only a hint: "
            "see the basis column. Filter norms: L2 norm of each filter's weights; CV = standard deviation / mean."
        ),
        layer_health=tuple(_health_row(h) for h in results.layer_health),
        errors_note=(
            "For each pair of true and predicted class that the model confused, the mistakes it made with the most "
            f"confidence (up to {results.report_config.errors_per_cell} per pair), each with Grad-CAM for the class it "
            "wrongly predicted: what in the image drew the model to the wrong answer."
        ),
        error_cells=error_cells,
        model_card=model_card_section(card),
        checklist=checklist_section(checklist_facts(results, card, shown, citation is not None), shown),
    )


def _toc(
    sections: Mapping[str, TocEntry], by_class: Sequence[ClassSection], *, comparison: bool, training: bool,
    errors: bool, operating_point: bool = False, data: bool = False, heatmap_checks: bool = False,
    data_shift: bool = False,
) -> tuple[TocEntry, ...]:
    """The contents, in the order of base.html: the sections this report shows, each entry the
    section's own (so it reads as the section's heading does), with one level-2 entry per class."""
    toc = [sections["summary"]] + ([sections["data"]] if data else []) + ([sections["data-shift"]] if data_shift else [])
    toc.append(sections["model-card"])
    if comparison:
        toc.append(sections["comparison"])
    toc += [sections["metrics"], sections["calibration"]]
    if operating_point:
        toc.append(sections["operating-point"])
    toc.append(sections["confusion"])
    if training:
        toc.append(sections["training"])
    toc += [sections["layers"], sections["feature-maps"]]
    toc += [TocEntry(section.anchor, section.title, level=2) for section in by_class]
    toc.append(sections["attention"])
    if heatmap_checks:
        toc.append(sections["heatmap-checks"])
    toc += [sections["filters"], sections["layer-health"]]
    if errors:
        toc.append(sections["errors"])
    toc += [sections["warnings"], sections["appendix"], sections["checklist"]]
    return tuple(toc)


def data_label(results: RunResults) -> str:
    """The data folder as the report names it: the bundled sample data by name (installed, its path
    is a long site-packages one), any other folder by its path."""
    return "octreport's bundled synthetic sample data (sample_data/)" if _is_bundled_sample(results) else str(results.data.root)


def _summary(results: RunResults, warnings: list[str], gates: Sequence[GateResult]) -> Summary:
    metrics, referral = results.metrics, results.referral
    failed = [g for g in gates if not g.passed]
    if metrics.at_chance_level():
        key_warning = (
            f"Accuracy {metrics.accuracy:.1%} is at chance level ({metrics.chance_level:.1%}, always guessing the "
            "largest class): the model has not learned to tell the classes apart."
        )
    elif failed:
        key_warning = f"{len(failed)} quality gate(s) failed: " + "; ".join(g.message for g in failed)
    else:
        key_warning = warnings[0] if warnings else None
    intervals = results.statistics.intervals
    urgent = intervals.referral
    evaluated = "test images" if results.train_config is not None else "evaluated images"
    headline = (
        f"{with_ci(intervals.accuracy)} of {metrics.n_images} {evaluated} classified correctly "
        f"(chance level {metrics.chance_level:.1%})."
    )
    if referral is not None and referral.urgent_sensitivity is not None and urgent is not None:
        headline += (
            f" Urgent referral (CNV or DME) detected with sensitivity {with_ci(urgent.urgent_sensitivity)}"
            + (f" and specificity {with_ci(urgent.urgent_specificity)}." if referral.urgent_specificity is not None else ".")
        )
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
        key_warning=key_warning,
        headline=headline,
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
    )


def _referral_section(results: RunResults) -> ReferralSection | None:
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
            ReferralRow("Urgent-referral ROC AUC", referral.urgent_roc_auc, ref.urgent_roc_auc,
                        ours_ci=ci and ci.urgent_roc_auc),
            ReferralRow("Weighted error", referral.weighted_error, ref.weighted_error, lower_is_better=True,
                        ours_ci=ci and ci.weighted_error),
        ),
        reference_source=ref.source,
        explanation=(
            "CNV and DME need urgent referral, DRUSEN routine referral, NORMAL observation. Urgent-vs-rest "
            "sensitivity and specificity use the predicted class; the ROC AUC scores each image by "
            "P(CNV) + P(DME). Weighted error: each error costs 4 when an urgent case is called NORMAL, 2 when "
            "it is called DRUSEN, 1 otherwise, summed and divided by the number of images "
            f"({referral.total_penalty} penalty points over {referral.n_images} images here)."
        ),
    )


def _class_row(c: PerClassMetrics, ci: ClassIntervals) -> ClassMetricsRow:
    return ClassMetricsRow(c.name, c.precision, c.recall, c.specificity, c.f1, c.roc_auc, c.support, c.predicted_count,
                           ci.precision, ci.recall, ci.specificity, ci.f1, ci.roc_auc)


def _health_row(health) -> LayerHealthRow:
    return LayerHealthRow(
        path=health.layer.path,
        filters=int(health.channel_max.shape[0]),
        dead_share=health.dead_share,
        dead_strict_share=health.dead_strict_share,
        sparsity=health.sparsity,
        norm_min=health.norms.minimum,
        norm_median=health.norms.median,
        norm_max=health.norms.maximum,
        norm_cv=health.norm_cv,
        basis=health.basis,
        flagged=health.flagged,
    )


def _epsilon(results: RunResults) -> str:
    return f"{results.layer_health[0].epsilon:g}" if results.layer_health else "a small epsilon"


def _occlusion_note(results: RunResults) -> str | None:
    config = results.report_config
    if not config.occlusion:
        return None
    return (
        f"Occlusion sensitivity (as Kermany et al. 2018): a black box of {config.occlusion_patch} px of the original "
        f"image, moved in steps of {config.occlusion_stride} px, hides part of the scan; the colour shows how much the "
        "predicted class's probability dropped with that part hidden (red: a large drop, so the model relies on it). "
        "All positions of one image are evaluated in a few batched forward passes."
    )


def _filter_note(results: RunResults) -> str:
    config = results.report_config
    return (
        f"The first {config.filters_per_layer} filters (kernels) of each convolutional layer drawn, or all when it has "
        f"fewer; the number under each tile is the filter index. {results.layer_selection.reason} A first layer on RGB input shows each filter as a "
        "colour patch; other kernels are reduced to one 2-D patch as each caption says, and drawn with a diverging "
        "colour map centred on zero (red positive, blue negative), each filter scaled by its own largest absolute "
        "weight. The L2 norms summarise all filters of the layer."
        + _views_note(config.filter_views)
    )


def _views_note(views) -> str:
    parts = []
    if "kernels" not in views:
        parts.append(" Kernel grids were left out (--filter-views).")
    if "patches" in views:
        parts.append(
            " Below the kernels, what the first filters respond to: for each filter (a row), the test images where its "
            "output is strongest, kept during the evaluation pass over every test image, as the patch of the image "
            "that output position sees (its receptive field), with the image's true class.")
    if "maximisation" in views:
        parts.append(
            " Then the input pattern each of those filters responds to most, found by gradient ascent on the input "
            "(activation maximisation): a synthetic pattern, not a test image.")
    return "".join(parts)


def _channel_rule(results: RunResults) -> str:
    n = results.report_config.maps_per_layer
    if results.report_config.channel_selection == "first":
        return f"the first {n} channels (all when a layer has fewer)"
    return f"the {n} channels with the strongest mean activation for that image, strongest first (all when a layer has fewer)"


def _model_description(results: RunResults) -> tuple[KeyValue, ...]:
    model = results.model
    rows = [
        KeyValue("Model", f"{model.name} ({results.model_source})"),
        KeyValue("Parameters", f"{model.count_params():,}"),
        KeyValue("Input", results.preprocessing.describe()),
    ]
    if results.input_scale is not None:
        rows.append(KeyValue("Input convention", results.input_scale.reason))
    drawn = len(results.layer_selection.drawn)
    rows.append(KeyValue("Convolutional layers", str(len(results.layers)) if drawn == len(results.layers)
                         else f"{len(results.layers)} ({drawn} drawn)"))
    metadata = results.metadata
    if metadata is not None and metadata.history:
        training = metadata.training
        rows.append(KeyValue(
            "Training",
            f"{training.get('architecture', '?')} network, {len(metadata.history.get('loss', []))} epochs run, "
            f"weights from epoch {metadata.best_epoch}, {training.get('train_images', '?')} training and "
            f"{training.get('val_images', '?')} validation images",
        ))
    return tuple(rows)


def _data_description(results: RunResults) -> tuple[KeyValue, ...]:
    """The data block: every split for a run that trained; for one that only evaluates a model,
    the test split alone and where it came from."""
    data = results.data
    counts = data.counts()
    if results.train_config is None:
        test = counts["test"]
        return (
            KeyValue("Folder", data_label(results)),
            KeyValue("Evaluated", data.split_note),
            KeyValue("Evaluated images", f"{sum(test.values())} ({', '.join(f'{k} {v}' for k, v in test.items())})"),
            KeyValue("Skipped files", str(len(results.skipped))),
        )
    return (
        KeyValue("Folder", data_label(results)),
        KeyValue("Splits", data.split_note),
        *(
            KeyValue(f"{split.capitalize()} images", f"{sum(c.values())} ({', '.join(f'{k} {v}' for k, v in c.items())})")
            for split, c in counts.items()
        ),
        KeyValue("Skipped files", str(len(results.skipped))),
    )


def _reproduce(results: RunResults) -> tuple[KeyValue, ...]:
    rows = [KeyValue("Seed", str(results.report_config.seed)), KeyValue("Preprocessing", results.preprocessing.describe())]
    if results.train_config is not None:
        config = results.train_config
        rows += [
            KeyValue("Architecture", config.architecture),
            KeyValue("Training", f"at most {config.epochs} epochs, batch {config.batch_size}, learning rate {config.learning_rate}, "
                     f"augmentation {_augmentation_text(config)}, class weights {'on' if config.class_weights else 'off'}, "
                     f"early-stopping patience {config.early_stopping_patience}"),
            KeyValue("Reproducibility", "deterministic: the same seed, data and machine give bit-identical weights"
                     if config.deterministic else "fast, nondeterministic (--fast-nondeterministic): a rerun may differ"),
        ]
    rows.append(KeyValue("Started", results.started_at))
    return tuple(rows)


def _augmentation_text(config) -> str:
    augmentation = config.augmentation()
    return f"on ({augmentation.describe()})" if augmentation else "off"


def _layer_row(layer, drawn: bool = True) -> ConvLayerRow:
    return ConvLayerRow(
        index=layer.index + 1,
        path=layer.path,
        kind=layer.kind,
        kernel=sizes_text(layer.kernel_size),
        filters=layer.filters,
        strides=sizes_text(layer.strides),
        output_shape=shape_text(layer.output_shape),
        params=layer.params,
        drawn=drawn,
    )


def _is_bundled_sample(results: RunResults) -> bool:
    try:
        return results.data.root.resolve() == sample_data_dir().resolve()
    except FileNotFoundError:
        return False


