"""Synthetic retinal OCT B-scans, deterministic with a seed, and the bundled sample data set.

Real OCT images may not be copied into this repository, so octreport carries its own generator.
The four classes differ the way they do in real scans, by the shape of the retina, never by a
global cue:

- NORMAL: smooth stacked retinal layers with a foveal pit, a bright RPE band, choroid below.
- DRUSEN: small dome-shaped elevations of the RPE band over medium-reflective material.
- DME: a thickened retina, its pit mostly gone, holding dark round or oval intraretinal cysts.
- CNV: a larger irregular RPE elevation over bright heterogeneous material, with dark
  subretinal fluid lifting the retina.

Every image also gets the same random nuisances whatever its class: curvature, tilt, vertical
shift, retinal thickness, vessel shadows, lateral shading, multiplicative speckle, a noise floor,
a contrast (gamma) and a target mean brightness. The brightness is set last, from one
distribution for all classes, so the mean grey level of an image says nothing about its class.

Everything is drawn from the ``numpy.random.Generator`` passed in; nothing touches global random
state, so the same seed gives the same arrays and, through Pillow, the same JPEG bytes (on one
platform; another NumPy/BLAS or libjpeg build may change a rare pixel by a grey level).

Regenerate the committed sample data with::

    octreport sample-data --out sample_data --seed 0 --overwrite
"""

from __future__ import annotations

import logging
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from octreport.errors import ConfigError

logger = logging.getLogger(__name__)

CLASS_NAMES = ("CNV", "DME", "DRUSEN", "NORMAL")
SPLITS = ("train", "test")
DEFAULT_TRAIN_PER_CLASS = 70
DEFAULT_TEST_PER_CLASS = 25
JPEG_QUALITY = 85

# Reflectivity of the inner retina (nerve fibre layer ... outer plexiform layer) and of the outer
# retina (outer nuclear layer ... photoreceptor tips), against the fraction of depth through each.
_INNER_DEPTH = (0.0, 0.06, 0.22, 0.34, 0.46, 0.56, 0.68, 0.80, 0.88, 1.0)
_INNER_LEVEL = (0.55, 0.85, 0.62, 0.40, 0.58, 0.50, 0.24, 0.30, 0.62, 0.34)
_OUTER_DEPTH = (0.0, 0.55, 0.62, 0.67, 0.72, 0.78, 0.86, 0.93, 1.0)
_OUTER_LEVEL = (0.24, 0.18, 0.42, 0.22, 0.24, 0.85, 0.25, 0.30, 0.40)
_FLUID_LEVEL = 0.03
_CYST_LEVEL = 0.05


@dataclass(frozen=True)
class Cyst:
    """A dark fluid pocket inside the retina, placed relative to the retina it sits in."""

    centre: float  # horizontal position, in [-1, 1] across the image
    depth: float  # 0 at the inner surface, 1 at the outer edge of the neural retina
    half_width: float  # px
    half_height: float  # px


@dataclass(frozen=True)
class Pathology:
    """What one class does to a healthy retina; arrays have shape (width,), lengths in px."""

    pit_depth: float  # fraction of the retinal thickness missing at the foveal centre
    thickening: np.ndarray  # px added to the retinal thickness
    elevation: np.ndarray  # px the RPE is lifted above Bruch's membrane
    fluid: np.ndarray  # px of subretinal fluid between the retina and the RPE
    cysts: tuple[Cyst, ...]
    sub_rpe_level: float  # reflectivity of the material under a lifted RPE
    sub_rpe_texture: float  # 0 homogeneous material, 1 very heterogeneous


@dataclass(frozen=True)
class RetinaGeometry:
    """Boundaries of one B-scan, as row positions (float px) per column, shape (width,)."""

    inner: np.ndarray  # inner limiting membrane, the top of the retina
    split: np.ndarray  # between the outer plexiform and the outer nuclear layer
    outer: np.ndarray  # photoreceptor tips, the bottom of the neural retina
    rpe: np.ndarray  # top of the RPE band
    bruch: np.ndarray  # Bruch's membrane, where the RPE rests when nothing lifts it
    rpe_thickness: float


