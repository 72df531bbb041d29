"""Find the convolutional layers of a Keras 3 model, by type and output rank, in forward order.

Layers are found with ``isinstance`` against the public ``keras.layers`` convolution classes
(never by name) and nested models (a Sequential or Functional backbone inside a wrapper) are
searched in place, so a transfer-learning model lists ``backbone/conv1`` ... before its own head.

In Keras 3 none of the convolution classes subclass another one (``SeparableConv2D`` and
``DepthwiseConv2D`` are *not* ``Conv2D`` subclasses), so every class is listed explicitly below.
Wrapped layers (``TimeDistributed(Conv2D)``) and convolutions hidden inside a custom layer are
not graph nodes of any model and are not reported.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras

from octreport.errors import ConfigError, ModelError

logger = logging.getLogger(__name__)

# Public convolution classes and the number of spatial axes of their output.
_SPATIAL_RANK: tuple[tuple[type, int], ...] = (
    (keras.layers.Conv1D, 1),
    (keras.layers.SeparableConv1D, 1),
    (keras.layers.DepthwiseConv1D, 1),
    (keras.layers.Conv1DTranspose, 1),
    (keras.layers.Conv2D, 2),
    (keras.layers.SeparableConv2D, 2),
    (keras.layers.DepthwiseConv2D, 2),
    (keras.layers.Conv2DTranspose, 2),
    (keras.layers.Conv3D, 3),
    (keras.layers.Conv3DTranspose, 3),
)
CONV_LAYER_TYPES: tuple[type, ...] = tuple(cls for cls, _ in _SPATIAL_RANK)

_MAX_LISTED = 60  # layers named in a "no convolutional layer" error before "... and N more"


@dataclass(frozen=True)
class ConvLayerInfo:
    """One convolutional layer of a model, as found by :func:`discover_conv_layers`.

    Attributes:
        index: position in forward order among the model's convolutional layers (0-based).
        path: enclosing model names and the layer name joined by ``/`` (``backbone/conv1``);
            the outermost model's own name is not part of it.
        name: the layer's own name.
        kind: the layer class name (``Conv2D``, ``DepthwiseConv2D``, ...).
        kernel_size: spatial kernel size, one entry per spatial axis.
        filters: output channels (for depthwise layers: input channels x depth multiplier).
        input_channels: channels of the layer's input.
        strides: one entry per spatial axis.
        output_shape: output shape without the batch axis, in the layer's own data format.
        params: number of weights (kernel and bias).
        spatial_rank: 1 (Conv1D family), 2 (Conv2D family) or 3 (Conv3D family).
        channels_last: False for ``data_format="channels_first"`` layers.
        layer: the Keras layer object itself (not compared, not shown).
        parents: enclosing models from the outermost model down to the layer's direct parent
            (not compared, not shown); the extractor uses them to reach nested layers.
    """

    index: int
    path: str
    name: str
    kind: str
    kernel_size: tuple[int, ...]
    filters: int
    input_channels: int
    strides: tuple[int, ...]
    output_shape: tuple[int | None, ...]
    params: int
    spatial_rank: int
    channels_last: bool
    layer: Any = field(compare=False, repr=False)
    parents: tuple[Any, ...] = field(compare=False, repr=False)


def is_graph_model(layer: Any) -> bool:
    """True for a Sequential or Functional model (one whose layers form a known graph).

    A subclassed ``keras.Model`` lists its sublayers in attribute order and has no graph, so
    its layer outputs cannot be reached; only Functional models carry ``operations``.
    """
    if isinstance(layer, keras.Sequential):
        return True
    return isinstance(layer, keras.Model) and hasattr(layer, "operations")


def discover_conv_layers(model: Any) -> tuple[ConvLayerInfo, ...]:
    """Return every convolutional layer of ``model`` in forward (topological) order.

    Nested Sequential and Functional models are searched where they are called. A layer
    reachable twice (a shared layer or a shared sub-model) is reported once, at its first place.

    Raises:
        ModelError: ``model`` is not a Keras model, is not built, or has no convolutional
            layer (the message lists the layers it does have).
    """
    if not isinstance(model, keras.Model):
        raise ModelError(
            f"Expected a Keras model, got {type(model).__name__}. "
            "Load the model with keras.saving.load_model first."
        )
    if not model.built:
        raise ModelError(
            f"Model {model.name!r} is not built, so its layers have no weights or shapes yet. "
            "Build it first (model.build((None, H, W, C)) or call it once), "
            "or load a saved .keras file."
        )
    if not is_graph_model(model):
        raise ModelError(
            f"Model {model.name!r} is a subclassed model ({type(model).__name__}): it has no "
            "layer graph, so its layers' order and outputs are unknown. Rebuild it as a "
            "Functional or Sequential model (for example from its get_config)."
        )
    found: list[ConvLayerInfo] = []
    seen: set[int] = set()
    for layer, parents in _walk(model, (model,)):
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        info = _describe(layer, parents, index=len(found))
        if info is not None:
            found.append(info)
    if not found:
        listing = "\n".join(f"  {path} ({kind})" for path, kind in _listing(model))
        raise ModelError(
            f"Model {model.name!r} has no convolutional layer (looked for "
            f"{', '.join(cls.__name__ for cls in CONV_LAYER_TYPES)}, also inside nested "
            f"models). Its layers are:\n{listing}\n"
            "octreport needs a convolutional image classifier."
        )
    return tuple(found)


def walk_layers(model: Any) -> Iterator[tuple[str, Any]]:
    """Yield ``(path, layer)`` for every layer of ``model`` in forward order, nested Sequential and
    Functional models searched in place (the nested models themselves are not yielded)."""
    for layer, parents in _walk(model, (model,)):
        yield _path(layer, parents), layer


def _walk(model: Any, parents: tuple[Any, ...]) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    """Yield ``(layer, enclosing models)`` for every layer, descending into nested models."""
    for layer in model.layers:
        if is_graph_model(layer):
            yield from _walk(layer, parents + (layer,))
            continue
        if isinstance(layer, keras.Model):
            logger.warning(
                "Skipping the layers of %r, a subclassed model inside %r: they have no graph, "
                "so their outputs cannot be reached.", layer.name, parents[-1].name,
            )
        yield layer, parents


def _listing(model: Any) -> list[tuple[str, str]]:
    rows = [
        (_path(layer, parents), type(layer).__name__)
        for layer, parents in _walk(model, (model,))
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    if len(rows) > _MAX_LISTED:
        extra = len(rows) - _MAX_LISTED
        rows = rows[:_MAX_LISTED] + [(f"... and {extra} more", "")]
    return rows


def _path(layer: Any, parents: tuple[Any, ...]) -> str:
    return "/".join([p.name for p in parents[1:]] + [layer.name])


def _spatial_rank(layer: Any) -> int | None:
    for cls, rank in _SPATIAL_RANK:
        if isinstance(layer, cls):
            return rank
    return None


def _describe(layer: Any, parents: tuple[Any, ...], index: int) -> ConvLayerInfo | None:
    """Describe ``layer`` if it is a convolution with a spatial output, else return None."""
    rank = _spatial_rank(layer)
    if rank is None:
        return None
    path = _path(layer, parents)
    try:
        in_shape = tuple(layer.input.shape)
        out_shape = tuple(layer.output.shape)
    except (AttributeError, ValueError) as exc:
        raise ModelError(
            f"Convolutional layer {path!r} has never been called, so its shapes are unknown. "
            "Build the model on an input shape first, or load a saved .keras file."
        ) from exc
    if len(out_shape) != rank + 2:
        logger.warning(
            "Skipping %s (%s): output rank %d, expected %d for a %dD convolution.",
            path, type(layer).__name__, len(out_shape), rank + 2, rank,
        )
        return None
    channels_last = getattr(layer, "data_format", "channels_last") != "channels_first"
    channel_axis = -1 if channels_last else 1
    return ConvLayerInfo(
        index=index,
        path=path,
        name=layer.name,
        kind=type(layer).__name__,
        kernel_size=tuple(int(k) for k in layer.kernel_size),
        filters=int(out_shape[channel_axis]),
        input_channels=int(in_shape[channel_axis]),
        strides=tuple(int(s) for s in layer.strides),
        output_shape=out_shape[1:],
        params=int(layer.count_params()),
        spatial_rank=rank,
        channels_last=channels_last,
        layer=layer,
        parents=parents,
    )


def select_layers(
    layers: Sequence[ConvLayerInfo], names: Sequence[str] | None
) -> tuple[ConvLayerInfo, ...]:
    """Pick layers by path (``backbone/conv1``) or plain layer name (``conv1``).

    ``None`` selects all layers. The result keeps forward order and has no duplicates.

    Raises:
        ConfigError: a name matches no layer, a plain name matches several nested layers,
            or ``names`` is empty. The message lists the available paths.
    """
    if names is None:
        return tuple(layers)
    available = ", ".join(info.path for info in layers)
    if isinstance(names, str) or len(names) == 0:
        raise ConfigError(
            f"Expected a list of layer names, got {names!r}. Available layers: {available}"
        )
    chosen: set[int] = set()
    unknown: list[str] = []
    for name in names:
        matches = [i for i, info in enumerate(layers) if info.path == name]
        if not matches:
            matches = [i for i, info in enumerate(layers) if info.name == name]
        if not matches:
            unknown.append(name)
        elif len(matches) > 1:
            paths = ", ".join(layers[i].path for i in matches)
            raise ConfigError(
                f"Layer name {name!r} is ambiguous: it matches {paths}. Use the full path."
            )
        else:
            chosen.add(matches[0])
    if unknown:
        raise ConfigError(
            f"Unknown convolutional layer(s): {', '.join(map(repr, unknown))}. "
            f"Available layers: {available}"
        )
    return tuple(info for i, info in enumerate(layers) if i in chosen)


_TABLE_COLUMNS = ("#", "path", "kind", "kernel", "filters", "strides", "output shape", "params")


def _shape_text(shape: Sequence[int | None]) -> str:
    return "x".join("?" if s is None else str(s) for s in shape)


def format_layer_table(layers: Sequence[ConvLayerInfo]) -> str:
    """A plain-text table of the layers, one row per layer, for a terminal."""
    rows = [
        (
            str(info.index),
            info.path,
            info.kind,
            _shape_text(info.kernel_size),
            str(info.filters),
            _shape_text(info.strides),
            _shape_text(info.output_shape),
            f"{info.params:,}",
        )
        for info in layers
    ]
    widths = [max(len(row[c]) for row in [_TABLE_COLUMNS, *rows]) for c in range(len(_TABLE_COLUMNS))]
    numeric = {0, 4, 7}

    def line(row: Sequence[str]) -> str:
        cells = [
            cell.rjust(w) if c in numeric else cell.ljust(w)
            for c, (cell, w) in enumerate(zip(row, widths))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(_TABLE_COLUMNS), rule, *(line(r) for r in rows)])


def layers_to_json(layers: Sequence[ConvLayerInfo]) -> list[dict[str, Any]]:
    """The layers as JSON-ready dicts (lists for shapes, ``None`` for unknown sizes)."""
    records = [
        {
            "index": info.index,
            "path": info.path,
            "name": info.name,
            "kind": info.kind,
            "kernel_size": list(info.kernel_size),
            "filters": info.filters,
            "input_channels": info.input_channels,
            "strides": list(info.strides),
            "output_shape": list(info.output_shape),
            "params": info.params,
            "spatial_rank": info.spatial_rank,
            "channels_last": info.channels_last,
        }
        for info in layers
    ]
    return records
