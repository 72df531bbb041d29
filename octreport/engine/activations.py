"""Feature maps of convolutional layers: all chosen layers in one forward pass.

How nested layers are reached: a layer inside a nested model (``backbone/conv1``) has its
symbolic output in the backbone's own graph, which the outer model's input does not reach. So
the extractor replays the outer graph with ``keras.models.clone_model(clone_function=identity,
call_function=...)``: the same layer objects (same weights) are called on fresh symbolic inputs,
with the original call arguments, and the call hook

* records the output of every wanted convolutional layer;
* inlines a nested Sequential that holds wanted layers (a Sequential is a chain of layers, so
  it is replayed layer by layer on the outer tensors);
* splices a nested Functional that holds wanted layers: it is replayed the same way on its own
  fresh inputs, turned into one model that returns its outputs *and* its wanted inner outputs,
  and that model is called where the backbone was called. This recurses to any depth.

Only public API is used, and the user's model is not modified: no layer, weight, trainable flag
or attribute changes. (Calling a layer on new symbolic tensors appends a node to that layer's
internal call history, which Keras ignores for ``layer.output``, ``get_config`` and saving.)

:func:`replay_graph` exposes one replay as symbolic tensors (the chosen layers' outputs, the
model's own output, and the layer call that produced that output) for other engines: the layer
health audit evaluates and measures in one pass (``build_extractor_model(..., with_output=True)``),
and Grad-CAM reads the class logits from the input of a softmax head.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from octreport.engine.layers import ConvLayerInfo, is_graph_model
from octreport.errors import ConfigError, ModelError

logger = logging.getLogger(__name__)

CHANNEL_SELECTIONS = ("strongest", "first")


@dataclass(frozen=True, eq=False)
class LayerActivations:
    """Outputs of one convolutional layer for a batch of images.

    Attributes:
        layer: the layer.
        maps: float32 array of shape (N, H, W, C): N images, C channels, channels last
            whatever the layer's data format. Conv1D outputs (N, L, C) become (N, 1, L, C)
            strips; Conv3D outputs (N, D, H, W, C) are cut to their middle depth slice.
        view_note: how the layer output became (H, W) maps; empty for 2D convolutions.
    """

    layer: ConvLayerInfo
    maps: np.ndarray
    view_note: str = ""


@dataclass(frozen=True, eq=False)
class FeatureMapSelection:
    """The feature maps of one layer and one image chosen for display.

    Attributes:
        layer: the layer.
        image_index: index of the image in the batch.
        channels: int array (k,), the channel indices shown, in display order.
        maps: float32 array (k, H, W), ``maps[i]`` is channel ``channels[i]``.
        how: ``"strongest"`` or ``"first"``.
        total_channels: channels the layer has.
        cmap: the colour map name the caption promises.
        caption: what was shown and how it is scaled, for the report.
    """

    layer: ConvLayerInfo
    image_index: int
    channels: np.ndarray
    maps: np.ndarray
    how: str
    total_channels: int
    cmap: str
    caption: str


def _identity(layer: Any) -> Any:
    return layer


class _GraphReplay:
    """Replays a model graph on new symbolic inputs, recording the wanted layers' outputs."""

    def __init__(self, wanted: set[int], containers: set[int],
                 spliced: dict[int, tuple[Any, Any, list[int]]] | None = None) -> None:
        self.wanted = wanted  # ids of the convolutional layers to record
        self.containers = containers  # ids of nested models that hold some of them
        self.recorded: dict[int, Any] = {}
        # (output, layer, args) of every plain layer call, in call order: finds the head layer.
        self.calls: list[tuple[Any, Any, tuple[Any, ...]]] = []
        # id(nested Functional) -> (opened model, its output structure, recorded layer ids);
        # built once, so a backbone called twice (siamese) is one shared model in the graph.
        self.spliced = {} if spliced is None else spliced

    def call(self, layer: Any, *args: Any, **kwargs: Any) -> Any:
        """``call_function`` hook for ``clone_model``."""
        if id(layer) in self.containers:
            if isinstance(layer, keras.Sequential):
                return self.chain(layer, args[0])
            return self._splice(layer, *args, **kwargs)
        outputs = layer(*args, **kwargs)
        if id(layer) in self.wanted:
            self.recorded.setdefault(id(layer), outputs)
        self.calls.append((outputs, layer, args))
        return outputs

    def producer(self, tensor: Any) -> tuple[Any, Any] | None:
        """(layer, its first call argument) of the plain layer call that returned ``tensor``."""
        for outputs, layer, args in reversed(self.calls):
            if outputs is tensor:
                return layer, (args[0] if args else None)
        return None

    def chain(self, model: Any, x: Any) -> Any:
        """Replay a Sequential on ``x``. Call options such as ``training=False`` are dropped:
        the extractor only ever runs in inference mode."""
        for layer in model.layers:
            x = self.call(layer, x)
        return x

    def functional(self, model: Any) -> tuple[Any, Any]:
        """Replay a Functional model on fresh inputs; return (inputs, outputs) structures."""
        clone = keras.models.clone_model(
            model, clone_function=_identity, call_function=self.call
        )
        return clone.input, clone.output

    def _open(self, model: Any) -> tuple[Any, Any, list[int]]:
        """A model returning ``model``'s outputs followed by its wanted inner outputs."""
        if id(model) not in self.spliced:
            inner = _GraphReplay(self.wanted, self.containers, self.spliced)
            inputs, outputs = inner.functional(model)
            ids = list(inner.recorded)
            opened = keras.Model(
                inputs, [*keras.tree.flatten(outputs), *(inner.recorded[i] for i in ids)]
            )
            self.spliced[id(model)] = (opened, outputs, ids)
        return self.spliced[id(model)]

    def _splice(self, model: Any, *args: Any, **kwargs: Any) -> Any:
        opened, structure, ids = self._open(model)
        count = len(keras.tree.flatten(structure))
        results = keras.tree.flatten(opened(*args, **kwargs))
        for layer_id, tensor in zip(ids, results[count:]):
            self.recorded.setdefault(layer_id, tensor)
        return keras.tree.pack_sequence_as(structure, results[:count])


