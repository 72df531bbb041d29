"""How a set of scans was acquired and exported, in a few numbers, and what differs between two sets.

An :class:`AcquisitionProfile` summarises the :class:`~octreport.data.image_facts.ImageFacts` of a
set of images (no image is read here): how many have each stored size (width x height), each aspect
ratio, each file type and each channel count, and how bright they are. Brightness is the spread,
across the images, of three per-image intensity percentiles (1st, 50th, 99th of each scan's
grayscale values, on a 0-1 scale): for each, the 5th, 50th and 95th percentile over the images.

Training records the profile of its training images in the model's sidecar
(:class:`~octreport.models.metadata.ModelMetadata`); every report profiles the evaluated images and
:func:`compare_profiles` says, in plain words, what differs *materially*:

- **a size or aspect ratio** that is rare in training (under :data:`RARE_IN_TRAINING`, 5%) but common in
  the evaluated set (over :data:`COMMON_IN_EVALUATED`, 20%). A random split of one data set cannot
  do that: a size at 5% of training lies near 5% of a test split, well below 20%, unless the test
  split is a few dozen images. Kermany's external scans do: 77% were 512 px wide, 0% of the
  training scans (issue 13). The aspect ratio is compared only when no size was named, since a
  size that changed names its aspect ratio with it.
- **a file type or channel count** never seen in training that is at least :data:`UNSEEN_MIN_SHARE`
  (5%) of the evaluated set, or rare in training and common in the evaluated set as above: PNG
  where training was JPEG (no compression artefacts), RGB where it was grayscale.
- **intensity**: the typical evaluated scan (the median over the images of a per-image percentile)
  differs from the typical training scan by more than half the width of the training scans' middle
  90% (their 5th-95th percentiles) and by at least :data:`INTENSITY_FLOOR` (0.02 of the 0-1 scale,
  about 5 grey levels). For a random split of one data set the median moves by a small fraction of
  that (its standard error is about 1.25 sd / sqrt(n), the half-width about 1.6 sd, so even 5 test
  scans stay silent 99% of the time); the floor keeps a training set of very uniform brightness
  (synthetic data) from flagging a difference no model would notice. Measured on the 1,000 scans of
  ``../shared/oct-real``, 800 against the other 200 or 20 for 50 random seeds: the typical values
  moved by at most 0.009 (15% of the threshold) and no split raised any finding; 100 scans darkened
  to 60% are flagged by the bright end (0.60 against 1.00, training 0.59-1.00), not by the
  median (0.06 against 0.11, half-width 0.06), which OCT's dark background keeps low.
- **a device** (DICOM Manufacturer and ManufacturerModelName) as a file type above, but only when the
  training profile knows its images' devices: a model trained on JPEGs knows none, and every DICOM
  set would otherwise be "another device". The profile counts the devices either way.

Pure NumPy; the profile round-trips through :meth:`AcquisitionProfile.to_dict` and
:meth:`AcquisitionProfile.from_dict` (JSON types only).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from octreport.data.image_facts import INTENSITY_PERCENTILES, ImageFacts

RARE_IN_TRAINING = 0.05
"""A size, aspect ratio, file type or channel count below this share of the training images is rare there."""
COMMON_IN_EVALUATED = 0.20
"""... and material when it is above this share of the evaluated images."""
UNSEEN_MIN_SHARE = 0.05
"""A file type or channel count absent from training is material from this share of the evaluated images."""
INTENSITY_SHIFT = 0.5
"""A typical evaluated percentile is material when it moved by more than this share of training's 5th-95th range ..."""
INTENSITY_FLOOR = 0.02
"""... and by at least this much (0-1 scale)."""
SPREAD_PERCENTILES = (5, 50, 95)
"""How each per-image intensity percentile is summarised across the images."""
MAX_KEPT = 20
"""Sizes kept in a profile, most frequent first; the rest are counted together as ``other_sizes``."""

THRESHOLDS = {
    "rare_in_training": RARE_IN_TRAINING, "common_in_evaluated": COMMON_IN_EVALUATED,
    "unseen_min_share": UNSEEN_MIN_SHARE,
    "intensity_shift": f"median over the images moved by more than {INTENSITY_SHIFT:g} x the training images' "
                       f"5th-95th percentile range, and by at least {INTENSITY_FLOOR:g}",
}
_INTENSITY_NAMES = {1: "dark end (1st percentile)", 50: "median (50th percentile)", 99: "bright end (99th percentile)"}


