"""What the report's visual sections show of the chosen images and of each layer: feature maps,
Grad-CAM and occlusion maps, filters, top-activating patches and maximised inputs.

Pure computation: arrays and captions come back; drawing happens in :mod:`octreport.drawing` and
the report's sections. Which images are shown is chosen in :mod:`octreport.data.image_choice`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from octreport.cache import FROM_CACHE, ArrayCache
from octreport.data.image_choice import UNKNOWN_LABEL
from octreport.data.layout import ImageItem, relative_name
from octreport.data.pipeline import load_images, model_input
from octreport.data.preprocessing import Preprocessing
from octreport.engine.activations import FeatureMapSelection, extract_activations, select_feature_maps
from octreport.engine.filters import FilterGrid, FilterNormSummary, extract_filters, filter_norm_summary
from octreport.engine.gradcam import default_gradcam_layer, grad_cam
from octreport.engine.occlusion import OcclusionResult, occlusion_map
from octreport.engine.layers import ConvLayerInfo
from octreport.engine.maximisation import MaximisationSettings, MaximisedInputs
from octreport.engine.receptive_field import METHOD as FIELD_METHOD, ReceptiveField, crop_field, receptive_fields
from octreport.engine.streaming import active_strategy, compiled_forward
from octreport.engine.top_activations import TopActivations
from octreport.engine.weights_cache import cached_maximisation, model_fingerprint

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class ClassHeatmap:
    """A Grad-CAM heat map (H, W) in [0, 1] of one image for ``class_index``."""

    class_index: int
    heatmap: np.ndarray


@dataclass(frozen=True, eq=False)
class ShownImageResult:
    """One chosen image: ``pixels`` is the image (H, W, C) in [0, 1] as resized for the model (before
    its input convention is applied), ``probabilities`` (K,),
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


PATCH_CHANNELS = 8  # filters per layer whose top patches and maximised input are drawn (the first ones)


@dataclass(frozen=True, eq=False)
class FilterPatches:
    """The test-image patches that excite each shown filter of one layer most.

    Attributes:
        layer: the layer.
        field: its receptive field (how each patch was cut).
        channels: int64 (n,), the filters shown, in order.
        patches: float32 (n, k, h, w, C), model-input pixels in [0, 1] of each top activation's
            receptive field; NaN where the field reaches outside the image; an all-NaN patch
            where fewer than k images were evaluated.
        values: float32 (n, k), the activations, largest first (-inf where none).
        images: (n, k) names of the source images relative to the data root ("" where none).
        labels: int64 (n, k), the true class of each source image (-1 where none).
        positions: int64 (n, k, 2), the output position (row, column) of each activation.
        caption: what the patches are and how they were cut.
    """

    layer: ConvLayerInfo
    field: ReceptiveField
    channels: np.ndarray
    patches: np.ndarray
    values: np.ndarray
    images: tuple[tuple[str, ...], ...]
    labels: np.ndarray
    positions: np.ndarray
    caption: str


@dataclass(frozen=True, eq=False)
class LayerFilters:
    """What the filter section shows of one layer: the kernels, and (``--filter-views``) the top
    patches and the maximised inputs of its first filters; ``views_note`` says why a view is
    missing where it was asked for."""

    grid: FilterGrid
    norms: FilterNormSummary
    patches: FilterPatches | None = None
    maximised: MaximisedInputs | None = None
    views_note: str = ""


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
    Grad-CAM (and occlusion) maps, and each layer's filters. The model is fed the images in its
    input convention (``preprocessing.input_scale``); ``pixels`` stay in [0, 1] for drawing."""
    pixels = load_images(items, preprocessing)
    inputs = model_input(pixels, preprocessing)
    probabilities = _predict(model, inputs, batch_size)
    activations = extract_activations(model, layers, inputs, batch_size=batch_size)
    cam_layer = default_gradcam_layer(model)
    image_rows, cam_classes = _gradcam_requests(items, probabilities)
    cams = grad_cam(model, inputs[image_rows], cam_classes, cam_layer, batch_size=batch_size)
    black = model_input(np.zeros((1, 1, preprocessing.channels), np.float32), preprocessing)[0, 0]
    shown = []
    for i, item in enumerate(items):
        heatmaps = tuple(
            ClassHeatmap(int(c), cams.heatmaps[k]) for k, (row, c) in enumerate(zip(image_rows, cam_classes)) if row == i
        )
        occluded = None
        if occlusion is not None:
            scale = _model_scale(item, preprocessing)
            predicted = int(probabilities[i].argmax())
            occluded = occlusion_map(model, inputs[i], predicted, occlusion.patch, occlusion.stride,
                                     fill=0.0 if preprocessing.input_scale == "unit" else tuple(black),
                                     original_scale=scale, batch_size=batch_size, class_name=class_names[predicted])
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


def _predict(model: keras.Model, inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's probabilities for a few in-memory images, through its compiled forward pass
    (traced once per model and shared with the heat-map checks; ``model.predict`` built and traced
    a prediction loop of its own each report)."""
    forward = compiled_forward(model)
    batches = [keras.ops.convert_to_numpy(forward(inputs[start:start + batch_size]))
               for start in range(0, len(inputs), batch_size)]
    return np.concatenate(batches).astype(np.float64)


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