@dataclass(frozen=True)
class SampleImage:
    """One planned file of the sample data set; ``seed_key`` seeds its own generator."""

    split: str
    class_name: str
    patient_id: int
    number: int
    seed_key: tuple[int, ...]

    @property
    def relative_path(self) -> Path:
        """``split/CLASS/CLASS-PATIENT-N.jpeg``, the Kermany layout."""
        name = f"{self.class_name}-{self.patient_id}-{self.number}.jpeg"
        return Path(self.split) / self.class_name / name


# ---------------------------------------------------------------------------------------------
# Small numeric helpers (NumPy only).


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(3 * sigma + 0.5))
    x = np.arange(-radius, radius + 1, dtype=float)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def _blur(a: np.ndarray, sigma: float, axis: int) -> np.ndarray:
    """Gaussian blur along one axis, edges padded by repetition."""
    kernel = _gaussian_kernel(sigma)
    radius = len(kernel) // 2
    pad = [(0, 0)] * a.ndim
    pad[axis] = (radius, radius)
    padded = np.pad(a, pad, mode="edge")
    n = a.shape[axis]
    return sum(w * np.take(padded, np.arange(i, i + n), axis=axis) for i, w in enumerate(kernel))


def _smooth_noise_1d(rng: np.random.Generator, n: int, knots: int) -> np.ndarray:
    """Smooth random curve of length n, about unit standard deviation."""
    values = rng.standard_normal(knots)
    curve = np.interp(np.linspace(0, knots - 1, n), np.arange(knots), values)
    return _blur(curve, n / knots / 2, axis=0)


