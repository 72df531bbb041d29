"""``metrics.json``: every number in the report, machine-readable, built from a run's results."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from octreport.data.layout import with_frame
from octreport.evaluation.predictions_file import PREDICTIONS_NAME
from octreport.engine.layer_health import layer_health_to_dict
from octreport.engine.layers import layers_to_json
from octreport.evaluation.errors_gallery import worst_confusion
from octreport.evaluation.heatmap_similarity import RECORDED_SIDE, downsample
from octreport.evaluation.intervals import urgent_wilson
from octreport.evaluation.referral import ARGMAX_RULE, KERMANY_2018_REFERENCE
from octreport.audit.model_card import ModelCard
from octreport.provenance import package_versions
from octreport.document.results import RunResults

SCHEMA_VERSION = 5  # 2: intervals, calibration, operating_point, selective_prediction; predictions.csv beside it
# 3: heatmap_checks (faithfulness, randomisation check), heatmap_maps (for the drift between runs)
# 4: data_shift (training and evaluated acquisition profiles, findings), group_metrics (per size and --groups)
# 5: referral.rule (the urgent-referral rule applied, its threshold and provenance), referral.argmax (with
#    the Wilson intervals of its sensitivity and specificity); the referral counts, sensitivity and
#    specificity are the rule's; predictions.csv's urgent column; data_audit lists near-duplicate
#    clusters (biggest first, bounded) instead of every pair; a class absent from the data has null
#    precision, recall and F1; data_shift names the DICOM devices


def _peak(heatmap: np.ndarray) -> list[int]:
    """Row and column (model-input pixels) of a heat map's largest value."""
    return [int(v) for v in np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)]


def image_key(path: Path, root: Path) -> str:
    """An image's path relative to the data folder (POSIX), or its absolute path when outside it:
    what runs are paired by."""
    for candidate, base in ((Path(path), Path(root)), (Path(path).resolve(), Path(root).resolve())):
        try:
            return candidate.relative_to(base).as_posix()
        except ValueError:
            continue
    return Path(path).resolve().as_posix()


def recorded_heatmaps(results: RunResults) -> list[dict]:
    """Each shown image's Grad-CAM maps, block-averaged to at most 16 x 16, for ``compare``."""
    names = results.data.class_names
    return [
        {"image": with_frame(image_key(s.item.path, results.data.root), s.item.frame), "class": names[cam.class_index],
         "predicted": cam.class_index == s.predicted,
         "map": [[round(float(v), 4) for v in row] for row in downsample(cam.heatmap, RECORDED_SIDE)]}
        for s in results.visuals.shown for cam in s.gradcam
    ]


def heatmap_checks_entry(results: RunResults) -> dict:
    """The faithfulness curves and the randomisation check, per shown image and on average."""
    checks = results.heatmap_checks
    if checks is None:
        return {"enabled": False}
    names = results.data.class_names
    per_image = [
        {"image": with_frame(image_key(s.item.path, results.data.root), s.item.frame), "class": names[image.class_index],
         "curves": {c.method: c.to_dict() for c in image.curves}}
        for s, image in zip(results.visuals.shown, checks.faithfulness.images)
    ]
    return {"enabled": True, **checks.to_dict(), "per_image": per_image}


ARGMAX_KEYS = ("urgent_sensitivity", "urgent_specificity", "true_positive", "false_negative", "true_negative",
               "false_positive")


def argmax_entry(results: RunResults) -> dict | None:
    """The urgent-referral counts under the argmax rule, beside the rule's (None: not computed), and
    the Wilson intervals of its sensitivity and specificity (``intervals``, at the report's level)."""
    argmax = results.argmax_referral
    if argmax is None:
        return None
    sensitivity, specificity = urgent_wilson(argmax, results.statistics.intervals.settings.level)
    return {"rule": ARGMAX_RULE, **{key: getattr(argmax, key) for key in ARGMAX_KEYS},
            "intervals": {"urgent_sensitivity": sensitivity.to_dict(), "urgent_specificity": specificity.to_dict()}}


def timings_entry(timings: Mapping[str, float]) -> dict[str, float]:
    """Seconds per stage so far (the PDF is rendered after metrics.json is written: see run.log)."""
    return {stage: round(seconds, 3) for stage, seconds in timings.items()}


