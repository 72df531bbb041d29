"""What convolutional layers have learned: their kernels as displayable patches, and norms.

Every kernel is first brought to one layout, ``(*spatial, in_channels, filters)``:

* Conv1D/2D/3D: the kernel as stored.
* Conv*Transpose: the stored kernel is ``(*spatial, filters, in_channels)``; the last two axes
  are swapped.
* SeparableConv: the *effective* kernel of the depthwise step followed by the pointwise step,
  ``K[..., c, f] = sum_m depthwise[..., c, m] * pointwise[c * depth_multiplier + m, f]``. The
  separable layer computes exactly a full convolution with this kernel (bias aside), so it is
  shown and measured like any other convolution.
* DepthwiseConv: each output channel ``c * depth_multiplier + m`` has its own single-channel
  kernel ``kernel[..., c, m]``; these are shown as they are.

Conv1D kernels become ``1 x k`` patches; Conv3D kernels are cut to their middle depth slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from octreport.engine.layers import ConvLayerInfo
from octreport.errors import ConfigError

REDUCTIONS = ("mean", "max_norm_channel")

COLOUR_SCALING = "each colour patch scaled from its own min to max over its three channels"
SIGNED_SCALING = (
    "each filter scaled symmetrically around 0 by its own largest absolute weight, "
    "diverging colour map (blue negative, white 0, red positive)"
)


@dataclass(frozen=True, eq=False)
class FilterGrid:
    """The first ``n`` filters of one layer, ready to be drawn.

    Attributes:
        layer: the layer.
        indices: int array (n,), the filter (output channel) index of each patch.
        patches: float32 array, (n, kh, kw, 3) colour patches when ``colour`` is True,
            else (n, kh, kw) single-channel patches (raw weights, not scaled).
        colour: True for a layer reading 3 channels (an RGB first layer): patch = RGB kernel.
        source_channels: int array (n,), the input channel each patch was taken from with
            the ``"max_norm_channel"`` reduction; -1 where no single channel was picked.
        reduction: ``"rgb"``, ``"single input channel"``, ``"depthwise"``, ``"mean"`` or
            ``"max_norm_channel"``.
        caption: what the patches are and how :func:`octreport.drawing.mosaic.filter_mosaic`
            scales them, for the report.
    """

    layer: ConvLayerInfo
    indices: np.ndarray
    patches: np.ndarray
    colour: bool
    source_channels: np.ndarray
    reduction: str
    caption: str


@dataclass(frozen=True, eq=False)
class FilterNormSummary:
    """L2 norms of all filters of one layer (the full or effective kernel of each filter).

    Attributes:
        layer: the layer.
        norms: float64 array (filters,), one norm per output channel.
        minimum, median, maximum: of ``norms``.
    """

    layer: ConvLayerInfo
    norms: np.ndarray
    minimum: float
    median: float
    maximum: float


def _weights(variable: object) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)


def _is_depthwise(info: ConvLayerInfo) -> bool:
    return isinstance(info.layer, (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D))


def _depthwise_kernels(info: ConvLayerInfo) -> np.ndarray:
    """(*spatial, filters): one single-channel kernel per output channel."""
    kernel = _weights(info.layer.kernel)
    return kernel.reshape(kernel.shape[:-2] + (-1,))


def full_kernel(info: ConvLayerInfo) -> np.ndarray:
    """The kernel as (*spatial, in_channels, filters); see the module docstring.

    Not defined for depthwise layers (use their per-channel kernels).
    """
    layer = info.layer
    if isinstance(layer, (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)):
        depthwise = _weights(layer.depthwise_kernel)  # (*spatial, in, multiplier)
        pointwise = _weights(layer.pointwise_kernel)  # (1, [1,] in * multiplier, filters)
        in_channels, multiplier = depthwise.shape[-2:]
        pointwise = pointwise.reshape(in_channels, multiplier, -1)
        return np.einsum("...cm,cmf->...cf", depthwise, pointwise)
    kernel = _weights(layer.kernel)
    if isinstance(
        layer,
        (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose),
    ):
        kernel = np.swapaxes(kernel, -1, -2)
    return kernel


def _to_2d(kernels: np.ndarray, spatial_rank: int) -> tuple[np.ndarray, str]:
    """Make the spatial axes (leading) two: 1D -> 1 x k, 3D -> middle depth slice."""
    if spatial_rank == 1:
        return kernels[np.newaxis], "each 1D kernel shown as a 1 x k strip"
    if spatial_rank == 3:
        depth = kernels.shape[0]
        return kernels[depth // 2], f"middle depth slice {depth // 2} of {depth}"
    return kernels, ""


def extract_filters(layer_info: ConvLayerInfo, n: int = 32, reduction: str = "mean") -> FilterGrid:
    """The first ``n`` filters of a layer as 2D patches (see :class:`FilterGrid`).

    A layer reading 3 channels gives colour patches; 1 channel gives single-channel patches;
    more channels are reduced per filter with ``reduction``: ``"mean"`` averages the kernel
    over input channels, ``"max_norm_channel"`` keeps the input channel whose kernel slice
    has the largest L2 norm. Depthwise kernels are single-channel and shown as they are.
    """
    if reduction not in REDUCTIONS:
        raise ConfigError(
            f"Unknown filter reduction {reduction!r}; expected one of {', '.join(REDUCTIONS)}."
        )
    if n < 1:
        raise ConfigError(f"The number of filters to show must be at least 1, got {n}.")
    info = layer_info
    if _is_depthwise(info):
        kernels = _depthwise_kernels(info)
        count = min(n, kernels.shape[-1])
        patches, note = _to_2d(kernels[..., :count], info.spatial_rank)
        patches = np.moveaxis(patches, -1, 0)
        return _grid(info, patches, False, np.full(count, -1), "depthwise",
                     "depthwise kernels, one per output channel, as they are", note)
    kernel = full_kernel(info)
    count = min(n, kernel.shape[-1])
    kernel, note = _to_2d(kernel[..., :count], info.spatial_rank)  # (kh, kw, in, count)
    kernel = np.moveaxis(kernel, -1, 0)  # (count, kh, kw, in)
    in_channels = kernel.shape[-1]
    separable = info.kind.startswith("Separable")
    what = "effective kernels (depthwise then pointwise)" if separable else "kernels"
    no_source = np.full(count, -1)
    if in_channels == 3:
        return _grid(info, kernel, True, no_source, "rgb",
                     f"{what} on the 3 input channels shown as RGB colour patches", note)
    if in_channels == 1:
        return _grid(info, kernel[..., 0], False, no_source, "single input channel",
                     f"{what} on the single input channel", note)
    if reduction == "mean":
        return _grid(info, kernel.mean(axis=-1), False, no_source, "mean",
                     f"{what} averaged over the {in_channels} input channels", note)
    norms = np.sqrt((kernel.astype(np.float64) ** 2).sum(axis=(1, 2)))  # (count, in)
    source = norms.argmax(axis=-1)
    patches = np.take_along_axis(kernel, source[:, None, None, None], axis=-1)[..., 0]
    return _grid(info, patches, False, source, "max_norm_channel",
                 f"{what}, for each filter the one of {in_channels} input channels whose "
                 "kernel has the largest L2 norm", note)


def _grid(
    info: ConvLayerInfo,
    patches: np.ndarray,
    colour: bool,
    source: np.ndarray,
    reduction: str,
    what: str,
    note: str,
) -> FilterGrid:
    count = patches.shape[0]
    if count < info.filters:
        shown = f"first {count} of {info.filters} filters"
    else:
        shown = f"all {info.filters} filters"
    scaling = COLOUR_SCALING if colour else SIGNED_SCALING
    caption = f"{shown}: {what}" + (f" ({note})" if note else "") + f"; {scaling}"
    return FilterGrid(
        layer=info,
        indices=np.arange(count),
        patches=np.ascontiguousarray(patches, dtype=np.float32),
        colour=colour,
        source_channels=source.astype(np.int64),
        reduction=reduction,
        caption=caption,
    )


def filter_norm_summary(layer_info: ConvLayerInfo) -> FilterNormSummary:
    """L2 norm of every filter of the layer (all spatial and input-channel weights)."""
    if _is_depthwise(layer_info):
        kernels = _depthwise_kernels(layer_info)
    else:
        kernels = full_kernel(layer_info)
    flat = kernels.reshape(-1, kernels.shape[-1]).astype(np.float64)
    norms = np.sqrt((flat**2).sum(axis=0))
    return FilterNormSummary(
        layer=layer_info,
        norms=norms,
        minimum=float(norms.min()),
        median=float(np.median(norms)),
        maximum=float(norms.max()),
    )
