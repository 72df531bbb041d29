"""Deletion and insertion curves: does removing what a heat map highlights change the prediction?

For one image, its predicted class ``c`` and a heat map (Petsiuk et al. 2018, RISE):

1. the pixels are ordered from the map's hottest to its coldest (ties in a random order drawn
   with the seed, so the many zero pixels of a Grad-CAM map are not removed top-left first);
2. **deletion**: for ``k = 0..steps`` the first ``round(k / steps * H * W)`` pixels are replaced
   by the *baseline* image and the model's probability of ``c`` is read; a faithful map makes it
   fall fast (a small area under the curve);
3. **insertion**: the same, starting from the baseline and putting the original pixels back
   hottest first; a faithful map makes it rise fast (a large area);
4. the areas are the trapezoid rule over the removed share 0..1 (so in [0, 1]), and the *drop at
   10%* is ``P(c | image) - P(c | top 10% removed)`` (linear between steps).

The baseline (what a removed pixel becomes): ``blur`` (default), the image blurred with a Gaussian
whose sigma is an eighth of its side (16 px at 128 px), so that a removed region loses what is in it
(a lesion, a layer's shape) while scattered removed pixels (a random map's) take the value of their
surroundings instead of adding noise the model never saw; RISE's milder blur (sigma 5 px at 224 px)
leaves a 6-pixel bright square almost as bright, so the evidence would not be removed. ``mean``,
each channel's mean; ``zero``, black.

The same curves are computed for a **random map** (uniform noise drawn with the seed: the floor a
map must beat) and for every other map passed (the occlusion map when the report has one). Every
perturbed image goes through ``forward`` in batches of ``batch_size``; the unperturbed image and
the baseline, which every curve of an image starts or ends with, go through once.

Pure: the caller passes ``forward`` (a batch (B, H, W, C) -> class probabilities (B, K)).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from octreport.errors import ConfigError

GRADCAM, RANDOM, OCCLUSION = "gradcam", "random", "occlusion"
METHOD_NAMES = {GRADCAM: "Grad-CAM", RANDOM: "random map", OCCLUSION: "occlusion"}
BASELINES = ("blur", "mean", "zero")
READ_AT = 0.1  # the share removed in the summary's "drop at 10%"
BLUR_SIGMA_SHARE = 1 / 8  # the blur baseline's sigma, as a share of the image side

Forward = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)
class MapCurves:
    """The deletion and insertion curves of one image for one map.

    Attributes:
        method: ``gradcam``, ``random``, ``occlusion`` (or another name the caller gave).
        deletion: float64 (steps + 1,), P(class) with the top ``fractions[k]`` of pixels removed.
        insertion: float64 (steps + 1,), P(class) with only the top ``fractions[k]`` kept.
        fractions: float64 (steps + 1,), 0 .. 1.
    """

    method: str
    deletion: np.ndarray
    insertion: np.ndarray
    fractions: np.ndarray

    @property
    def deletion_area(self) -> float:
        return _area(self.fractions, self.deletion)

    @property
    def insertion_area(self) -> float:
        return _area(self.fractions, self.insertion)

    def drop_at(self, fraction: float = READ_AT) -> float:
        """P(class | image) - P(class | top ``fraction`` removed)."""
        return float(self.deletion[0] - np.interp(fraction, self.fractions, self.deletion))

    def to_dict(self) -> dict:
        return {
            "deletion": [round(float(v), 6) for v in self.deletion],
            "insertion": [round(float(v), 6) for v in self.insertion],
            "deletion_area": round(self.deletion_area, 6),
            "insertion_area": round(self.insertion_area, 6),
            f"drop_at_{round(READ_AT * 100)}pct": round(self.drop_at(), 6),
        }


@dataclass(frozen=True, eq=False)
class ImageFaithfulness:
    """The curves of one image: ``class_index`` is the class whose probability they follow."""

    class_index: int
    curves: tuple[MapCurves, ...]

    def of(self, method: str) -> MapCurves | None:
        return next((c for c in self.curves if c.method == method), None)


@dataclass(frozen=True)
class MethodAverage:
    """One map method's means over the images that have it."""

    method: str
    images: int
    deletion_area: float
    insertion_area: float
    drop_at_read: float
    deletion: tuple[float, ...]
    insertion: tuple[float, ...]

    def to_dict(self) -> dict:
        return {
            "images": self.images, "deletion_area": round(self.deletion_area, 6),
            "insertion_area": round(self.insertion_area, 6),
            f"drop_at_{round(READ_AT * 100)}pct": round(self.drop_at_read, 6),
            "deletion": [round(v, 6) for v in self.deletion], "insertion": [round(v, 6) for v in self.insertion],
        }