def _interp_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Linear interpolation from n_in samples to n_out samples, as an (n_out, n_in) matrix."""
    pos = np.linspace(0, n_in - 1, n_out)
    low = np.minimum(pos.astype(int), n_in - 2)
    frac = pos - low
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), low] = 1 - frac
    m[np.arange(n_out), low + 1] = frac
    return m


def _smooth_noise_2d(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """Blobby random field in [0, 1] with features about ``cell`` px across."""
    grid = rng.random((int(shape[0] / cell) + 2, int(shape[1] / cell) + 2))
    rows, cols = _interp_matrix(shape[0], grid.shape[0]), _interp_matrix(shape[1], grid.shape[1])
    return rows @ grid @ cols.T


def _domes(u: np.ndarray, centres, half_widths, heights, power: float = 0.7) -> np.ndarray:
    """Dome-shaped bumps over the columns ``u``; overlapping domes merge (maximum, not sum)."""
    out = np.zeros_like(u)
    for c, w, h in zip(centres, half_widths, heights):
        out = np.maximum(out, h * np.clip(1 - ((u - c) / w) ** 2, 0, None) ** power)
    return out


# ---------------------------------------------------------------------------------------------
# One builder per class: what the disease does to the retina.


def _normal(rng: np.random.Generator, u: np.ndarray, fovea: float, scale: float) -> Pathology:
    zeros = np.zeros_like(u)
    return Pathology(rng.uniform(0.30, 0.55), zeros, zeros, zeros, (), 0.0, 0.0)


def _drusen(rng: np.random.Generator, u: np.ndarray, fovea: float, scale: float) -> Pathology:
    # Taller than real drusen at this scale (7.5-11 px of 128 against about 2-6): the default run
    # must tell DRUSEN from NORMAL in 15 epochs for every seed (>= 95% test accuracy for seeds 0-4).
    n = int(rng.integers(7, 12))
    centres = fovea + rng.uniform(-0.6, 0.6, n)
    elevation = _domes(u, centres, rng.uniform(0.06, 0.10, n), scale * rng.uniform(7.5, 11.0, n))
    zeros = np.zeros_like(u)
    material = rng.uniform(0.35, 0.5)  # drusen are moderately reflective, fairly homogeneous
    return Pathology(rng.uniform(0.25, 0.5), zeros, elevation, zeros, (), material, 0.2)


def _dme(rng: np.random.Generator, u: np.ndarray, fovea: float, scale: float) -> Pathology:
    centre = fovea + rng.uniform(-0.1, 0.1)
    width = rng.uniform(0.2, 0.4)
    thickening = scale * rng.uniform(9, 20) * np.exp(-(((u - centre) / width) ** 2))
    n = int(rng.integers(3, 9))
    cysts = tuple(
        Cyst(centre + width * rng.uniform(-0.8, 0.8), rng.uniform(0.35, 0.75),
             scale * rng.uniform(2.5, 7.0), scale * rng.uniform(2.0, 4.5))
        for _ in range(n)
    )
    fluid = np.zeros_like(u)
    if rng.random() < 0.25:  # DME sometimes also has a shallow serous detachment
        fluid = _domes(u, [centre], [rng.uniform(0.08, 0.15)], [scale * rng.uniform(2, 4)], 0.5)
    return Pathology(rng.uniform(0.0, 0.15), thickening, np.zeros_like(u), fluid, cysts, 0.0, 0.0)


def _cnv(rng: np.random.Generator, u: np.ndarray, fovea: float, scale: float) -> Pathology:
    centre = fovea + rng.uniform(-0.2, 0.2)
    width = rng.uniform(0.15, 0.32)
    lobes = int(rng.integers(1, 4))
    shape = _domes(u, centre + width * rng.uniform(-0.5, 0.5, lobes),
                   width * rng.uniform(0.5, 1.0, lobes), rng.uniform(0.6, 1.0, lobes), 0.6)
    shape *= 1 + 0.25 * _smooth_noise_1d(rng, len(u), 24)  # ragged top
    elevation = scale * rng.uniform(8, 13) * np.clip(shape, 0, None) / shape.max()
    side = rng.choice([-1.0, 1.0])
    fluid = _domes(u, [centre + side * width * rng.uniform(0.3, 1.0)], [rng.uniform(0.1, 0.25)],
                   [scale * rng.uniform(3, 8)], 0.6)
    thickening = scale * rng.uniform(0, 6) * np.exp(-(((u - centre) / width) ** 2))
    cysts: tuple[Cyst, ...] = ()
    if rng.random() < 0.15:  # a few CNV eyes also show small intraretinal cysts
        cysts = (Cyst(centre + rng.uniform(-0.1, 0.1), rng.uniform(0.4, 0.7),
                      scale * rng.uniform(2, 4), scale * rng.uniform(1.5, 3)),)
    return Pathology(rng.uniform(0.0, 0.3), thickening, elevation, fluid, cysts,
                     rng.uniform(0.55, 0.75), 0.8)


_PATHOLOGIES = {"CNV": _cnv, "DME": _dme, "DRUSEN": _drusen, "NORMAL": _normal}


# ---------------------------------------------------------------------------------------------
# Geometry, rendering, speckle and display.


def _geometry(rng: np.random.Generator, u: np.ndarray, fovea: float, height: int,
              pathology: Pathology) -> RetinaGeometry:
    """Stack the boundaries bottom up: Bruch's -> RPE -> fluid -> neural retina."""
    scale = height / 128
    bruch = (height * rng.uniform(0.54, 0.60) + height * rng.uniform(-0.03, 0.03) * u
             - height * rng.uniform(0.0, 0.04) * (u**2 - 0.33)
             + scale * 0.8 * _smooth_noise_1d(rng, len(u), 6))
    thickness = scale * rng.uniform(21, 27)
    pit_width = rng.uniform(0.12, 0.2)
    d = (u - fovea) / pit_width
    rim = 0.08 * np.exp(-(((np.abs(d) - 2.2) / 1.2) ** 2))  # the parafoveal rim is thickest
    retina = thickness * (1 - pathology.pit_depth * np.exp(-(d**2)) + rim) + pathology.thickening
    rpe = bruch - pathology.elevation
    outer = rpe - pathology.fluid
    # The inner surface follows broad lifts (CNV, fluid) fully, small ones (drusen) only in part.
    lift = _blur(pathology.elevation + pathology.fluid, 6 * len(u) / 256, axis=0)
    inner = np.minimum(bruch - retina - lift, outer - 0.45 * thickness)
    outer_layers = np.minimum(0.48 * thickness, 0.8 * (outer - inner))
    rpe_thickness = scale * rng.uniform(2.5, 3.5)
    return RetinaGeometry(inner, outer - outer_layers, outer, rpe, bruch, rpe_thickness)


def _layer_profile(y: np.ndarray, top: np.ndarray, bottom: np.ndarray, depth, level) -> np.ndarray:
    frac = (y - top) / np.maximum(bottom - top, 1e-3)
    inside = (frac >= 0) & (frac < 1)
    return np.where(inside, np.interp(np.clip(frac, 0, 1), depth, level), 0.0)