@dataclass(frozen=True)
class IntensitySpread:
    """One per-image intensity percentile (``percentile``: 1, 50 or 99) across the images: its
    5th (``low``), 50th (``median``) and 95th (``high``) percentile, on a 0-1 scale."""

    percentile: int
    low: float
    median: float
    high: float

    def to_dict(self) -> dict:
        return {"percentile": self.percentile, "low": self.low, "median": self.median, "high": self.high}


Counts = tuple[tuple[str, int], ...]
"""``(value, images)`` pairs, most frequent first (ties by value)."""


@dataclass(frozen=True)
class AcquisitionProfile:
    """The acquisition profile of ``n_images`` decoded images (``undecoded`` more could not be read).

    ``sizes``: ``("1024x496", n)`` (width x height, px), at most :data:`MAX_KEPT`, the rest counted in
    ``other_sizes``; ``aspect_ratios``: ``("2.1", n)`` (width / height to one decimal);
    ``file_types``: ``("jpeg", n)``; ``channels``: ``("1", n)`` (``"0"``: unknown);
    ``intensity``: one :class:`IntensitySpread` per per-image percentile (empty when the facts have none);
    ``devices``: ``("Heidelberg Engineering Spectralis", n)``, the DICOM Manufacturer and
    ManufacturerModelName of the images whose file names one (empty when none does; a profile
    recorded before devices were kept has none).
    """

    n_images: int
    sizes: Counts
    aspect_ratios: Counts
    file_types: Counts
    channels: Counts
    intensity: tuple[IntensitySpread, ...] = ()
    other_sizes: int = 0
    undecoded: int = 0
    devices: Counts = ()

    def share(self, counts: Counts, value: str) -> float:
        """The share of the images whose value in ``counts`` (one of this profile's) is ``value``."""
        return dict(counts).get(value, 0) / self.n_images if self.n_images else 0.0

    def spread(self, percentile: int) -> IntensitySpread | None:
        return next((s for s in self.intensity if s.percentile == percentile), None)

    def to_dict(self) -> dict:
        return {
            "n_images": self.n_images, "undecoded": self.undecoded,
            "sizes": dict(self.sizes), "other_sizes": self.other_sizes,
            "aspect_ratios": dict(self.aspect_ratios), "file_types": dict(self.file_types),
            "channels": dict(self.channels), "intensity": [s.to_dict() for s in self.intensity],
            "devices": dict(self.devices),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "AcquisitionProfile":
        """Read :meth:`to_dict`'s output back (KeyError, TypeError or ValueError when it is not one)."""
        return cls(
            n_images=int(data["n_images"]),
            sizes=_counts(data["sizes"]),
            aspect_ratios=_counts(data["aspect_ratios"]),
            file_types=_counts(data["file_types"]),
            channels=_counts(data["channels"]),
            intensity=tuple(IntensitySpread(int(s["percentile"]), float(s["low"]), float(s["median"]), float(s["high"]))
                            for s in data.get("intensity", ())),
            other_sizes=int(data.get("other_sizes", 0)),
            undecoded=int(data.get("undecoded", 0)),
            devices=_counts(data.get("devices", {})),
        )


def _counts(values: Mapping | Iterable) -> Counts:
    pairs = values.items() if isinstance(values, Mapping) else values
    return tuple(sorted(((str(k), int(n)) for k, n in pairs), key=lambda kv: (-kv[1], kv[0])))


def size_label(width: int, height: int) -> str:
    """``"1024x496"``: width x height in pixels, how the report names a size group."""
    return f"{int(width)}x{int(height)}"


def size_labels(facts: ImageFacts) -> list[str]:
    """Each image's size group (``"1024x496"``; ``"unreadable"`` where it was not decoded)."""
    return [size_label(w, h) if ok else "unreadable"
            for w, h, ok in zip(facts.width.tolist(), facts.height.tolist(), facts.decoded.tolist())]


def profile_from_facts(facts: ImageFacts, devices: Sequence[str] = ()) -> AcquisitionProfile:
    """The profile of the decoded images among ``facts``; ``devices``: each image's DICOM device
    (aligned with ``facts``; "" where its file names none), or empty."""
    ok = np.asarray(facts.decoded, bool)
    named = Counter(d for d, keep in zip(devices, ok.tolist()) if keep and d)
    width, height = facts.width[ok].astype(np.int64), facts.height[ok].astype(np.int64)
    sizes = _counts(Counter(size_label(w, h) for w, h in zip(width.tolist(), height.tolist())))
    ratios = Counter(f"{w / h:.1f}" for w, h in zip(width.tolist(), height.tolist()) if h > 0)
    channels = Counter() if facts.channels is None else Counter(str(int(c)) for c in facts.channels[ok])
    intensity: tuple[IntensitySpread, ...] = ()
    if facts.intensity_percentiles is not None and ok.any():
        spread = np.percentile(facts.intensity_percentiles[ok].astype(np.float64), SPREAD_PERCENTILES, axis=0)
        intensity = tuple(IntensitySpread(q, *(round(float(v), 4) for v in spread[:, column]))
                          for column, q in enumerate(INTENSITY_PERCENTILES))
    return AcquisitionProfile(
        n_images=int(ok.sum()),
        sizes=sizes[:MAX_KEPT],
        aspect_ratios=_counts(ratios),
        file_types=_counts(Counter(str(t) for t in facts.file_type[ok])),
        channels=_counts(channels),
        intensity=intensity,
        other_sizes=sum(n for _, n in sizes[MAX_KEPT:]),
        undecoded=int((~ok).sum()),
        devices=_counts(named)[:MAX_KEPT],
    )


@dataclass(frozen=True)
class ShiftFinding:
    """One material difference: ``kind`` (``size``, ``aspect ratio``, ``file type``, ``channels``,
    ``intensity``) and a sentence that names it."""

    kind: str
    text: str

    def to_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text}


