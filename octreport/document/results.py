"""Everything one run computed, in one frozen object built once, when every stage is done.

The stages of :mod:`octreport.pipeline.run` produce the parts; nothing changes them afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from octreport.config import ReportConfig, TrainConfig
from octreport.data.acquisition_profile import ShiftReport
from octreport.data.data_audit import DataAudit
from octreport.data.dataset import PreparedData
from octreport.data.preprocessing import Preprocessing
from octreport.engine.layer_health import LayerHealth
from octreport.engine.layer_selection import LayerSelection
from octreport.engine.layers import ConvLayerInfo
from octreport.evaluation.error_images import GalleryCell
from octreport.evaluation.errors_gallery import ConfusionCell
from octreport.evaluation.group_metrics import GroupMetrics
from octreport.evaluation.heatmap_checks import HeatmapChecks
from octreport.evaluation.metrics import ClassificationMetrics
from octreport.evaluation.predict import Predictions
from octreport.evaluation.prediction_spread import PredictionSpread
from octreport.evaluation.referral import ReferralMetrics
from octreport.evaluation.referral_rule import ReferralRule
from octreport.evaluation.statistics import PredictionStatistics
from octreport.models.input_scale import InputScaleChoice
from octreport.models.metadata import ModelMetadata
from octreport.engine.visuals import Visuals


@dataclass(frozen=True, eq=False)
class RunResults:
    data: PreparedData
    model: keras.Model
    model_source: str
    model_path: Path | None
    metadata: ModelMetadata | None
    preprocessing: Preprocessing
    predictions: Predictions
    metrics: ClassificationMetrics
    referral: ReferralMetrics | None
    statistics: PredictionStatistics
    """Intervals, calibration and operating points of the same predictions."""
    layers: tuple[ConvLayerInfo, ...]
    """Every conv layer of the model, forward order (the layers table, the layer audit)."""
    layer_selection: LayerSelection
    """The layers drawn (feature maps and filters), and why."""
    layer_health: tuple[LayerHealth, ...]
    confusion_cells: tuple[ConfusionCell, ...]
    visuals: Visuals
    train_config: TrainConfig | None
    report_config: ReportConfig
    command_line: str
    started_at: str
    data_audit: DataAudit | None = None
    model_registry: Mapping[str, Any] | None = None
    """Where a model fetched from MLflow came from (URI, name, resolved version, run id); None otherwise."""
    """Leakage, duplicates and shortcuts of the data (:mod:`octreport.data.data_audit`)."""
    input_scale: InputScaleChoice | None = None
    """The input convention the model was fed in, and why; None in results built by hand."""
    prediction_spread: PredictionSpread | None = None
    heatmap_checks: HeatmapChecks | None = None
    """Faithfulness and the randomisation check of the shown heat maps; None when turned off."""
    data_shift: ShiftReport | None = None
    """The evaluated images' acquisition profile against the training images' (None in results built by hand)."""
    group_metrics: tuple[GroupMetrics, ...] = ()
    """Performance per image size, and per the user's groups (``--groups``)."""
    error_gallery: tuple[GalleryCell, ...] = ()
    """The most confident mistakes of each confusion cell with their Grad-CAM maps (``--errors-per-cell``)."""
    data_warnings: tuple[str, ...] = ()
    """Problems with the data a reader should know about (:func:`octreport.data.data_warnings.data_warnings`)."""
    model_warnings: tuple[str, ...] = ()
    """Problems with how the model was fed (:func:`octreport.models.input_scale.input_warnings`)."""
    referral_rule: ReferralRule | None = None
    """The urgent-referral rule ``referral`` applies (the model's, ``--referral-threshold``, or argmax);
    None when the classes are not the four OCT ones, or in results built by hand."""
    argmax_referral: ReferralMetrics | None = None
    """The referral metrics under the argmax rule, shown beside the rule's (None: built by hand)."""

    @property
    def skipped(self):
        return self.data.skipped + self.predictions.skipped
