"""Heat maps you can check: faithfulness (deletion and insertion curves) and the randomisation
sanity check, for the images a report shows.

* Faithfulness: :mod:`octreport.evaluation.faithfulness`, through the model's cached compiled
  forward pass (:func:`octreport.engine.streaming.compiled_forward`), in batches.
* Sanity check (Adebayo et al. 2018): the Grad-CAM maps are computed again on a copy of the
  model whose top layers are re-initialised one by one (:mod:`octreport.engine.randomisation`),
  and compared with the trained model's maps, per image and step: Spearman's rank correlation
  and SSIM (:mod:`octreport.evaluation.heatmap_similarity`). When the mean rank correlation
  after the last step is still :data:`SANITY_THRESHOLD` or more, the maps are flagged as "not
  explained by what the model learned": they would look much the same for a model that learned
  nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from octreport.engine.randomisation import RandomisedMaps, Saliency, cascading_randomisation
from octreport.engine.streaming import active_strategy
from octreport.errors import ConfigError, ModelError
from octreport.evaluation.faithfulness import BASELINES, GRADCAM, OCCLUSION, FaithfulnessResult, faithfulness_curves
from octreport.evaluation.heatmap_similarity import nanmean, spearman, ssim

log = logging.getLogger(__name__)

SANITY_THRESHOLD = 0.5  # mean rank correlation after the cascade at or above this: flagged
MIN_CURVE_BATCH = 64  # perturbed images per forward call (at least)


@dataclass(frozen=True)
class HeatmapCheckSettings:
    """``steps``: points of each deletion/insertion curve after the first; ``baseline``: what a
    removed pixel becomes; ``randomised_layers``: the depth of the cascade; ``seed``: the random
    map, the order of tied pixels and the re-initialised weights."""

    steps: int = 10
    baseline: str = "blur"
    randomised_layers: int = 3
    seed: int = 0
    batch_size: int = 32
    threshold: float = SANITY_THRESHOLD

    def __post_init__(self) -> None:
        if not 2 <= self.steps <= 100:
            raise ConfigError(f"heat-map steps must be 2 to 100, got {self.steps}.")
        if self.baseline not in BASELINES:
            raise ConfigError(f"heat-map baseline must be one of {', '.join(BASELINES)}, got '{self.baseline}'.")
        if self.randomised_layers < 1:
            raise ConfigError(f"randomised layers must be at least 1, got {self.randomised_layers}.")


@dataclass(frozen=True, eq=False)
class SanityStep:
    """One step of the cascade: ``layer`` was re-initialised (on top of the earlier steps');
    ``spearman`` and ``ssim`` are float64 (N,), trained against randomised map per image
    (``nan`` where a map is constant)."""

    layer: str
    spearman: np.ndarray
    ssim: np.ndarray

    @property
    def mean_spearman(self) -> float | None:
        return nanmean(self.spearman)

    @property
    def mean_ssim(self) -> float | None:
        return nanmean(self.ssim)

    def to_dict(self) -> dict:
        return {
            "layer": self.layer,
            "mean_spearman": _rounded(self.mean_spearman), "mean_ssim": _rounded(self.mean_ssim),
            "spearman": [_rounded(v) for v in self.spearman], "ssim": [_rounded(v) for v in self.ssim],
        }


@dataclass(frozen=True, eq=False)
class SanityCheck:
    """The cascade's steps, top down, and the verdict."""

    steps: tuple[SanityStep, ...]
    threshold: float = SANITY_THRESHOLD

    @property
    def final(self) -> SanityStep:
        return self.steps[-1]

    @property
    def flagged_images(self) -> np.ndarray:
        """bool (N,): the maps whose rank correlation after the last step is still >= threshold."""
        return np.nan_to_num(self.final.spearman, nan=-1.0) >= self.threshold

    @property
    def flagged(self) -> bool:
        mean = self.final.mean_spearman
        return mean is not None and mean >= self.threshold

    @property
    def reading(self) -> str:
        mean, structure = self.final.mean_spearman, self.final.mean_ssim
        layers = len(self.steps)
        if mean is None:
            return "The randomisation check could not compare the maps (every map is constant)."
        measured = (f"after re-initialising the top {layers} layer(s) of a copy of the model, the Grad-CAM maps' rank "
                    f"correlation with the trained model's is {mean:.2f} on average (SSIM {_text(structure)})")
        if self.flagged:
            return (f"Not explained by what the model learned: {measured}, at or above {self.threshold:.2f}, so the maps "
                    "look much the same for a model that learned nothing.")
        return f"Passed the randomisation check: {measured}; the maps depend on the learned weights."

    def to_dict(self) -> dict:
        return {
            "threshold": self.threshold, "flagged": self.flagged,
            "flagged_images": [bool(v) for v in self.flagged_images],
            "steps": [s.to_dict() for s in self.steps], "reading": self.reading,
        }


@dataclass(frozen=True, eq=False)
class HeatmapChecks:
    """Faithfulness curves and the sanity check of the shown images' Grad-CAM maps.
    ``sanity`` is None when the check could not run; ``sanity_note`` then says why."""

    settings: HeatmapCheckSettings
    faithfulness: FaithfulnessResult
    sanity: SanityCheck | None
    sanity_note: str = ""

    def to_dict(self) -> dict:
        return {
            "faithfulness": self.faithfulness.to_dict(),
            "sanity": None if self.sanity is None else self.sanity.to_dict(),
            "sanity_note": self.sanity_note or None,
            "randomised_layers": self.settings.randomised_layers,
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def _text(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.2f}"


def sanity_check(trained: np.ndarray, randomised: RandomisedMaps, threshold: float = SANITY_THRESHOLD) -> SanityCheck:
    """Compare the trained maps (N, H, W) with each step's maps: see the module docstring."""
    trained = np.asarray(trained)
    if randomised.heatmaps.shape[1:] != trained.shape:
        raise ConfigError(f"Randomised maps of shape {randomised.heatmaps.shape[1:]} for trained maps of {trained.shape}.")
    steps = tuple(
        SanityStep(
            layer,
            np.array([spearman(t, r) for t, r in zip(trained, maps)]),
            np.array([ssim(t, r) for t, r in zip(trained, maps)]),
        )
        for layer, maps in zip(randomised.layers, randomised.heatmaps)
    )
    return SanityCheck(steps, threshold)


def gradcam_saliency(batch_size: int = 32) -> Saliency:
    """Grad-CAM (the report's own settings) as a saliency function for the randomisation check."""
    from octreport.engine.gradcam import grad_cam

    def saliency(model: Any, images: np.ndarray, classes: np.ndarray) -> np.ndarray:
        return grad_cam(model, images, classes, batch_size=batch_size).heatmaps

    return saliency


def model_forward(model: Any):
    """The model's cached compiled forward pass as a NumPy function."""
    import keras

    from octreport.engine.streaming import compiled_forward

    forward = compiled_forward(model) if isinstance(model, keras.Model) else (lambda x: model(x, training=False))
    return lambda batch: keras.ops.convert_to_numpy(forward(batch))


def compute_heatmap_checks(
    model: Any,
    pixels: np.ndarray,
    class_indices: Sequence[int] | np.ndarray,
    gradcam_maps: np.ndarray,
    occlusion_maps: Sequence[np.ndarray | None] | None = None,
    settings: HeatmapCheckSettings = HeatmapCheckSettings(),
    saliency: Saliency | None = None,
) -> HeatmapChecks:
    """Faithfulness curves and the randomisation check for ``pixels`` (N, H, W, C), their
    ``class_indices`` (N,) and Grad-CAM maps (N, H, W); ``occlusion_maps`` when the report has them.
    ``saliency`` (default Grad-CAM) recomputes the maps on the randomised copies."""
    maps: dict[str, Sequence[np.ndarray | None]] = {GRADCAM: list(gradcam_maps)}
    if occlusion_maps is not None and any(m is not None for m in occlusion_maps):
        maps[OCCLUSION] = list(occlusion_maps)
    classes = np.asarray(class_indices, np.int64)

    def randomisation() -> tuple[SanityCheck | None, str]:
        try:
            randomised = cascading_randomisation(
                model, np.asarray(pixels, np.float32), classes, saliency or gradcam_saliency(settings.batch_size),
                layers=settings.randomised_layers, seed=settings.seed,
            )
        except ModelError as error:
            return None, f"The randomisation check did not run: {error}"
        return sanity_check(gradcam_maps, randomised, settings.threshold), ""

    # The two checks share nothing but the (read-only) model: the randomisation check, mostly Python
    # (copying the model, tracing Grad-CAM on the copy), runs beside the curves' forward passes,
    # which run in TensorFlow's threads. Under a tf.distribute strategy (the calling thread's scope),
    # one after the other. Each is seeded on its own, so the results do not depend on the order.
    with ThreadPoolExecutor(1) as pool:
        checked = pool.submit(randomisation) if active_strategy() is None else None
        faithfulness = faithfulness_curves(
            model_forward(model), pixels, maps, classes, steps=settings.steps, baseline=settings.baseline,
            seed=settings.seed, batch_size=max(MIN_CURVE_BATCH, settings.batch_size),
        )
        sanity, note = checked.result() if checked is not None else randomisation()
    if note:
        log.warning("%s", note)
    log.info("heat-map checks: %d perturbed images in %d forward calls; %s", faithfulness.forward_images,
             faithfulness.forward_calls, "sanity flagged" if sanity is not None and sanity.flagged else "sanity ok")
    return HeatmapChecks(settings, faithfulness, sanity, note)