def compute_filter_views(
    model: keras.Model, filters: Sequence[LayerFilters], views: Sequence[str], top: Sequence[TopActivations],
    test_items: Sequence[ImageItem], preprocessing: Preprocessing, data_root: Path, channels_shown: int,
    seed: int = 0, cache: ArrayCache | None = None,
) -> tuple[LayerFilters, ...]:
    """``filters`` with the top-activating patches (from ``top``, the evaluation pass's running
    top-k of every conv layer, found by layer) and the maximised inputs of each layer's first
    ``min(channels_shown, PATCH_CHANNELS)`` filters, as ``views`` asks; the maximised inputs come
    from the weights ``cache`` where it holds them (None: always computed)."""
    started = time.perf_counter()
    layers = [f.grid.layer for f in filters]
    fields = receptive_fields(model, layers)
    by_layer = {id(t.layer.layer): t for t in top}
    settings = MaximisationSettings(seed=seed)
    fingerprint = model_fingerprint(model) if cache is not None and "maximisation" in views else ""
    shown_channels = [np.arange(min(channels_shown, PATCH_CHANNELS, f.grid.layer.filters)) for f in filters]
    sources = _patch_sources(filters, fields, by_layer, shown_channels) if "patches" in views else []
    decoding = time.perf_counter()
    pixels = dict(zip(sources, load_images([test_items[i] for i in sources], preprocessing))) if sources else {}
    decoded = time.perf_counter() - decoding
    drawable = [(f.grid.layer, field, channels) for f, field, channels in zip(filters, fields, shown_channels)
                if f.grid.layer.spatial_rank == 2 and field is not None]
    maximised_by_layer = (_maximise_layers(model, drawable, settings, preprocessing.input_shape, cache, fingerprint)
                          if "maximisation" in views else {})
    out = []
    for layer_filters, field, channels in zip(filters, fields, shown_channels):
        info = layer_filters.grid.layer
        notes = []
        if info.spatial_rank != 2 or field is None:
            why = ("patches and maximised inputs are drawn for 2D layers only" if info.spatial_rank != 2 else
                   "no receptive field: a transposed convolution or upsampling layer lies before it")
            out.append(replace(layer_filters, views_note=why if {"patches", "maximisation"} & set(views) else ""))
            continue
        patches = maximised = None
        if "patches" in views and id(info.layer) in by_layer:
            patches = filter_patches(by_layer[id(info.layer)], field, channels, test_items, preprocessing, data_root,
                                     pixels)
        elif "patches" in views:
            notes.append("no top activations were kept for this layer")
        if "maximisation" in views:
            maximised = maximised_by_layer[id(info.layer)]
        out.append(replace(layer_filters, patches=patches, maximised=maximised, views_note="; ".join(notes)))
    cached = sum(1 for f in out if f.maximised is not None and f.maximised.source == FROM_CACHE)
    log.info("filter views: the top patches' %d source images decoded in %.1f s; the model-only part (receptive "
             "fields, maximised inputs of %d layers, %d from the weights cache) %.1f s", len(sources), decoded,
             sum(1 for f in out if f.maximised is not None), cached, time.perf_counter() - started - decoded)
    return tuple(out)


MAXIMISATION_THREADS = 2
"""Layers maximised at a time: while one traces its step (Python, one core), the other's gradient
steps run in TensorFlow's threads (``benchmarks/bench_maximisation.py``)."""