def _check_extractable(model: Any, layers: Sequence[ConvLayerInfo]) -> None:
    if not is_graph_model(model):
        raise ModelError(
            f"Model {model.name!r} is a subclassed model: its layer outputs cannot be reached "
            "without running its Python code. Rebuild it as a Functional or Sequential model."
        )
    if len(model.inputs) != 1:
        raise ModelError(
            f"Model {model.name!r} has {len(model.inputs)} inputs; octreport needs a model "
            "with a single image input."
        )
    for info in layers:
        if not info.parents or info.parents[0] is not model:
            raise ModelError(
                f"Layer {info.path!r} was not found in model {model.name!r}; "
                "discover the layers of this model with discover_conv_layers(model)."
            )


@dataclass(frozen=True, eq=False)
class ReplayedGraph:
    """Symbolic tensors of one replay of a model's graph on a fresh input (see the module docstring).

    Attributes:
        inputs: the new input tensor; a ``keras.Model(inputs, ...)`` can be built from it.
        layer_outputs: the output of each chosen layer, in the order given.
        output: the model's output structure (a single tensor for a classifier).
        head: the layer whose call returned ``output`` when that call is part of the replayed
            graph itself (the final ``Dense`` of a classifier); None when the output comes out of
            a nested model that holds no chosen layer, or the model has several outputs.
        head_input: the tensor ``head`` was called on (its first argument), or None.
    """

    inputs: Any
    layer_outputs: tuple[Any, ...]
    output: Any
    head: Any | None
    head_input: Any | None


def replay_graph(model: Any, layers: Sequence[ConvLayerInfo]) -> ReplayedGraph:
    """Replay ``model`` on a fresh input, recording the outputs of ``layers`` (may be empty).

    Raises:
        ModelError: a subclassed or multi-input model, a layer of another model, or a layer
            that is not on the path from the input to the output.
    """
    _check_extractable(model, layers)
    wanted = {id(info.layer) for info in layers}
    containers = {id(parent) for info in layers for parent in info.parents[1:]}
    replay = _GraphReplay(wanted, containers)
    if isinstance(model, keras.Sequential):
        reference = model.inputs[0]
        inputs = keras.Input(batch_shape=reference.shape, dtype=reference.dtype)
        output = replay.chain(model, inputs)
    else:
        inputs, output = replay.functional(model)
    missing = [info.path for info in layers if id(info.layer) not in replay.recorded]
    if missing:
        raise ModelError(
            f"Layer(s) {', '.join(missing)} of model {model.name!r} are not on the path from "
            "the model's input to its output, so they have no feature maps."
        )
    flat = keras.tree.flatten(output)
    found = replay.producer(flat[0]) if len(flat) == 1 else None
    head, head_input = found if found is not None else (None, None)
    return ReplayedGraph(
        inputs=inputs,
        layer_outputs=tuple(replay.recorded[id(info.layer)] for info in layers),
        output=output,
        head=head,
        head_input=head_input,
    )


