"""Heat-map drift between two runs: did the Grad-CAM maps of the images both runs showed change?

Each run records in ``metrics.json`` (``heatmap_maps``) the Grad-CAM maps of its shown images,
block-averaged to at most 16 x 16 (:func:`octreport.evaluation.heatmap_similarity.downsample`),
keyed by the image's path relative to the data folder and the class the map is for. Maps of the
same image and class in both runs are paired; each pair gets Spearman's rank correlation and
SSIM, and the mean correlation is read against what else changed:

* the model changed (its weights' hash differs) but the maps did not (mean correlation
  :data:`UNCHANGED` or more): the maps may not reflect the model (see the randomisation check);
* the maps changed much (mean correlation below :data:`CHANGED`) while accuracy did not
  (not a significant change, or within one point when it was not tested): the model now looks
  elsewhere for the same answers, which a reader should check.

Pin the images with ``--sentinels FILE`` so that nightly runs show, and compare, the same scans.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from octreport.evaluation.heatmap_similarity import nanmean, spearman, ssim

UNCHANGED = 0.9
CHANGED = 0.5
ACCURACY_TOLERANCE = 0.01  # an untested accuracy change within this counts as unchanged


@dataclass(frozen=True)
class MapPair:
    """One image and class in both runs: rank correlation and SSIM of the two maps (None when a
    map is constant or the two were recorded at different sizes)."""

    image: str
    class_name: str
    spearman: float | None
    ssim: float | None


@dataclass(frozen=True)
class HeatmapDrift:
    """The maps both runs recorded, paired; ``flags`` says what a reader should look at."""

    pairs: tuple[MapPair, ...]
    only_in_a: int
    only_in_b: int
    model_changed: bool | None
    accuracy_changed: bool | None
    flags: tuple[str, ...]

    @property
    def mean_spearman(self) -> float | None:
        return nanmean(np.array([p.spearman if p.spearman is not None else np.nan for p in self.pairs]))

    @property
    def mean_ssim(self) -> float | None:
        return nanmean(np.array([p.ssim if p.ssim is not None else np.nan for p in self.pairs]))

    @property
    def note(self) -> str:
        if not self.pairs:
            return ("No image was shown with the same class in both runs, so their heat maps cannot be compared "
                    "(pin the images with --sentinels FILE).")
        mean = self.mean_spearman
        text = (f"{len(self.pairs)} heat map(s) of the same image and class in both runs: mean rank correlation "
                f"{'undefined' if mean is None else format(mean, '.2f')}")
        structure = self.mean_ssim
        if structure is not None:
            text += f", mean SSIM {structure:.2f}"
        if self.only_in_a or self.only_in_b:
            text += f" ({self.only_in_a} only in A, {self.only_in_b} only in B)"
        return text + "."

    def to_dict(self) -> dict[str, Any]:
        return {
            "pairs": [p.__dict__ for p in self.pairs], "mean_spearman": self.mean_spearman, "mean_ssim": self.mean_ssim,
            "only_in_a": self.only_in_a, "only_in_b": self.only_in_b, "flags": list(self.flags),
        }


def recorded_maps(metrics: Mapping[str, Any]) -> dict[tuple[str, str], np.ndarray]:
    """(image, class) -> the map a run recorded (float64 (h, w)); empty for a run without."""
    found = {}
    for entry in metrics.get("heatmap_maps") or []:
        try:
            found[(str(entry["image"]), str(entry["class"]))] = np.asarray(entry["map"], np.float64)
        except (KeyError, TypeError, ValueError):
            continue
    return found


def _pair(image: str, class_name: str, a: np.ndarray, b: np.ndarray) -> MapPair:
    if a.shape != b.shape or a.ndim != 2:
        return MapPair(image, class_name, None, None)
    rho = spearman(a, b)
    return MapPair(image, class_name, None if not np.isfinite(rho) else rho, ssim(a, b))


def _flags(mean: float | None, model_changed: bool | None, accuracy_changed: bool | None) -> tuple[str, ...]:
    if mean is None:
        return ()
    flags = []
    if model_changed and mean >= UNCHANGED:
        flags.append(f"The model changed but its heat maps did not (mean rank correlation {mean:.2f} >= {UNCHANGED}): "
                     "the maps may not reflect what the model learned; see the randomisation check.")
    if accuracy_changed is False and mean < CHANGED:
        flags.append(f"The heat maps changed much (mean rank correlation {mean:.2f} < {CHANGED}) while accuracy did not: "
                     "the model finds its answers elsewhere in the images; look at the maps before trusting the run.")
    return tuple(flags)


def heatmap_drift(
    a: Mapping[str, Any], b: Mapping[str, Any], *, model_changed: bool | None, accuracy_changed: bool | None,
) -> HeatmapDrift | None:
    """The drift from run A's maps to run B's (their ``metrics.json``); None when neither recorded maps."""
    maps_a, maps_b = recorded_maps(a), recorded_maps(b)
    if not maps_a and not maps_b:
        return None
    both = [key for key in maps_a if key in maps_b]
    pairs = tuple(_pair(image, name, maps_a[(image, name)], maps_b[(image, name)]) for image, name in both)
    drift = HeatmapDrift(pairs, len(maps_a) - len(both), len(maps_b) - len(both), model_changed, accuracy_changed, ())
    return HeatmapDrift(pairs, drift.only_in_a, drift.only_in_b, model_changed, accuracy_changed,
                        _flags(drift.mean_spearman, model_changed, accuracy_changed))