@dataclass(frozen=True, eq=False)
class FaithfulnessResult:
    """Deletion and insertion curves of N images for each map method.

    Attributes:
        fractions: float64 (steps + 1,), the shares of pixels removed (deletion) or kept (insertion).
        baseline: ``blur``, ``mean`` or ``zero`` (see the module docstring).
        images: one entry per image, in the order given.
        methods: the methods, in the order of each image's curves.
        forward_images: the perturbed images the model saw; ``forward_calls``: in that many batches.
    """

    fractions: np.ndarray
    baseline: str
    images: tuple[ImageFaithfulness, ...]
    methods: tuple[str, ...]
    forward_images: int
    forward_calls: int

    @property
    def steps(self) -> int:
        return len(self.fractions) - 1

    def average(self, method: str) -> MethodAverage | None:
        curves = [c for image in self.images if (c := image.of(method)) is not None]
        if not curves:
            return None
        return MethodAverage(
            method, len(curves),
            float(np.mean([c.deletion_area for c in curves])), float(np.mean([c.insertion_area for c in curves])),
            float(np.mean([c.drop_at() for c in curves])),
            tuple(float(v) for v in np.mean([c.deletion for c in curves], axis=0)),
            tuple(float(v) for v in np.mean([c.insertion for c in curves], axis=0)),
        )

    @property
    def reading(self) -> str:
        """The summary line: the mean drop at 10% for Grad-CAM against the random map (and occlusion)."""
        cam, rand = self.average(GRADCAM), self.average(RANDOM)
        if cam is None or rand is None:
            return ""
        share = f"{READ_AT:.0%}"
        text = (f"Removing the top {share} of Grad-CAM pixels drops the predicted class's probability by "
                f"{cam.drop_at_read:.2f} on average; a random {share}: by {rand.drop_at_read:.2f}")
        occlusion = self.average(OCCLUSION)
        if occlusion is not None:
            text += f"; the top {share} of the occlusion map: by {occlusion.drop_at_read:.2f}"
        text += (f" (deletion area {cam.deletion_area:.2f} for Grad-CAM against {rand.deletion_area:.2f} for a random map: "
                 "lower is more faithful).")
        if cam.deletion_area >= rand.deletion_area:
            text += " Grad-CAM does no better than a random map here: do not read these maps as the model's evidence."
        return text

    def to_dict(self) -> dict:
        return {
            "steps": self.steps,
            "baseline": self.baseline,
            "fractions": [round(float(f), 6) for f in self.fractions],
            "read_at": READ_AT,
            "methods": list(self.methods),
            "mean": {m: a.to_dict() for m in self.methods if (a := self.average(m)) is not None},
            "forward_images": self.forward_images,
            "reading": self.reading,
        }


def _area(x: np.ndarray, y: np.ndarray) -> float:
    return float(((y[1:] + y[:-1]) / 2.0 * np.diff(x)).sum())