def single_output(model: Any, output: Any) -> Any:
    """The one output tensor of a classifier; ModelError for a model with several outputs."""
    flat = keras.tree.flatten(output)
    if len(flat) != 1:
        raise ModelError(
            f"Model {model.name!r} has {len(flat)} outputs; octreport needs a classifier with "
            "one output (the class probabilities)."
        )
    return flat[0]


def build_extractor_model(
    model: Any, layers: Sequence[ConvLayerInfo], *, with_output: bool = False
) -> Any:
    """A new ``keras.Model`` from the model's input to the outputs of ``layers`` (in order).

    With ``with_output=True`` the model's own (single) output comes last, so one forward pass
    gives both the feature maps and the prediction.
    """
    if not layers:
        raise ConfigError("No layers chosen: pass at least one convolutional layer.")
    graph = replay_graph(model, layers)
    outputs = list(graph.layer_outputs)
    if with_output:
        outputs.append(single_output(model, graph.output))
    suffix = "conv_outputs_and_output" if with_output else "conv_outputs"
    return keras.Model(graph.inputs, outputs, name=f"{model.name}_{suffix}")


def _to_hwc(info: ConvLayerInfo, output: np.ndarray) -> tuple[np.ndarray, str]:
    """Channels-last (N, H, W, C) maps from a layer output, and a note on how they were made."""
    if not info.channels_last:
        output = np.moveaxis(output, 1, -1)
    if info.spatial_rank == 1:
        return output[:, np.newaxis], f"each channel shown as a 1 x {output.shape[1]} strip"
    if info.spatial_rank == 3:
        depth = output.shape[1]
        return output[:, depth // 2], f"middle depth slice {depth // 2} of {depth}"
    return output, ""


def check_images(model: Any, images: np.ndarray) -> np.ndarray:
    """``images`` as a float array after checking it is a non-empty batch the model accepts.

    Raises:
        ModelError: the shape does not fit the model's input.
        ConfigError: the batch is empty.
    """
    return _check_images(model, images)


def _check_images(model: Any, images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    expected = tuple(model.inputs[0].shape[1:])
    if images.ndim != len(expected) + 1 or any(
        e is not None and e != got for e, got in zip(expected, images.shape[1:])
    ):
        wanted = "x".join("?" if e is None else str(e) for e in expected)
        raise ModelError(
            f"Model {model.name!r} expects images of shape {wanted} (height x width x channels), "
            f"got an array of shape {images.shape} (batch first). Resize the images or use the "
            "model they were trained with."
        )
    if images.shape[0] == 0:
        raise ConfigError("No images given: the batch is empty.")
    if not np.issubdtype(images.dtype, np.floating):
        images = images.astype(np.float32)
    return images


# The built extractor models, per user model (weakly held: an entry goes with its model) and
# per tuple of chosen layer ids. Values must not refer to the user's model object itself, or
# the entry would keep it alive; extractor models refer only to its layers.
_EXTRACTOR_MODELS: weakref.WeakKeyDictionary[Any, dict[tuple[int | str, ...], Any]]
_EXTRACTOR_MODELS = weakref.WeakKeyDictionary()


def cached_extractor_model(
    model: Any, layers: Sequence[ConvLayerInfo], *, with_output: bool = False
) -> Any:
    """:func:`build_extractor_model`, built once per ``(model, layers, with_output)``."""
    per_model = _EXTRACTOR_MODELS.setdefault(model, {})
    ids = tuple(id(info.layer) for info in layers)
    key = ids + (("output",) if with_output else ())
    if key not in per_model:
        logger.debug("Building a feature map extractor for %d layer(s) of %r.", len(ids), model.name)
        per_model[key] = build_extractor_model(model, layers, with_output=with_output)
    return per_model[key]


class ActivationExtractor:
    """Feature maps of chosen layers of one model.

    The multi-output extractor model is built on first use for a ``(model, layers)`` pair and
    reused by every later extractor and :func:`extract_activations` call for the same pair.
    ``extractor(images)`` runs one forward pass per batch of ``batch_size`` images and returns
    one :class:`LayerActivations` per layer, in the order given.
    """

    def __init__(self, model: Any, layers: Sequence[ConvLayerInfo]) -> None:
        self.model = model
        self.layers = tuple(layers)
        self.extractor_model = cached_extractor_model(model, self.layers)

    def __call__(self, images: np.ndarray, batch_size: int = 32) -> tuple[LayerActivations, ...]:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}.")
        images = _check_images(self.model, images)
        chunks: list[list[np.ndarray]] = [[] for _ in self.layers]
        for start in range(0, images.shape[0], batch_size):
            outputs = self.extractor_model(images[start : start + batch_size], training=False)
            for chunk, output in zip(chunks, keras.tree.flatten(outputs)):
                chunk.append(keras.ops.convert_to_numpy(output))
        results = []
        for info, chunk in zip(self.layers, chunks):
            maps, note = _to_hwc(info, np.concatenate(chunk, axis=0))
            results.append(LayerActivations(info, np.ascontiguousarray(maps, np.float32), note))
        return tuple(results)


def extract_activations(
    model: Any, layers: Sequence[ConvLayerInfo], images: np.ndarray, batch_size: int = 32
) -> tuple[LayerActivations, ...]:
    """Feature maps of ``layers`` for ``images`` (N, H, W, C), one forward pass per batch.

    Raises:
        ModelError: the images do not fit the model, or a layer cannot be reached.
        ConfigError: no layers, no images, or a bad ``batch_size``.
    """
    return ActivationExtractor(model, layers)(images, batch_size=batch_size)


def select_channels(activation_hwc: np.ndarray, n: int, how: str = "strongest") -> np.ndarray:
    """Indices of the channels to show for one image's (H, W, C) activations.

    ``"strongest"``: the ``n`` channels with the largest mean activation, strongest first (ties
    keep channel order). ``"first"``: channels ``0 .. n-1``. All channels when there are fewer.
    """
    if how not in CHANNEL_SELECTIONS:
        raise ConfigError(
            f"Unknown channel selection {how!r}; expected one of {', '.join(CHANNEL_SELECTIONS)}."
        )
    if n < 1:
        raise ConfigError(f"The number of feature maps to show must be at least 1, got {n}.")
    if activation_hwc.ndim != 3:
        raise ValueError(f"Expected (H, W, C) activations, got shape {activation_hwc.shape}.")
    count = min(n, activation_hwc.shape[-1])
    if how == "first":
        return np.arange(count)
    means = activation_hwc.mean(axis=(0, 1), dtype=np.float64)
    return np.argsort(-means, kind="stable")[:count]


def select_feature_maps(
    activations: LayerActivations,
    image_index: int,
    n: int = 32,
    how: str = "strongest",
    cmap: str = "viridis",
) -> FeatureMapSelection:
    """Choose the maps of one image to show, with a caption that says how they were chosen."""
    maps = activations.maps
    if not 0 <= image_index < maps.shape[0]:
        raise ConfigError(f"Image index {image_index} is out of range for {maps.shape[0]} images.")
    channels = select_channels(maps[image_index], n, how)
    total = maps.shape[-1]
    if len(channels) == total:
        chosen = f"all {total} channels" + (" in order" if how == "first" else ", strongest first")
    elif how == "first":
        chosen = f"the first {len(channels)} of {total} channels"
    else:
        chosen = f"{len(channels)} of {total} channels with the strongest mean activation"
    caption = f"{chosen}, each map scaled from its own min to max, {cmap} colour map"
    if activations.view_note:
        caption += f" ({activations.view_note})"
    return FeatureMapSelection(
        layer=activations.layer,
        image_index=image_index,
        channels=channels,
        maps=np.moveaxis(maps[image_index][..., channels], -1, 0),
        how=how,
        total_channels=total,
        cmap=cmap,
        caption=caption,
    )
