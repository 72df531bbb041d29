"""Which convolutional layers the report draws (feature maps and filters), and why.

Every layer is still listed, audited (layer health) and written to metrics.json; drawing 120
grids of feature maps per image (DenseNet121) makes a report nobody reads, so by default a deep
network is drawn at a few representative layers: the first convolution, and the last convolution
of each spatial resolution (a stage of the network: the layer whose output the next, coarser stage
builds on), at most :data:`DEFAULT_MAX_DRAWN`. A model with that many conv layers or fewer is drawn
whole. ``all`` draws every layer; names or paths draw those (:func:`octreport.engine.layers.select_layers`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from octreport.engine.layers import ConvLayerInfo, select_layers

DEFAULT_MAX_DRAWN = 12
ALL = "all"
DEFAULT, EVERY, NAMED = "default", "all", "named"


@dataclass(frozen=True)
class LayerSelection:
    """The layers drawn (forward order), how they were chosen (``rule``: default, all or named),
    of how many, and ``reason``: the rule in a sentence, for the report."""

    drawn: tuple[ConvLayerInfo, ...]
    rule: str
    total: int
    reason: str

    def is_drawn(self, layer: ConvLayerInfo) -> bool:
        return any(info.path == layer.path for info in self.drawn)

    def to_dict(self) -> dict:
        return {"rule": self.rule, "reason": self.reason, "total": self.total,
                "drawn": [info.path for info in self.drawn]}


def choose_drawn_layers(
    layers: Sequence[ConvLayerInfo], names: Sequence[str] = (), max_drawn: int = DEFAULT_MAX_DRAWN,
) -> LayerSelection:
    """The layers to draw: ``names`` empty for the default rule, ``("all",)`` for every layer, or
    layer names or paths.

    Raises:
        ConfigError: an unknown or ambiguous layer name (from :func:`select_layers`).
    """
    layers = tuple(layers)
    total = len(layers)
    if tuple(names) == (ALL,):
        return LayerSelection(layers, EVERY, total, f"All {total} convolutional layers are drawn (--layers all).")
    if names:
        chosen = select_layers(layers, names)
        return LayerSelection(chosen, NAMED, total,
                              f"{len(chosen)} of the {total} convolutional layers are drawn, as named with --layers.")
    if total <= max_drawn:
        return LayerSelection(layers, DEFAULT, total, f"All {total} convolutional layers are drawn.")
    chosen = representative_layers(layers, max_drawn)
    return LayerSelection(
        chosen, DEFAULT, total,
        f"{len(chosen)} of the {total} convolutional layers are drawn: the first one and the last one of each "
        "spatial resolution (the end of each stage of the network, whose output the next stage builds on), at most "
        f"{max_drawn}. Every layer is listed in the layers table and audited under layer health; --layers all "
        "draws them all, --layers NAME,... the ones named.",
    )


def representative_layers(layers: Sequence[ConvLayerInfo], max_drawn: int = DEFAULT_MAX_DRAWN) -> tuple[ConvLayerInfo, ...]:
    """The first layer and the last layer of each output resolution, in forward order. When
    that makes more than ``max_drawn``, the first and the last layer are kept and the stage
    ends between them are thinned evenly."""
    if not layers:
        return ()
    last_of: dict[tuple, int] = {}
    for position, info in enumerate(layers):
        last_of[spatial_size(info)] = position
    picks = sorted({0, *last_of.values()})
    if len(picks) > max_drawn:
        inner = picks[1:-1]
        keep = np.linspace(0, len(inner) - 1, max(0, max_drawn - 2)).round().astype(int) if max_drawn > 2 else []
        picks = sorted({picks[0], picks[-1], *(inner[k] for k in keep)})[:max_drawn]
    return tuple(layers[p] for p in picks)


def spatial_size(info: ConvLayerInfo) -> tuple:
    """The layer's output size without the channel axis, e.g. ``(28, 28)``."""
    shape = tuple(info.output_shape)
    return shape[:-1] if info.channels_last else shape[1:]