def _render_layers(geom: RetinaGeometry, height: int, rng: np.random.Generator) -> np.ndarray:
    """Noise-free reflectivity (about 0..1) of vitreous, retina, RPE and choroid."""
    y = np.arange(height, dtype=float)[:, None] + 0.5
    img = _layer_profile(y, geom.inner, geom.split, _INNER_DEPTH, _INNER_LEVEL)
    img += _layer_profile(y, geom.split, geom.outer, _OUTER_DEPTH, _OUTER_LEVEL)
    img += np.where((y >= geom.outer) & (y < geom.rpe), _FLUID_LEVEL, 0.0)
    img += np.where((y >= geom.rpe) & (y < geom.rpe + geom.rpe_thickness), 1.0, 0.0)
    floor = np.maximum(geom.bruch, geom.rpe + geom.rpe_thickness)
    lifted = floor - geom.rpe - geom.rpe_thickness
    img += np.where((np.abs(y - geom.bruch) < 0.8) & (lifted > 1), 0.55, 0.0)  # Bruch's line
    texture = 0.3 + 1.2 * _smooth_noise_2d(rng, img.shape, 4.0) ** 2
    depth = (y - floor) / (height * rng.uniform(0.14, 0.24))  # 1 at the choroid-sclera border
    shadow = np.exp(-0.06 * lifted)  # material under a lifted RPE shades the choroid
    choroid = 0.32 * np.exp(-0.8 * depth) / (1 + np.exp(8 * (depth - 1))) * texture * shadow
    return img + np.where(y >= floor + 0.8, choroid, 0.0)


def _paint_sub_rpe(img: np.ndarray, geom: RetinaGeometry, pathology: Pathology,
                   rng: np.random.Generator) -> np.ndarray:
    y = np.arange(img.shape[0], dtype=float)[:, None] + 0.5
    region = (y >= geom.rpe + geom.rpe_thickness) & (y < geom.bruch - 0.8)
    texture = 1 + pathology.sub_rpe_texture * (1.4 * _smooth_noise_2d(rng, img.shape, 3.0) - 0.7)
    return np.where(region, pathology.sub_rpe_level * texture, img)


def _paint_cysts(img: np.ndarray, geom: RetinaGeometry, cysts: Sequence[Cyst]) -> np.ndarray:
    height, width = img.shape
    y = np.arange(height, dtype=float)[:, None] + 0.5
    x = np.arange(width, dtype=float)[None, :] + 0.5
    out = img.copy()
    for cyst in cysts:
        col = int(np.clip((cyst.centre + 1) / 2 * width, 0, width - 1))
        top, bottom = geom.inner[col], geom.outer[col]
        ry = min(cyst.half_height, (bottom - top) / 3)
        cy = np.clip(top + cyst.depth * (bottom - top), top + ry + 1, bottom - ry - 1)
        r2 = ((x - col - 0.5) / cyst.half_width) ** 2 + ((y - cy) / max(ry, 1.0)) ** 2
        inside = np.clip((1.2 - r2) / 0.4, 0, 1)
        out = out * (1 - inside) + _CYST_LEVEL * inside
    return out


def _vessel_shadows(img: np.ndarray, geom: RetinaGeometry, rng: np.random.Generator) -> np.ndarray:
    """Retinal vessels in the nerve fibre layer shade everything below them."""
    height, width = img.shape
    y = np.arange(height, dtype=float)[:, None]
    x = np.arange(width, dtype=float)
    factor = np.ones(width)
    for _ in range(int(rng.integers(2, 6))):
        centre, half = rng.uniform(0, width), rng.uniform(0.6, 1.8) * width / 256
        factor *= 1 - rng.uniform(0.2, 0.45) * np.exp(-(((x - centre) / half) ** 2))
    below = y > geom.inner + 2
    shading = 1 + 0.12 * _smooth_noise_1d(rng, width, 5)
    return img * np.where(below, factor, 1.0) * shading