def _maximise_layers(
    model: keras.Model, jobs: Sequence[tuple[ConvLayerInfo, ReceptiveField, np.ndarray]], settings: MaximisationSettings,
    input_shape: tuple[int, int, int], cache: ArrayCache | None, fingerprint: str,
) -> dict[int, MaximisedInputs]:
    """The maximised inputs of each ``(layer, field, channels)`` job, by ``id`` of the Keras layer,
    :data:`MAXIMISATION_THREADS` layers at a time, the deepest (costliest) first. Each layer draws
    from its own generator seeded by ``settings``, so the results do not depend on the order.
    Under a ``tf.distribute`` strategy, whose scope belongs to the calling thread, one at a time."""
    def maximise(job: tuple[ConvLayerInfo, ReceptiveField, np.ndarray]) -> MaximisedInputs:
        info, field, channels = job
        return cached_maximisation(model, info, channels, field, settings, input_shape, cache, fingerprint)

    deepest_first = jobs[::-1]
    if len(jobs) < 2 or active_strategy() is not None:
        results = [maximise(job) for job in deepest_first]
    else:
        pool = ThreadPoolExecutor(MAXIMISATION_THREADS)
        try:
            results = list(pool.map(maximise, deepest_first))
        finally:  # on an error or Ctrl-C the layers not yet started are dropped, not run to the end
            pool.shutdown(wait=True, cancel_futures=True)
    return {id(info.layer): result for (info, _, _), result in zip(deepest_first, results)}


def _patch_sources(filters: Sequence[LayerFilters], fields: Sequence[ReceptiveField | None], by_layer: dict,
                   shown_channels: Sequence[np.ndarray]) -> list[int]:
    """The data set indices of every image some layer's top patches are cut from, sorted."""
    needed: set[int] = set()
    for layer_filters, field, channels in zip(filters, fields, shown_channels):
        top = by_layer.get(id(layer_filters.grid.layer.layer))
        if top is not None and field is not None and layer_filters.grid.layer.spatial_rank == 2:
            needed.update(int(i) for i in top.images[channels].ravel() if i >= 0)
    return sorted(needed)


def filter_patches(
    top: TopActivations, field: ReceptiveField, channels: np.ndarray, items: Sequence[ImageItem],
    preprocessing: Preprocessing, data_root: Path, decoded: dict[int, np.ndarray] | None = None,
) -> FilterPatches:
    """Cut the receptive field of each of ``channels``' top activations from its test image
    (``items[i]`` is the image of data set index ``i``); each source image is decoded once, or
    taken from ``decoded`` (data set index to pixels) where the caller decoded it for every layer."""
    images = top.images[channels]
    needed = sorted({int(i) for i in images.ravel() if i >= 0})
    missing = [i for i in needed if decoded is None or i not in decoded]
    pixels = {**(decoded or {}), **(dict(zip(missing, load_images([items[i] for i in missing], preprocessing)))
                                    if missing else {})}
    pixels = {i: pixels[i] for i in needed}
    depth = preprocessing.channels if not pixels else next(iter(pixels.values())).shape[-1]
    empty = np.full((*field.size, depth), np.nan, np.float32)
    crops = np.stack([
        np.stack([crop_field(pixels[int(i)], field, pos) if i >= 0 else empty
                  for i, pos in zip(row, top.positions[c])])
        for c, row in zip(channels, images)
    ])
    names = tuple(tuple(relative_name(items[int(i)].path, data_root) if i >= 0 else "" for i in row) for row in images)
    labels = np.array([[items[int(i)].label if i >= 0 else -1 for i in row] for row in images], np.int64)
    size = "x".join(str(s) for s in field.size)
    jump = "x".join(str(j) for j in field.jump)
    caption = (
        f"for each of the first {len(channels)} filters (one row each), the {top.k} test images where it responds "
        f"most (its strongest position in each image, one patch per image, strongest first) over the whole "
        f"evaluation pass, each patch the {size} px receptive field of that position (stride {jump} px between "
        f"positions; pale blue where it reaches into the padding), labelled with the image's true class; {FIELD_METHOD}"
    )
    return FilterPatches(top.layer, field, channels.astype(np.int64), crops.astype(np.float32),
                         top.values[channels].copy(), names, labels, top.positions[channels].copy(), caption)


