"""Does the model still give the probabilities the run recorded? Load it, re-run it, compare.

:func:`load_model_for_verify` loads the model file and hashes its weights; :func:`rerun` predicts
the given images in one streaming pass (:func:`octreport.evaluation.predict.predict_items`, the
same preprocessing the run recorded); :func:`compare_probabilities` (pure NumPy) says which images'
probabilities moved by more than the tolerance. TensorFlow is imported only by the first two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_TOLERANCE = 1e-4
"""Largest absolute difference allowed in any class probability of any image. A model re-run on the
same CPU gives the recorded float32 outputs to about 1e-7; other hardware or library versions to
about 1e-5; any retraining moves them by far more."""


@dataclass(frozen=True)
class ProbabilityCheck:
    """``worst``: ``(path, largest |difference|)`` beyond the tolerance, largest first;
    ``missing``: images that could not be re-run (gone, or no longer decodable)."""

    compared: int
    tolerance: float
    max_difference: float
    worst: tuple[tuple[str, float], ...]
    missing: tuple[str, ...]
    predicted_changed: int

    @property
    def holds(self) -> bool:
        return not self.worst and not self.missing


def compare_probabilities(
    names: Sequence[str], recorded: np.ndarray, current: Sequence[np.ndarray | None], tolerance: float
) -> ProbabilityCheck:
    """``recorded`` (N, K) against ``current`` (one (K,) row per image, None when it could not be re-run)."""
    recorded = np.asarray(recorded, dtype=np.float64)
    differences, missing, changed = [], [], 0
    for name, before, now in zip(names, recorded, current):
        if now is None:
            missing.append(name)
            continue
        now = np.asarray(now, dtype=np.float64)
        differences.append((name, float(np.max(np.abs(now - before)))))
        changed += int(np.argmax(now) != np.argmax(before))
    worst = tuple(sorted(((n, d) for n, d in differences if d > tolerance), key=lambda pair: -pair[1]))
    largest = max((d for _, d in differences), default=0.0)
    return ProbabilityCheck(len(differences), tolerance, largest, worst, tuple(missing), changed)


def load_model_for_verify(path: Path) -> tuple[Any, str]:
    """The model at ``path`` and the SHA-256 of its weights; a :class:`ModelError` when it cannot be loaded."""
    from octreport.logsetup import import_tensorflow_quietly

    import_tensorflow_quietly()  # before keras is imported: it imports TensorFlow
    from octreport.hashing import sha256_weights
    from octreport.models.io import load_model

    loaded = load_model(path)
    return loaded.model, sha256_weights(loaded.model)


def rerun(model: Any, paths: Sequence[Path], preprocessing: dict, batch_size: int = 32) -> list[np.ndarray | None]:
    """The model's probabilities for each of ``paths`` (None for a file that is gone or cannot be decoded)."""
    from octreport.data.layout import item_of_name
    from octreport.data.preprocessing import Preprocessing
    from octreport.evaluation.predict import predict_items

    items = [item_of_name(Path(p)) for p in paths]  # FILE.dcm#FRAME: that frame of the volume
    present = [item for item in items if item.path.is_file()]
    if not present:
        return [None] * len(paths)
    predictions = predict_items(model, present, Preprocessing.from_dict(preprocessing), batch_size)
    by_item = {item: row for item, row in zip(predictions.items, predictions.probabilities)}
    return [by_item.get(item) for item in items]