NO_TRAINING_PROFILE = ("No training profile was available (a model octreport did not train, or one saved before "
                       "octreport recorded it), so the evaluated scans could not be compared with the training scans.")


@dataclass(frozen=True)
class ShiftReport:
    """The evaluated images' profile beside the training images' (None when the model has none),
    and the material differences found."""

    training: AcquisitionProfile | None
    evaluated: AcquisitionProfile
    findings: tuple[ShiftFinding, ...]

    @property
    def material(self) -> bool:
        return bool(self.findings)

    @property
    def note(self) -> str:
        """Why nothing was compared, or an empty string."""
        if self.training is None:
            return NO_TRAINING_PROFILE
        if not self.training.n_images or not self.evaluated.n_images:
            return "No scans to compare: the training or the evaluated set has no readable image."
        return ""

    def to_dict(self) -> dict:
        """The ``data_shift`` entry of metrics.json."""
        return {
            "training_profile": None if self.training is None else self.training.to_dict(),
            "evaluated_profile": self.evaluated.to_dict(),
            "material": self.material,
            "findings": [f.to_dict() for f in self.findings],
            "note": self.note,
            "thresholds": dict(THRESHOLDS),
        }


def compare_profiles(training: AcquisitionProfile | None, evaluated: AcquisitionProfile,
                     aspect: str | None = None) -> ShiftReport:
    """What differs materially between ``training``'s and ``evaluated``'s images (module docstring).
    ``aspect``: how the model's preprocessing fits a scan to its input (``stretch``, ``pad`` or
    ``crop``); with a size or aspect-ratio finding, a further finding says what that does to them."""
    if training is None or not training.n_images or not evaluated.n_images:
        return ShiftReport(training, evaluated, ())
    findings = _categorical(training, evaluated, "size", training.sizes, evaluated.sizes, "are {} px", " px")
    if not findings:
        findings = _categorical(training, evaluated, "aspect ratio", training.aspect_ratios, evaluated.aspect_ratios,
                                "have a width:height ratio of {}:1", ":1")
    if findings and aspect in GEOMETRY:
        findings.append(ShiftFinding("geometry", GEOMETRY[aspect]))
    findings += _categorical(training, evaluated, "file type", training.file_types, evaluated.file_types,
                             "are {} files", "", unseen=True)
    findings += _categorical(training, evaluated, "channels", training.channels, evaluated.channels,
                             "have {} colour channel(s)", " channel(s)", unseen=True)
    if training.devices:  # a device unseen in training is named only where training's devices are known
        findings += _categorical(training, evaluated, "device", training.devices, evaluated.devices,
                                 "come from a {} device", "", unseen=True)
    intensity = _intensity(training, evaluated)
    return ShiftReport(training, evaluated, tuple(findings) + ((intensity,) if intensity else ()))


