"""The images of the errors gallery: each confusion cell's shown mistakes with Grad-CAM for the
class the model wrongly predicted (the cells themselves: :mod:`octreport.evaluation.errors_gallery`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

from octreport.data.pipeline import load_images, model_input
from octreport.data.preprocessing import Preprocessing
from octreport.engine.gradcam import grad_cam
from octreport.engine.layers import ConvLayerInfo
from octreport.evaluation.errors_gallery import ConfusionCell


@dataclass(frozen=True, eq=False)
class GalleryCell:
    """One off-diagonal confusion cell: its most confident mistakes with their images
    (N, H, W, C) in [0, 1] and Grad-CAM heat maps (N, H, W) for the predicted class."""

    cell: ConfusionCell
    pixels: np.ndarray
    heatmaps: np.ndarray


def compute_error_gallery(
    model: keras.Model, cells: Sequence[ConfusionCell], preprocessing: Preprocessing, layer: ConvLayerInfo, batch_size: int = 32
) -> tuple[GalleryCell, ...]:
    """The images of each confusion cell's shown mistakes with Grad-CAM for the class predicted."""
    gallery = []
    for cell in cells:
        pixels = load_images([case.item for case in cell.cases], preprocessing)
        cams = grad_cam(model, model_input(pixels, preprocessing), [cell.predicted_class] * len(cell.cases), layer,
                        batch_size=batch_size)
        gallery.append(GalleryCell(cell, pixels, cams.heatmaps))
    return tuple(gallery)
