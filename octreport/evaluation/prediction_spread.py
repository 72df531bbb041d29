"""Whether a model's predictions on the test split collapse to one answer: what a model fed the
wrong input convention (0-1 where it was trained on 0-255, say) typically does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

COLLAPSED_SHARE = 0.95
"""One class predicted for at least this share of the test images reads as collapsed..."""
FLAT_STD = 0.01
"""...as do class probabilities whose standard deviation over the images stays below this."""
MIN_IMAGES = 10


@dataclass(frozen=True)
class PredictionSpread:
    """How varied a model's answers are over ``n_images`` test images: the class predicted most
    (``top_class``) and its share, and the largest standard deviation of one class's
    probability over the images. ``collapsed``: the model gives (nearly) one answer to all."""

    n_images: int
    top_class: str
    top_count: int
    largest_std: float
    true_classes: int

    @property
    def top_share(self) -> float:
        return self.top_count / self.n_images if self.n_images else 0.0

    @property
    def collapsed(self) -> bool:
        if self.n_images < MIN_IMAGES or self.true_classes < 2:
            return False
        return self.top_share >= COLLAPSED_SHARE or self.largest_std < FLAT_STD

    def describe(self) -> str:
        """The finding in words (meaningful when ``collapsed``)."""
        return (f"the model predicted {self.top_class} for {self.top_count:,} of the {self.n_images:,} test images "
                f"(which hold {self.true_classes} classes), and its class probabilities barely change from image to "
                f"image (largest standard deviation {self.largest_std:.3f})" if self.largest_std < FLAT_STD else
                f"the model predicted {self.top_class} for {self.top_count:,} of the {self.n_images:,} test images "
                f"({self.top_share:.0%}), which hold {self.true_classes} classes")


def prediction_spread(probabilities: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> PredictionSpread:
    """``probabilities`` (N, K) and true ``labels`` (N,) of the test images."""
    probabilities = np.asarray(probabilities, np.float64)
    n = int(probabilities.shape[0])
    if n == 0:
        return PredictionSpread(0, class_names[0] if class_names else "", 0, 0.0, 0)
    counts = np.bincount(probabilities.argmax(axis=1), minlength=len(class_names))
    top = int(counts.argmax())
    return PredictionSpread(n, class_names[top], int(counts[top]), float(probabilities.std(axis=0).max()),
                            int(len(np.unique(np.asarray(labels)))))