GEOMETRY = {
    "crop": ("The model's preprocessing cuts each scan to its input's aspect ratio at the stored pixel scale (aspect "
             "'crop'): a scan of another width reaches it at another zoom, with part of the retina cut. If these exports "
             "cover the same field of view, resample them to the training width, or retrain with aspect 'stretch'."),
    "pad": ("The model's preprocessing pads each scan to its input's aspect ratio (aspect 'pad'): a scan of another "
            "width reaches it at another scale, with black bars of another size."),
    "stretch": ("The model's preprocessing fits each scan's whole width and height to its input (aspect 'stretch'): an "
                "export of the same field of view at another width reaches it alike, one of another field of view does not."),
}
"""What a size or aspect-ratio shift does to a model, by how its preprocessing fits a scan to its input."""


def _categorical(training: AcquisitionProfile, evaluated: AcquisitionProfile, kind: str, train_counts: Counts,
                 eval_counts: Counts, phrase: str, unit: str, unseen: bool = False) -> list[ShiftFinding]:
    """A finding per value common in ``evaluated`` and rare in ``training`` (or, with ``unseen``,
    absent from training and at least :data:`UNSEEN_MIN_SHARE` of ``evaluated``)."""
    found = []
    top, top_count = train_counts[0] if train_counts else ("?", 0)
    for value, count in eval_counts:
        share, train_share = count / evaluated.n_images, training.share(train_counts, value)
        rare_and_common = train_share < RARE_IN_TRAINING and share > COMMON_IN_EVALUATED
        if not (rare_and_common or (unseen and train_share == 0 and share >= UNSEEN_MIN_SHARE)):
            continue
        shown = value.upper() if kind == "file type" else value
        trained = "none" if train_share == 0 else f"{train_share:.0%}"
        found.append(ShiftFinding(kind, (
            f"{share:.0%} of these scans {phrase.format(shown)} (training: {trained}); the model was trained on "
            f"{top.upper() if kind == 'file type' else top}{unit} scans ({top_count / training.n_images:.0%}).")))
    return found


def _intensity(training: AcquisitionProfile, evaluated: AcquisitionProfile) -> ShiftFinding | None:
    """One finding naming each per-image percentile whose typical evaluated value moved from the
    typical training value by more than :data:`INTENSITY_SHIFT` of training's 5th-95th range (and
    at least :data:`INTENSITY_FLOOR`)."""
    parts, directions = [], {}
    for train in training.intensity:
        typical = evaluated.spread(train.percentile)
        if typical is None:
            continue
        moved = typical.median - train.median
        if abs(moved) <= max(INTENSITY_SHIFT * (train.high - train.low), INTENSITY_FLOOR):
            continue
        directions[train.percentile] = 1 if moved > 0 else -1
        parts.append(f"{_INTENSITY_NAMES.get(train.percentile, f'{train.percentile}th percentile')} is "
                     f"{typical.median:.2f}, the training scans' {train.median:.2f} (90% of them "
                     f"{train.low:.2f}-{train.high:.2f})")
    if not parts:
        return None
    return ShiftFinding("intensity", (
        f"These scans are {_direction(directions)} than the training scans: a typical scan's {'; its '.join(parts)}; "
        "grayscale 0-1."))


def _direction(directions: Mapping[int, int]) -> str:
    values = set(directions.values())
    if values == {-1}:
        return "darker"
    if values == {1}:
        return "brighter"
    low, high = directions.get(min(directions)), directions.get(max(directions))
    return "lower in contrast" if low == 1 or high == -1 else "higher in contrast"
