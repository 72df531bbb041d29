"""What the report shows of the model's convolutional layers: the layer table, the notes of the
Feature maps and Filters sections, and the Layer health table with its note."""

from __future__ import annotations

from octreport.document.results import RunResults
from octreport.report.context import ConvLayerRow
from octreport.report.image_views import LayerHealthRow
from octreport.report.image_sections import shape_text, sizes_text


def conv_layer_rows(results: RunResults) -> tuple[ConvLayerRow, ...]:
    return tuple(
        ConvLayerRow(
            index=layer.index + 1,
            path=layer.path,
            kind=layer.kind,
            kernel=sizes_text(layer.kernel_size),
            filters=layer.filters,
            strides=sizes_text(layer.strides),
            output_shape=shape_text(layer.output_shape),
            params=layer.params,
            drawn=results.layer_selection.is_drawn(layer),
        )
        for layer in results.layers
    )


def feature_map_note(results: RunResults) -> str:
    return (
        "For each image and each convolutional layer drawn, one grid of that layer's output channels "
        f"(feature maps) for that image, computed in one forward pass. {results.layer_selection.reason} Channels shown: "
        f"{_channel_rule(results)}; the number under each tile is the channel index. Each map is scaled "
        "from its own minimum to its own maximum (so brightness is not comparable between tiles) and "
        "drawn with the viridis colour map (dark blue low, yellow high)."
    )


def _channel_rule(results: RunResults) -> str:
    n = results.report_config.maps_per_layer
    if results.report_config.channel_selection == "first":
        return f"the first {n} channels (all when a layer has fewer)"
    return f"the {n} channels with the strongest mean activation for that image, strongest first (all when a layer has fewer)"


def filter_note(results: RunResults) -> str:
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


def layer_health_rows(results: RunResults) -> tuple[LayerHealthRow, ...]:
    return tuple(
        LayerHealthRow(
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
        for health in results.layer_health
    )


def layer_health_note(results: RunResults) -> str:
    epsilon = f"{results.layer_health[0].epsilon:g}" if results.layer_health else "a small epsilon"
    return (
        "Measured on every test image in the evaluation pass. A filter is dead when its output never rose "
        f"above {epsilon} on any image (the strict count: never above zero); sparsity is the share of "
        "output values at or below that. Layers flagged have at least half of their filters dead. For a conv "
        "layer without its own activation (followed by batch normalisation and ReLU) the count is only a hint: "
        "see the basis column. Filter norms: L2 norm of each filter's weights; CV = standard deviation / mean."
    )