def metrics_document(results: RunResults, card: ModelCard, timings: Mapping[str, float]) -> dict:
    """Every section of metrics.json but ``gates`` (judged on this document: :mod:`octreport.audit.gates`)."""
    data = results.data
    worst = worst_confusion(results.confusion_cells)
    metadata = results.metadata
    statistics = results.statistics
    return {
        "schema_version": SCHEMA_VERSION,
        "started_at": results.started_at,
        "model": {
            "name": results.model.name,
            "source": results.model_source,
            "parameters": int(results.model.count_params()),
            "preprocessing": results.preprocessing.to_dict(),
            "input_scale": None if results.input_scale is None else results.input_scale.to_dict(),
            "warnings": list(results.model_warnings),
        },
        "data": {
            "root": str(data.root),
            "layout": data.layout,
            "class_names": list(data.class_names),
            "split_note": data.split_note,
            "counts": data.counts(),
            # data holding some of the model's classes: the folder of each class, null where it is not in this data
            "class_folders": dict(zip(data.class_names, data.class_folders)) if data.class_folders else None,
            "evaluated": {  # which images the metrics below are about, and why those
                "split": data.evaluated_split,
                "images": len(data.test),
                "why": data.split_note,
            },
            "skipped_files": [s.to_dict() for s in results.skipped],
            "ignored_files": [str(p) for p in data.ignored_files],
            "outside_links_not_followed": [str(p) for p in data.outside_links],
            "warnings": list(results.data_warnings),
        },
        "data_audit": None if results.data_audit is None else results.data_audit.to_dict(),
        "data_shift": None if results.data_shift is None else results.data_shift.to_dict(),
        "group_metrics": [groups.to_dict() for groups in results.group_metrics],
        "classification": results.metrics.to_dict(),
        "referral": None if results.referral is None else {
            **results.referral.to_dict(),
            "rule": None if results.referral_rule is None else results.referral_rule.to_dict(),
            "argmax": argmax_entry(results),
            "reference": KERMANY_2018_REFERENCE.to_dict(),
        },
        "intervals": statistics.intervals.to_dict(),
        "calibration": statistics.calibration.to_dict(),
        "operating_point": None if statistics.urgent is None else statistics.urgent.to_dict(),
        "selective_prediction": statistics.selective.to_dict(),
        "predictions_file": PREDICTIONS_NAME,
        "training": None if metadata is None or not metadata.history else {
            "history": metadata.history,
            "best_epoch": metadata.best_epoch,
            "config": metadata.training,
        },
        "conv_layers": layers_to_json(results.layers),
        "drawn_layers": results.layer_selection.to_dict(),
        "layer_health": layer_health_to_dict(results.layer_health),
        "confusions": {
            "worst": None if worst is None else {k: v for k, v in worst.to_dict().items() if k != "cases"},
            "cells": [cell.to_dict() for cell in results.confusion_cells],
        },
        "gradcam": {
            "layer": results.visuals.gradcam_layer.path,
            "caption": results.visuals.gradcam_caption,
        },
        "heatmap_checks": heatmap_checks_entry(results),
        "heatmap_maps": recorded_heatmaps(results),
        "filters": [
            {
                "layer": f.grid.layer.path,
                "filters_shown": [int(i) for i in f.grid.indices],
                "reduction": f.grid.reduction,
                "l2_norm": {"min": f.norms.minimum, "median": f.norms.median, "max": f.norms.maximum},
                "top_patches": _patches_entry(f.patches, data.class_names),
                "maximisation": _maximised_entry(f.maximised),
            }
            for f in results.visuals.filters
        ],
        "shown_images": [
            {
                "path": with_frame(str(s.item.path), s.item.frame),
                "true_class": None if s.item.label < 0 else data.class_names[s.item.label],
                "predicted_class": data.class_names[s.predicted],
                "probabilities": {n: float(p) for n, p in zip(data.class_names, s.probabilities)},
                "channels_shown": {sel.layer.path: [int(c) for c in sel.channels] for sel in s.feature_maps},
                "gradcam_peaks": [
                    {"class": data.class_names[cam.class_index], "row_col": _peak(cam.heatmap)} for cam in s.gradcam
                ],
                "occlusion": None if s.occlusion is None else {
                    "base_probability": float(s.occlusion.base_probability),
                    "patch_px": int(s.occlusion.patch),
                    "stride_px": int(s.occlusion.stride),
                    "largest_drop": float(s.occlusion.heatmap.max()),
                    "largest_drop_row_col": _peak(s.occlusion.heatmap),
                },
            }
            for s in results.visuals.shown
        ],
        "report_config": results.report_config.to_dict(),
        "train_config": None if results.train_config is None else results.train_config.to_dict(),
        "command_line": results.command_line,
        "versions": package_versions(),
        "timings_seconds": timings_entry(timings),
        "card": card.to_dict(),
    }


def _patches_entry(patches, class_names) -> dict | None:
    """The top-activating images of each shown filter, as references: the image (relative to the data
    root), its true class, the output position (row, column) and the activation."""
    if patches is None:
        return None
    field = patches.field
    return {
        "receptive_field": {"size": list(field.size), "jump": list(field.jump), "start": list(field.start)},
        "per_filter": [
            {
                "filter": int(channel),
                "top": [
                    {"image": name, "class": class_names[int(label)] if 0 <= label < len(class_names) else None,
                     "position": [int(p) for p in position], "activation": float(value)}
                    for name, label, position, value in zip(names, labels, positions, values) if name
                ],
            }
            for channel, names, labels, positions, values in zip(
                patches.channels, patches.images, patches.labels, patches.positions, patches.values)
        ],
    }


def _maximised_entry(maximised) -> dict | None:
    if maximised is None:
        return None
    return {
        "filters": [int(c) for c in maximised.channels],
        "activation": [float(a) for a in maximised.activation],
        "start_activation": [float(a) for a in maximised.start_activation],
        "method": maximised.caption,
    }
