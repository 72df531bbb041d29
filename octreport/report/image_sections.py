"""The report's image sections: each shown image with its feature-map grids and heat maps (and the
notes of "Where the model looks"), the errors gallery, the filter grids and the training curves,
drawn and stored as figure references."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from octreport.drawing.export import encode_array, encode_figure
from octreport.drawing.figures import probability_bar_figure, training_curves_figure
from octreport.drawing.mosaic import feature_map_mosaic, filter_mosaic, image_patch_mosaic
from octreport.drawing.overlay import overlay_with_colour_bar, scale_heatmap
from octreport.report.assets import FIGURE_DPI, FigureStore
from octreport.report.image_views import ClassSection, ErrorCase, ErrorCell, FilterSection, LayerGrid, ShownImage
from octreport.report.views import FigureRef, KeyValue
from octreport.document.results import RunResults
from octreport.engine.maximisation import MaximisedInputs
from octreport.data.image_choice import UNKNOWN_LABEL
from octreport.data.layout import shown_name, with_frame
from octreport.engine.visuals import FilterPatches, LayerFilters, ShownImageResult
from octreport.evaluation.error_images import GalleryCell


def training_figure(results: RunResults, store: FigureStore) -> FigureRef | None:
    metadata = results.metadata
    if metadata is None or not metadata.history:
        return None
    epochs = len(next(iter(metadata.history.values())))
    return store.add(
        encode_figure(training_curves_figure(metadata.history, metadata.best_epoch), FIGURE_DPI),
        "training-curves",
        "Training curves",
        f"Loss and accuracy per epoch on the training and validation splits ({epochs} epochs). The dashed line "
        "marks the epoch whose weights were kept (lowest validation loss). The test split played no part.",
    )


def class_sections(
    shown: Sequence[ShownImageResult], class_names: Sequence[str], store: FigureStore, image_format: str
) -> tuple[ClassSection, ...]:
    sections = []
    labels = list(range(len(class_names))) + [UNKNOWN_LABEL]
    for label in labels:
        images = [s for s in shown if s.item.label == label]
        if not images:
            continue
        name = class_names[label] if label != UNKNOWN_LABEL else "Images of unknown class"
        anchor = f"class-{label + 1}-{slug(name)}"
        sections.append(
            ClassSection(anchor, name, tuple(_shown_image(s, class_names, store, image_format) for s in images))
        )
    return tuple(sections)


def _shown_image(shown: ShownImageResult, class_names: Sequence[str], store: FigureStore, image_format: str) -> ShownImage:
    item = shown.item
    true_name = class_names[item.label] if item.label != UNKNOWN_LABEL else None
    predicted = shown.predicted
    stem = slug(with_frame(item.path.stem, item.frame))
    pixels = np.rint(np.clip(shown.pixels, 0, 1) * 255).astype(np.uint8)
    pixels = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
    grids = tuple(
        LayerGrid(
            selection.layer.path,
            store.add(
                encode_array(feature_map_mosaic(selection.maps, [str(c) for c in selection.channels], selection.cmap), image_format),
                f"maps-{stem}-{selection.layer.index}",
                f"Feature maps of {selection.layer.path} for {shown_name(item)}",
                f"{selection.layer.path} ({selection.layer.kind}, output {shape_text(selection.layer.output_shape)}): "
                f"{selection.caption}.",
            ),
        )
        for selection in shown.feature_maps
    )
    return ShownImage(
        title=shown_name(item),
        file_name=with_frame(str(item.path), item.frame),
        true_class=true_name,
        predicted_class=class_names[predicted],
        correct=None if true_name is None else predicted == item.label,
        probabilities=tuple(KeyValue(n, f"{p:.1%}") for n, p in zip(class_names, shown.probabilities)),
        image=store.add(
            encode_array(pixels, "png"),
            f"input-{stem}",
            f"B-scan {shown_name(item)} as the model sees it",
            "The image as the model receives it (after resizing and channel conversion).",
        ),
        probability_chart=store.add(
            encode_figure(
                probability_bar_figure(shown.probabilities, class_names, None if true_name is None else item.label, predicted),
                FIGURE_DPI,
            ),
            f"probabilities-{stem}",
            f"Predicted probabilities for {shown_name(item)}",
            "Predicted probability of each class.",
        ),
        layer_grids=grids,
        gradcam=tuple(
            store.add(
                encode_array(overlay_with_colour_bar(shown.pixels, cam.heatmap), image_format),
                f"gradcam-{stem}-{cam.class_index}",
                f"Grad-CAM of {shown_name(item)} for {class_names[cam.class_index]}",
                f"Grad-CAM for {class_names[cam.class_index]}"
                + (" (predicted)" if cam.class_index == predicted else " (true class)"),
            )
            for cam in shown.gradcam
        ),
        occlusion=None if shown.occlusion is None else store.add(
            encode_array(overlay_with_colour_bar(shown.pixels, scale_heatmap(shown.occlusion.heatmap)), image_format),
            f"occlusion-{stem}",
            f"Occlusion sensitivity of {shown_name(item)}",
            shown.occlusion.caption,
        ),
    )


def attention_note(results: RunResults) -> str:
    return (
        f"{results.visuals.gradcam_caption} ({results.visuals.gradcam_layer.path} is the model's last convolutional layer.) "
        "Red marks the regions that raised the score of the class named, blue those that did not; the heat map "
        "is scaled to its own maximum, so compare where, not how hot. Shown for the predicted class, and for the "
        "true class too when the prediction is wrong."
    )


def occlusion_note(results: RunResults) -> str | None:
    config = results.report_config
    if not config.occlusion:
        return None
    return (
        f"Occlusion sensitivity (as Kermany et al. 2018): a black box of {config.occlusion_patch} px of the original "
        f"image, moved in steps of {config.occlusion_stride} px, hides part of the scan; the colour shows how much the "
        "predicted class's probability dropped with that part hidden (red: a large drop, so the model relies on it). "
        "All positions of one image are evaluated in a few batched forward passes."
    )


def errors_note(results: RunResults) -> str:
    return (
        "For each pair of true and predicted class that the model confused, the mistakes it made with the most "
        f"confidence (up to {results.report_config.errors_per_cell} per pair), each with Grad-CAM for the class it "
        "wrongly predicted: what in the image drew the model to the wrong answer."
    )


def error_cell(gallery: GalleryCell, class_names: Sequence[str], store: FigureStore, image_format: str) -> ErrorCell:
    cell = gallery.cell
    cases = []
    for case, pixels, heatmap in zip(cell.cases, gallery.pixels, gallery.heatmaps):
        cases.append(ErrorCase(
            file_name=shown_name(case.item),
            confidence=case.confidence,
            true_probability=case.true_probability,
            figure=store.add(
                encode_array(overlay_with_colour_bar(pixels, heatmap), image_format),
                f"error-{slug(cell.true_name)}-{slug(cell.predicted_name)}-{slug(with_frame(case.item.path.stem, case.item.frame))}",
                f"{shown_name(case.item)}: {cell.true_name} predicted as {cell.predicted_name}",
                f"{shown_name(case.item)}: P({cell.predicted_name}) {case.confidence:.0%}, P({cell.true_name}) "
                f"{case.true_probability:.0%}; Grad-CAM for {cell.predicted_name}.",
            ),
        ))
    return ErrorCell(
        anchor=f"errors-{cell.true_class}-{cell.predicted_class}",
        true_class=cell.true_name,
        predicted_class=cell.predicted_name,
        count=cell.count,
        mean_confidence=cell.mean_confidence,
        cases=tuple(cases),
    )


def filter_section(
    layer_filters: LayerFilters, store: FigureStore, image_format: str, class_names: Sequence[str] = (),
    kernels: bool = True,
) -> FilterSection:
    grid, norms = layer_filters.grid, layer_filters.norms
    layer = grid.layer
    figure = None
    if kernels:
        mosaic = filter_mosaic(grid.patches, [str(i) for i in grid.indices])
        figure = store.add(
            encode_array(mosaic, image_format),
            f"filters-{layer.index}-{slug(layer.path)}",
            f"Filters of {layer.path}",
            f"{layer.path} ({layer.kind}, {sizes_text(layer.kernel_size)} kernels, {layer.filters} filters): {grid.caption}.",
        )
    return FilterSection(
        anchor=f"filters-{layer.index}",
        layer_path=layer.path,
        figure=figure,
        norm_min=norms.minimum,
        norm_median=norms.median,
        norm_max=norms.maximum,
        patches_figure=_patches_figure(layer_filters.patches, store, image_format, class_names),
        maximised_figure=_maximised_figure(layer_filters.maximised, store, image_format),
        views_note=layer_filters.views_note,
    )


def _patches_figure(patches: FilterPatches | None, store: FigureStore, image_format: str,
                    class_names: Sequence[str]) -> FigureRef | None:
    if patches is None:
        return None
    n, k = patches.values.shape
    def name(label: int) -> str:
        return class_names[label] if 0 <= label < len(class_names) else ("?" if label < 0 else str(label))
    labels = [
        (f"{int(c)}: " if j == 0 else "") + (name(int(label)) if np.isfinite(patches.values[r, j]) else "-")
        for r, c in enumerate(patches.channels) for j, label in enumerate(patches.labels[r])
    ]
    mosaic = image_patch_mosaic(patches.patches.reshape(n * k, *patches.patches.shape[2:]), labels, columns=k)
    layer = patches.layer
    return store.add(
        encode_array(mosaic, image_format), f"patches-{layer.index}-{slug(layer.path)}",
        f"Top-activating patches of {layer.path}",
        f"{layer.path}, what each filter responds to in the test images: {patches.caption}. The first tile of "
        "each row names the filter.",
    )


def _maximised_figure(maximised: MaximisedInputs | None, store: FigureStore, image_format: str) -> FigureRef | None:
    if maximised is None:
        return None
    layer = maximised.layer
    mosaic = image_patch_mosaic(maximised.images, [str(int(c)) for c in maximised.channels])
    return store.add(
        encode_array(mosaic, image_format), f"maximised-{layer.index}-{slug(layer.path)}",
        f"Activation maximisation of {layer.path}",
        f"{layer.path}, {maximised.caption}; the number under each tile is the filter index.",
    )


def sizes_text(sizes: Sequence[int]) -> str:
    return "x".join(str(s) for s in sizes)


def shape_text(shape: Sequence[int | None]) -> str:
    return "x".join("?" if s is None else str(s) for s in shape)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-") or "x"
