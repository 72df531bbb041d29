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
from PIL import Image

from octreport.data.layout import ImageItem, folder_key, is_image_file
from octreport.data.pipeline import load_images
from octreport.data.preprocessing import Preprocessing
from octreport.data.validation import image_problem
from octreport.engine.activations import FeatureMapSelection, extract_activations, select_feature_maps
from octreport.engine.filters import FilterGrid, FilterNormSummary, extract_filters, filter_norm_summary
from octreport.engine.gradcam import default_gradcam_layer, grad_cam
from octreport.engine.occlusion import OcclusionResult, occlusion_map
from octreport.evaluation.errors_gallery import ConfusionCell
from octreport.engine.layers import ConvLayerInfo
from octreport.errors import ConfigError

log = logging.getLogger(__name__)

UNKNOWN_LABEL = -1


@dataclass(frozen=True, eq=False)
class ClassHeatmap:
    """A Grad-CAM heat map (H, W) in [0, 1] of one image for ``class_index``."""

    class_index: int
    heatmap: np.ndarray


@dataclass(frozen=True, eq=False)
class ShownImageResult:
    """One chosen image: ``pixels`` is the model input (H, W, C) in [0, 1], ``probabilities`` (K,),
    ``feature_maps`` one selection per conv layer in forward order, ``gradcam`` for the predicted
    class (and the true class when they differ), ``occlusion`` when asked for."""

    item: ImageItem
    pixels: np.ndarray
    probabilities: np.ndarray
    feature_maps: tuple[FeatureMapSelection, ...]
    gradcam: tuple[ClassHeatmap, ...] = ()
    occlusion: OcclusionResult | None = None

    @property
    def predicted(self) -> int:
        return int(self.probabilities.argmax())


@dataclass(frozen=True, eq=False)
class LayerFilters:
    grid: FilterGrid
    norms: FilterNormSummary


@dataclass(frozen=True, eq=False)
class GalleryCell:
    """One off-diagonal confusion cell: its most confident mistakes with their model input
    (N, H, W, C) and Grad-CAM heat maps (N, H, W) for the predicted class."""

    cell: ConfusionCell
    pixels: np.ndarray
    heatmaps: np.ndarray


@dataclass(frozen=True, eq=False)
class OcclusionSettings:
    """Patch and stride in pixels of the ORIGINAL image, as Kermany et al. 2018 (20 px)."""

    patch: int = 20
    stride: int = 10


@dataclass(frozen=True, eq=False)
class Visuals:
    shown: tuple[ShownImageResult, ...]
    filters: tuple[LayerFilters, ...]
    gradcam_layer: ConvLayerInfo
    gradcam_caption: str
    errors: tuple[GalleryCell, ...] = ()


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
        if not path.is_file():
            raise ConfigError(f"--image '{path}' does not exist.")
        if not is_image_file(path):
            raise ConfigError(f"--image '{path}' is not a JPEG or PNG file.")
        problem = image_problem(path)
        if problem:
            raise ConfigError(f"--image '{path}' cannot be used: {problem}.")
        parent = folder_key(path.parent.name)
        items.append(ImageItem(path, keys.index(parent) if parent in keys else UNKNOWN_LABEL))
    return tuple(items)


def sentinel_paths(file: str | Path, data_root: str | Path) -> tuple[str, ...]:
    """The image paths a ``--sentinels`` file lists: one a line, blank lines and ``#`` comments
    ignored; a relative path is looked up in the data folder first, then beside the file.

    Raises:
        ConfigError: the file cannot be read, lists nothing, or names an image that is not there.
    """
    file, root = Path(file), Path(data_root)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"--sentinels '{file}' cannot be read: {error}.") from error
    paths = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        given = Path(text).expanduser()
        candidates = [given] if given.is_absolute() else [root / given, file.parent / given]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise ConfigError(f"--sentinels '{file}' line {number}: no image '{text}' "
                              f"(looked in {' and '.join(str(c.parent) for c in candidates)}).")
        paths.append(str(found))
    if not paths:
        raise ConfigError(f"--sentinels '{file}' lists no image path (one a line; # starts a comment).")
    return tuple(dict.fromkeys(paths))


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
    occlusion: OcclusionSettings | None = None,
    class_names: Sequence[str] = (),
) -> Visuals:
    """Feature maps of every layer for ``items`` in one forward pass of the extractor, their
    Grad-CAM (and occlusion) maps, and each layer's filters."""
    pixels = load_images(items, preprocessing)
    probabilities = np.asarray(model.predict(pixels, batch_size=batch_size, verbose=0), dtype=np.float64)
    activations = extract_activations(model, layers, pixels, batch_size=batch_size)
    cam_layer = default_gradcam_layer(model)
    image_rows, cam_classes = _gradcam_requests(items, probabilities)
    cams = grad_cam(model, pixels[image_rows], cam_classes, cam_layer, batch_size=batch_size)
    shown = []
    for i, item in enumerate(items):
        heatmaps = tuple(
            ClassHeatmap(int(c), cams.heatmaps[k]) for k, (row, c) in enumerate(zip(image_rows, cam_classes)) if row == i
        )
        occluded = None
        if occlusion is not None:
            scale = _model_scale(item, preprocessing)
            predicted = int(probabilities[i].argmax())
            occluded = occlusion_map(model, pixels[i], predicted, occlusion.patch, occlusion.stride, original_scale=scale,
                                     batch_size=batch_size, class_name=class_names[predicted])
        shown.append(ShownImageResult(
            item=item,
            pixels=pixels[i],
            probabilities=probabilities[i],
            feature_maps=tuple(select_feature_maps(a, i, maps_per_layer, channel_selection) for a in activations),
            gradcam=heatmaps,
            occlusion=occluded,
        ))
    filters = tuple(
        LayerFilters(extract_filters(layer, filters_per_layer, filter_reduction), filter_norm_summary(layer))
        for layer in layers
    )
    log.info("computed feature maps of %d layers and Grad-CAM at %s for %d images", len(layers), cam_layer.path, len(items))
    return Visuals(tuple(shown), filters, cam_layer, cams.caption)


def compute_error_gallery(
    model: keras.Model, cells: Sequence[ConfusionCell], preprocessing: Preprocessing, layer: ConvLayerInfo, batch_size: int = 32
) -> tuple[GalleryCell, ...]:
    """The images of each confusion cell's shown mistakes with Grad-CAM for the class predicted."""
    gallery = []
    for cell in cells:
        pixels = load_images([case.item for case in cell.cases], preprocessing)
        cams = grad_cam(model, pixels, [cell.predicted_class] * len(cell.cases), layer, batch_size=batch_size)
        gallery.append(GalleryCell(cell, pixels, cams.heatmaps))
    return tuple(gallery)


def _gradcam_requests(items: Sequence[ImageItem], probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(image row, class) pairs: the predicted class of every image, and its true class when the
    model got it wrong."""
    rows, classes = [], []
    for i, item in enumerate(items):
        predicted = int(probabilities[i].argmax())
        rows.append(i)
        classes.append(predicted)
        if item.label not in (UNKNOWN_LABEL, predicted):
            rows.append(i)
            classes.append(item.label)
    return np.array(rows, dtype=np.int64), np.array(classes, dtype=np.int64)


def _model_scale(item: ImageItem, preprocessing: Preprocessing) -> float:
    """Model-input pixels per original pixel (geometric mean of the two axes)."""
    with Image.open(item.path) as image:
        width, height = image.size
    return float(np.sqrt((preprocessing.width / width) * (preprocessing.height / height)))