def _speckle(signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative gamma speckle on the signal plus a speckled noise floor, darker at depth."""
    height = signal.shape[0]
    looks = rng.uniform(12.0, 20.0)
    speckled = signal * rng.gamma(looks, 1 / looks, signal.shape)
    floor = np.linspace(0.14, 0.08, height)[:, None] * rng.uniform(0.8, 1.2)
    return speckled + rng.gamma(4.0, 1 / 4.0, signal.shape) * floor


def _point_spread(img: np.ndarray, sigma: float) -> np.ndarray:
    """The scanner's finite resolution: a small Gaussian blur that also sizes the speckle grain."""
    return _blur(_blur(img, sigma, axis=0), sigma, axis=1)


def _to_display(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random contrast (gamma) and mean brightness, from one distribution for every class."""
    shown = np.clip(img, 0, None) ** rng.uniform(0.8, 1.2)
    target_mean = rng.uniform(38.0, 58.0)
    shown *= target_mean / max(float(shown.mean()), 1e-6)
    return np.clip(np.rint(shown), 0, 255).astype(np.uint8)


def generate_bscan(class_name: str, rng: np.random.Generator, height: int = 128,
                   width: int = 256) -> np.ndarray:
    """One synthetic OCT B-scan of ``class_name``, as a (height, width) uint8 array.

    All randomness comes from ``rng``; the same generator state gives the same array.
    """
    if class_name not in CLASS_NAMES:
        expected = ", ".join(CLASS_NAMES)
        raise ConfigError(f"Unknown OCT class {class_name!r}; expected one of {expected}.")
    if height < 64 or width < 64:
        raise ConfigError(f"B-scan size {width}x{height} is too small; use at least 64x64 pixels.")
    u = np.linspace(-1.0, 1.0, width)  # column position, -1 at the left edge, 1 at the right
    fovea = rng.uniform(-0.12, 0.12)
    pathology = _PATHOLOGIES[class_name](rng, u, fovea, height / 128)
    geom = _geometry(rng, u, fovea, height, pathology)
    img = _render_layers(geom, height, rng)
    img = _paint_sub_rpe(img, geom, pathology, rng)
    img = _paint_cysts(img, geom, pathology.cysts)
    img = _speckle(_vessel_shadows(img, geom, rng), rng)
    return _to_display(_point_spread(img, 0.7 * height / 128), rng)


# ---------------------------------------------------------------------------------------------
# The sample data set: plan (pure), then write. Each use of randomness gets its own generator,
# keyed [seed, tag, ...] with a distinct tag (1 patient IDs, 2 images per patient, 3 pixels); the
# pixels of the i-th image of a split and class depend on (seed, split, class, i) only. (A
# SeedSequence pads short keys with zeros, so untagged keys [s, 1] and [s, 1, 0] would collide.)


def _patient_ids(seed: int, class_index: int, count: int) -> np.ndarray:
    """Distinct random-looking patient IDs for one class, shared out over both splits."""
    rng = np.random.default_rng([seed, 1, class_index])
    return 10_000 + rng.choice(9_990_000, size=count, replace=False)


def plan_sample_dataset(seed: int = 0, train_per_class: int = DEFAULT_TRAIN_PER_CLASS,
                        test_per_class: int = DEFAULT_TEST_PER_CLASS) -> tuple[SampleImage, ...]:
    """Every file of the sample data set: 1-4 images per patient, test patients not in train."""
    if seed < 0:
        raise ConfigError(f"Seed {seed} is negative; use a seed of 0 or more.")
    if train_per_class < 1 or test_per_class < 1:
        raise ConfigError("The sample data set needs at least one train and one test image "
                          f"per class, not {train_per_class} and {test_per_class}.")
    counts = {"train": train_per_class, "test": test_per_class}
    plan: list[SampleImage] = []
    for class_index, class_name in enumerate(CLASS_NAMES):
        ids = iter(_patient_ids(seed, class_index, train_per_class + test_per_class))
        sizes = np.random.default_rng([seed, 2, class_index])
        for split_index, split in enumerate(SPLITS):
            index = 0
            while index < counts[split]:
                patient = int(next(ids))
                for number in range(1, min(int(sizes.integers(1, 5)), counts[split] - index) + 1):
                    key = (seed, 3, split_index, class_index, index)
                    plan.append(SampleImage(split, class_name, patient, number, key))
                    index += 1
    return tuple(plan)


def render_sample(item: SampleImage, height: int = 128, width: int = 256, attempt: int = 0) -> np.ndarray:
    """The pixels of one planned sample image (``attempt`` > 0: a redraw, see :func:`distinct_samples`)."""
    rng = np.random.default_rng([*item.seed_key, attempt] if attempt else list(item.seed_key))
    return generate_bscan(item.class_name, rng, height, width)


DISTINCT_BITS = 8
"""Scans of different patients in the sample data differ in at least this many of the 64 bits of
their perceptual hash (the data audit flags 4 or fewer): the margin covers the few bits that JPEG
encoding and the audit's shrunk decode move a hash."""
MAX_REDRAWS = 200


def distinct_samples(plan: Sequence[SampleImage], height: int = 128, width: int = 256) -> list[np.ndarray]:
    """The pixels of every planned image, each scan redrawn (its own seed, then the next attempt)
    until its perceptual hash is :data:`DISTINCT_BITS` or more from every scan of another patient
    drawn before it, so the bundled data passes octreport's own near-duplicate audit. Scans of one
    patient may look alike, as neighbouring B-scans of one eye do."""
    from octreport.data.image_facts import hamming, phash_bits

    kept: list[np.ndarray] = []
    hashes = np.zeros(len(plan), dtype=np.uint64)
    owners = np.array([f"{item.class_name}-{item.patient_id}" for item in plan])
    for index, item in enumerate(plan):
        others = hashes[:index][owners[:index] != owners[index]]
        for attempt in range(MAX_REDRAWS):
            pixels = render_sample(item, height, width, attempt)
            value = phash_bits(pixels[None].astype(np.float64))[0]
            if not len(others) or hamming(others, value).min() >= DISTINCT_BITS:
                break
        else:
            raise RuntimeError(f"no scan of {item.relative_path} {DISTINCT_BITS} bits from the others in {MAX_REDRAWS} draws")
        hashes[index] = value
        kept.append(pixels)
    return kept


def _prepare_root(root: Path, overwrite: bool) -> None:
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} is a file; give a folder to write the sample data set into.")
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise ConfigError(f"{root} is not empty; choose an empty folder or pass overwrite=True "
                              "(--overwrite) to replace the sample images in it.")
        for split in SPLITS:  # only what this function writes; other files are left alone
            if (root / split).is_dir():
                shutil.rmtree(root / split)
    root.mkdir(parents=True, exist_ok=True)


def write_sample_dataset(root: Path, seed: int = 0, train_per_class: int = DEFAULT_TRAIN_PER_CLASS,
                         test_per_class: int = DEFAULT_TEST_PER_CLASS, height: int = 128,
                         width: int = 256, overwrite: bool = False) -> dict[str, dict[str, int]]:
    """Write a synthetic data set in the Kermany layout and return image counts per split/class.

    Layout: ``root/{train,test}/CLASS/CLASS-PATIENT-N.jpeg`` (grayscale JPEG). A non-empty
    ``root`` is refused unless ``overwrite`` is true; then its ``train/`` and ``test/`` folders
    are replaced and anything else in it is kept.
    """
    from PIL import Image  # lazy: keeps `import octreport.data.synthetic` light

    root = Path(root)
    plan = plan_sample_dataset(seed, train_per_class, test_per_class)
    _prepare_root(root, overwrite)
    counts = {split: {name: 0 for name in CLASS_NAMES} for split in SPLITS}
    for item, pixels in zip(plan, distinct_samples(plan, height, width)):
        path = root / item.relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        # 2-D uint8, so Pillow makes an "L" image
        Image.fromarray(pixels).save(path, format="JPEG", quality=JPEG_QUALITY, optimize=True)
        counts[item.split][item.class_name] += 1
    logger.info("Wrote %d synthetic B-scans to %s (seed %d)", len(plan), root, seed)
    return counts


def describe_counts(root: Path, counts: dict[str, dict[str, int]], seed: int) -> str:
    """What :func:`write_sample_dataset` wrote, for a person: the total, each split by class, and
    the command that uses it."""
    total = sum(sum(per_class.values()) for per_class in counts.values())
    lines = [f"Wrote {total:,} synthetic OCT B-scans (seed {seed}) to {root}:"]
    lines += [f"  {split}: {sum(per_class.values()):,} ({', '.join(f'{name} {n:,}' for name, n in per_class.items())})"
              for split, per_class in counts.items()]
    lines.append(f"Use them with: octreport run --data {shlex.quote(str(root))}")
    return "\n".join(lines)
