"""The model's stages of a run: evaluate it on the evaluated images (one streaming pass that also
measures layer health and keeps the top activations), the statistics of its predictions, and what
it sees and learned (feature maps, heat maps, filters, the errors gallery, the heat-map checks)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from octreport.cache import ArrayCache, weights_cache_folder
from octreport.config import ReportConfig
from octreport.data.dataset import PreparedData
from octreport.data.dicom_headers import DicomHeaderReads
from octreport.data.image_choice import choose_images
from octreport.data.image_facts import SplitFacts, split_keys
from octreport.data.layout import ImageItem, relative_name
from octreport.data.patients import PatientTable
from octreport.data.splits import patient_id
from octreport.engine.layer_health import LayerHealth
from octreport.engine.layer_selection import LayerSelection, choose_drawn_layers
from octreport.engine.layers import ConvLayerInfo, discover_conv_layers
from octreport.engine.top_activations import TopActivationsAccumulator
from octreport.engine.visuals import OcclusionSettings, Visuals, compute_filter_views, compute_visuals
from octreport.evaluation.error_images import GalleryCell, compute_error_gallery
from octreport.evaluation.errors_gallery import ConfusionCell, errors_gallery
from octreport.evaluation.heatmap_checks import HeatmapCheckSettings, HeatmapChecks, compute_heatmap_checks
from octreport.evaluation.metrics import ClassificationMetrics, compute_classification_metrics
from octreport.evaluation.predict import Predictions, evaluate_files, predict_items
from octreport.evaluation.prediction_spread import PredictionSpread, prediction_spread
from octreport.evaluation.referral import ReferralMetrics, compute_referral_metrics
from octreport.evaluation.referral_rule import ReferralRule, applied_rule
from octreport.evaluation.statistics import PredictionStatistics, compute_prediction_statistics
from octreport.pipeline.model_stage import GivenModel
from octreport.progress import stage

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class LookInside:
    """What the model stages found; :class:`~octreport.document.results.RunResults` takes each part."""

    predictions: Predictions
    metrics: ClassificationMetrics
    referral: ReferralMetrics | None
    """Under the report's referral rule (``rule``)."""
    rule: ReferralRule | None
    argmax_referral: ReferralMetrics | None
    """Under the argmax rule, to show beside ``referral`` (the same object when the rule is argmax)."""
    spread: PredictionSpread
    statistics: PredictionStatistics
    layers: tuple[ConvLayerInfo, ...]
    selection: LayerSelection
    health: tuple[LayerHealth, ...]
    confusion_cells: tuple[ConfusionCell, ...]
    visuals: Visuals
    error_gallery: tuple[GalleryCell, ...]
    heatmap_checks: HeatmapChecks | None
    evaluated_facts: SplitFacts
    """The image facts and file hashes of the evaluated images, from the evaluation pass's one read."""


def look_inside(data: PreparedData, given: GivenModel, config: ReportConfig, requested: tuple[ImageItem, ...] | None,
                timings: dict[str, float], patients: PatientTable | None = None,
                headers: DicomHeaderReads | None = None) -> LookInside:
    """Evaluate the model and look inside it; ``requested``: the images to show (None: drawn with
    the seed); ``patients``: who each image belongs to for the intervals' clusters, where file
    names do not say (DICOM PatientIDs, hashed); ``headers``: gathers the DICOM header facts from
    the evaluation pass's one read of each file (and, when ``patients`` is None, gives them)."""
    all_layers = discover_conv_layers(given.model)
    selection = choose_drawn_layers(all_layers, config.layer_names)
    top = TopActivationsAccumulator(all_layers) if "patches" in config.filter_views else None
    with stage(timings, "evaluate", log):
        evaluated = evaluate_files(given.model, all_layers, data.test, given.preprocessing, config.batch_size, top,
                                   on_read=headers)
        if patients is None and headers is not None:
            patients = headers.tables().patients
        predictions, health = evaluated.predictions, evaluated.health
        facts = SplitFacts(split_keys(data.root, {"test": data.test}), evaluated.facts,
                           evaluated.digests)
        metrics = compute_classification_metrics(predictions.labels, predictions.probabilities, data.class_names)
        rule, referral, argmax_referral = _referral(data, given, config, predictions)
        spread = prediction_spread(predictions.probabilities, predictions.labels, data.class_names)
    with stage(timings, "statistics", log):
        statistics = _statistics(data, given, config, predictions, metrics, referral, patients)
    with stage(timings, "visualize", log):
        shown = requested or choose_images(predictions.items, len(data.class_names), config.images_per_class, config.seed)
        occlusion = OcclusionSettings(config.occlusion_patch, config.occlusion_stride) if config.occlusion else None
        visuals = compute_visuals(
            given.model, selection.drawn, shown, given.preprocessing, config.maps_per_layer, config.channel_selection,
            config.filters_per_layer, config.filter_reduction, config.batch_size, occlusion, data.class_names,
        )
        cells = errors_gallery(predictions.labels, predictions.probabilities, predictions.items, data.class_names,
                               max(1, config.errors_per_cell))
        gallery = (compute_error_gallery(given.model, cells, given.preprocessing, visuals.gradcam_layer, config.batch_size)
                   if config.errors_per_cell else ())
    with stage(timings, "filter views", log):
        filters = compute_filter_views(
            given.model, visuals.filters, config.filter_views, top.result() if top is not None else (), data.test,
            given.preprocessing, data.root, config.filters_per_layer, config.seed,
            ArrayCache(weights_cache_folder(config.cache_dir)) if config.cache else None,
        )
        visuals = replace(visuals, filters=filters)
    checks = None
    if config.heatmap_checks:
        with stage(timings, "heatmap_checks", log):
            checks = _heatmap_checks(given, visuals, config)
    return LookInside(predictions, metrics, referral, rule, argmax_referral, spread, statistics, all_layers, selection,
                      health, cells, visuals, gallery, checks, facts)


