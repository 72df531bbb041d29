"""What the report's visual sections show: chosen images, their feature maps, each layer's filters.

Pure computation: arrays and captions come back; drawing happens in :mod:`octreport.report.build`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from octreport.data.layout import ImageItem, folder_key, is_image_file
from octreport.data.pipeline import load_images
from octreport.data.preprocessing import Preprocessing
from octreport.data.validation import image_problem
from octreport.engine.activations import FeatureMapSelection, extract_activations, select_feature_maps
from octreport.engine.filters import FilterGrid, FilterNormSummary, extract_filters, filter_norm_summary
from octreport.engine.layers import ConvLayerInfo
from octreport.errors import ConfigError

log = logging.getLogger(__name__)

UNKNOWN_LABEL = -1


@dataclass(frozen=True, eq=False)
class ShownImageResult:
    """One chosen image: ``pixels`` is the model input (H, W, C) in [0, 1], ``probabilities`` (K,),
    ``feature_maps`` one selection per conv layer in forward order."""

    item: ImageItem
    pixels: np.ndarray
    probabilities: np.ndarray
    feature_maps: tuple[FeatureMapSelection, ...]

    @property
    def predicted(self) -> int:
        return int(self.probabilities.argmax())


@dataclass(frozen=True, eq=False)
class LayerFilters:
    grid: FilterGrid
    norms: FilterNormSummary


@dataclass(frozen=True, eq=False)
class Visuals:
    shown: tuple[ShownImageResult, ...]
    filters: tuple[LayerFilters, ...]


def choose_images(items: Sequence[ImageItem], num_classes: int, per_class: int, seed: int) -> tuple[ImageItem, ...]:
    """``per_class`` images of each class, drawn with ``seed`` (same seed, same images)."""
    rng = np.random.default_rng(seed)
    chosen: list[ImageItem] = []
    for label in range(num_classes):
        of_class = sorted((i for i in items if i.label == label), key=lambda i: str(i.path))
        picks = rng.choice(len(of_class), size=min(per_class, len(of_class)), replace=False) if of_class else []
        chosen += [of_class[k] for k in sorted(picks)]
    return tuple(chosen)


def items_from_paths(paths: Sequence[str | Path], class_names: Sequence[str]) -> tuple[ImageItem, ...]:
    """Images named by the user; the true class is read from the parent folder's name if it is one."""
    keys = [folder_key(name) for name in class_names]
    items = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not is_image_file(path):
            raise ConfigError(f"--image '{path}' is not a JPEG or PNG file.")
        problem = image_problem(path)
        if problem:
            raise ConfigError(f"--image '{path}' cannot be used: {problem}.")
        parent = folder_key(path.parent.name)
        items.append(ImageItem(path, keys.index(parent) if parent in keys else UNKNOWN_LABEL))
    return tuple(items)


def compute_visuals(
    model: keras.Model,
    layers: Sequence[ConvLayerInfo],
    items: Sequence[ImageItem],
    preprocessing: Preprocessing,
    maps_per_layer: int,
    channel_selection: str,
    filters_per_layer: int,
    filter_reduction: str,
    batch_size: int = 32,
) -> Visuals:
    """Feature maps of every layer for ``items`` in one forward pass of the extractor, plus filters."""
    pixels = load_images(items, preprocessing)
    probabilities = np.asarray(model.predict(pixels, batch_size=batch_size, verbose=0), dtype=np.float64)
    activations = extract_activations(model, layers, pixels, batch_size=batch_size)
    shown = tuple(
        ShownImageResult(
            item=item,
            pixels=pixels[i],
            probabilities=probabilities[i],
            feature_maps=tuple(select_feature_maps(a, i, maps_per_layer, channel_selection) for a in activations),
        )
        for i, item in enumerate(items)
    )
    filters = tuple(
        LayerFilters(extract_filters(layer, filters_per_layer, filter_reduction), filter_norm_summary(layer))
        for layer in layers
    )
    log.info("computed feature maps of %d layers for %d images", len(layers), len(items))
    return Visuals(shown, filters)