@lru_cache(maxsize=8)
def _gaussian_matrix(size: int, sigma: float) -> np.ndarray:
    """(size, size) matrix that blurs a vector with a Gaussian, the signal mirrored at its edges
    (edge pixel repeated), so that each row sums to 1."""
    radius = max(1, int(np.ceil(3 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    source = (np.arange(size)[:, np.newaxis] + offsets[np.newaxis, :]) % (2 * size)
    source = np.where(source >= size, 2 * size - 1 - source, source)
    matrix = np.zeros((size, size), np.float64)
    np.add.at(matrix, (np.repeat(np.arange(size), len(offsets)), source.ravel()), np.tile(kernel, size))
    matrix.flags.writeable = False  # cached: shared by every call
    return matrix


def baseline_image(image: np.ndarray, kind: str = "blur") -> np.ndarray:
    """What removed pixels of ``image`` (H, W, C) become: see the module docstring."""
    if kind not in BASELINES:
        raise ConfigError(f"Unknown heat-map baseline {kind!r}; expected one of {', '.join(BASELINES)}.")
    image = np.asarray(image, np.float32)
    if kind == "zero":
        return np.zeros_like(image)
    if kind == "mean":
        return np.broadcast_to(image.mean(axis=(0, 1), keepdims=True), image.shape).astype(np.float32)
    height, width = image.shape[:2]
    sigma = max(1.0, BLUR_SIGMA_SHARE * float(np.sqrt(height * width)))
    rows, cols = _gaussian_matrix(height, sigma), _gaussian_matrix(width, sigma)
    blurred = np.tensordot(rows, image.astype(np.float64), axes=(1, 0))  # along the rows: (H, W, C)
    blurred = np.tensordot(blurred, cols, axes=(1, 1))  # along the columns: (H, C, W)
    return np.moveaxis(blurred, 1, 2).astype(np.float32)


def removal_ranks(heatmap: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """int64 (H, W): each pixel's place in the removal order (0 = hottest), ties in random order."""
    values = np.asarray(heatmap, np.float64).ravel()
    order = np.lexsort((rng.permutation(values.size), -values))
    place = np.empty(values.size, np.int64)
    place[order] = np.arange(values.size)
    return place.reshape(np.shape(heatmap))


def _counts(n_pixels: int, steps: int) -> np.ndarray:
    return np.rint(np.arange(steps + 1) / steps * n_pixels).astype(np.int64)


def _curve_images(image: np.ndarray, base: np.ndarray, place: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(2 * (steps - 1), H, W, C): deletion steps 1..steps-1, then insertion steps 1..steps-1."""
    masks = place[np.newaxis] < counts[1:-1, np.newaxis, np.newaxis]  # (steps - 1, H, W)
    masks = masks[..., np.newaxis]
    deletion = np.where(masks, base, image)
    insertion = np.where(masks, image, base)
    return np.concatenate([deletion, insertion]).astype(np.float32)


def _check(images: np.ndarray, maps: Mapping[str, Sequence[np.ndarray | None]], classes: np.ndarray,
           steps: int, batch_size: int) -> None:
    if images.ndim != 4 or not len(images):
        raise ConfigError(f"Expected images of shape (N, H, W, C), N >= 1, got {images.shape}.")
    if steps < 2:
        raise ConfigError(f"Deletion and insertion need at least 2 steps, got {steps}.")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}.")
    if classes.shape != (len(images),):
        raise ConfigError(f"Expected {len(images)} class indices, got shape {classes.shape}.")
    for method, per_image in maps.items():
        if method == RANDOM:
            raise ConfigError("The random map is drawn here; do not pass one.")
        if len(per_image) != len(images):
            raise ConfigError(f"{method}: expected {len(images)} maps (None where an image has none), got {len(per_image)}.")
        for m in per_image:
            if m is not None and np.shape(m) != images.shape[1:3]:
                raise ConfigError(f"{method}: a map of shape {np.shape(m)} for images of {images.shape[1:3]}.")


def _plan(images: np.ndarray, maps: Mapping[str, Sequence[np.ndarray | None]], steps: int, baseline: str,
          seed: int) -> Iterator[tuple[int, str | None, np.ndarray]]:
    """(image index, method or None for the shared endpoints, stack of images) in order."""
    rng = np.random.default_rng(seed)
    methods = [GRADCAM, *[m for m in maps if m != GRADCAM]] if GRADCAM in maps else list(maps)
    counts = _counts(images.shape[1] * images.shape[2], steps)
    for i, image in enumerate(images):
        base = baseline_image(image, baseline)
        yield i, None, np.stack([image, base])
        random_map = rng.random(image.shape[:2])
        for method in [*methods, RANDOM]:
            heatmap = random_map if method == RANDOM else maps[method][i]
            if heatmap is None:
                continue
            yield i, method, _curve_images(image, base, removal_ranks(heatmap, rng), counts)


def _forward_in_batches(forward: Forward, stacks: Iterator[tuple[int, str | None, np.ndarray]], batch_size: int
                        ) -> tuple[list[tuple[int, str | None, int]], np.ndarray, int]:
    """Every stack's images through ``forward`` in batches of ``batch_size`` (the last one padded):
    the (image, method, length) of each stack, all outputs (rows in stack order) and the number of
    calls."""
    keys, pending, outputs, calls = [], [], [], 0
    waiting = 0
    for index, method, stack in stacks:
        keys.append((index, method, len(stack)))
        pending.append(stack)
        waiting += len(stack)
        while waiting >= batch_size:
            merged = np.concatenate(pending)
            outputs.append(np.asarray(forward(merged[:batch_size]), np.float64))
            calls += 1
            pending, waiting = [merged[batch_size:]], waiting - batch_size
    if waiting:  # padded to a full batch with copies of its last image: one traced shape, not two
        rest = np.concatenate(pending)
        padding = np.repeat(rest[-1:], batch_size - waiting, axis=0)
        outputs.append(np.asarray(forward(np.concatenate([rest, padding])), np.float64)[:waiting])
        calls += 1
    return keys, np.concatenate(outputs), calls


def faithfulness_curves(
    forward: Forward,
    images: np.ndarray,
    maps: Mapping[str, Sequence[np.ndarray | None]],
    class_indices: Sequence[int] | np.ndarray,
    *,
    steps: int = 10,
    baseline: str = "blur",
    seed: int = 0,
    batch_size: int = 64,
) -> FaithfulnessResult:
    """Deletion and insertion curves of ``images`` (N, H, W, C) for ``class_indices`` (N,).

    ``maps``: method name -> N heat maps (H, W) (None for an image without one), e.g.
    ``{"gradcam": cams, "occlusion": occlusion_maps}``; a random map is added for every image.
    ``forward`` returns the class probabilities of a batch. See the module docstring.

    Raises:
        ConfigError: images, maps, classes, steps, baseline or batch size that do not fit.
    """
    images = np.asarray(images, np.float32)
    classes = np.asarray(class_indices, np.int64)
    _check(images, maps, classes, steps, batch_size)
    if baseline not in BASELINES:
        raise ConfigError(f"Unknown heat-map baseline {baseline!r}; expected one of {', '.join(BASELINES)}.")
    keys, outputs, calls = _forward_in_batches(forward, _plan(images, maps, steps, baseline, seed), batch_size)
    if outputs.ndim != 2 or classes.max() >= outputs.shape[1]:
        raise ConfigError(f"The model's output of shape {outputs.shape} has no class {int(classes.max())}.")
    fractions = np.arange(steps + 1) / steps
    per_image: list[list[MapCurves]] = [[] for _ in images]
    ends: dict[int, tuple[float, float]] = {}
    row = 0
    for index, method, length in keys:
        scores = outputs[row : row + length, classes[index]]
        row += length
        if method is None:
            ends[index] = (float(scores[0]), float(scores[1]))  # P(image), P(baseline)
            continue
        full, empty = ends[index]
        inner = steps - 1
        per_image[index].append(MapCurves(
            method,
            np.concatenate([[full], scores[:inner], [empty]]),
            np.concatenate([[empty], scores[inner:], [full]]),
            fractions,
        ))
    methods = tuple(dict.fromkeys(c.method for curves in per_image for c in curves))
    return FaithfulnessResult(
        fractions=fractions,
        baseline=baseline,
        images=tuple(ImageFaithfulness(int(c), tuple(curves)) for c, curves in zip(classes, per_image)),
        methods=methods,
        forward_images=int(outputs.shape[0]),
        forward_calls=calls,
    )