def _referral(data: PreparedData, given: GivenModel, config: ReportConfig, predictions: Predictions):
    """``(rule, referral, argmax_referral)``: the referral rule the report applies (``--referral-threshold``,
    the model's stored rule, or argmax), the referral metrics under it, and under argmax."""
    rule = applied_rule(given.metadata.referral_rule if given.metadata else None, config.referral_threshold,
                        data.class_names)
    argmax = compute_referral_metrics(predictions.labels, predictions.probabilities, data.class_names)
    if rule is None or rule.threshold is None:
        return rule, argmax, argmax
    return rule, compute_referral_metrics(predictions.labels, predictions.probabilities, data.class_names,
                                          rule.threshold), argmax


def _heatmap_checks(given: GivenModel, visuals: Visuals, config: ReportConfig) -> HeatmapChecks:
    """Faithfulness curves and the randomisation check of the shown images' Grad-CAM maps for
    their predicted class (and their occlusion maps, when the report has them)."""
    shown = visuals.shown
    predicted = [s.predicted for s in shown]
    cams = [next(c.heatmap for c in s.gradcam if c.class_index == s.predicted) for s in shown]
    occlusion = [None if s.occlusion is None else s.occlusion.heatmap for s in shown]
    settings = HeatmapCheckSettings(steps=config.heatmap_steps, baseline=config.heatmap_baseline, seed=config.seed,
                                    batch_size=config.batch_size)
    return compute_heatmap_checks(given.model, np.stack([s.pixels for s in shown]), predicted, np.stack(cams),
                                  occlusion if config.occlusion else None, settings)


def _cluster(item: ImageItem, data: PreparedData, patients: PatientTable | None) -> str:
    """The patient an image counts under in the cluster bootstrap: from ``patients`` when it
    knows the image, else from its file name (or the image alone)."""
    known = patients.patient(relative_name(item.path, data.root)) if patients is not None else None
    return f"patient:{known}" if known else patient_id(item)


def _statistics(
    data: PreparedData, given: GivenModel, config: ReportConfig, predictions: Predictions,
    metrics: ClassificationMetrics, referral: ReferralMetrics | None, patients: PatientTable | None = None,
) -> PredictionStatistics:
    """Intervals (over patients when the file names tell them), calibration and operating points.

    Temperature scaling is fitted on the validation split only for a model trained in this run:
    for a loaded model, octreport cannot know which images it was tuned on.
    """
    validation, reason = None, ""
    if not config.temperature_scaling:
        reason = "Temperature scaling was not asked for (--no-temperature-scaling)."
    elif not given.trained_in_run:
        reason = ("Temperature scaling is fitted only for a model trained in this run: for a loaded model octreport "
                  "cannot tell which images were used to tune it.")
    elif not data.val:
        reason = "Temperature scaling needs a validation split, and this run has none."
    else:
        val = given.validation  # made by training: the rule was chosen on the same predictions
        if val is None:
            val = predict_items(given.model, data.val, given.preprocessing, config.batch_size)
        validation = (val.labels, val.probabilities)
    return compute_prediction_statistics(
        metrics, referral, predictions.probabilities, groups=[_cluster(item, data, patients) for item in predictions.items],
        settings=config.bootstrap, validation=validation, no_validation_reason=reason,
    )
