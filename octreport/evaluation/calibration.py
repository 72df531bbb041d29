"""Calibration: does a model's confidence mean what it says? (pure NumPy)

* **Reliability** (top label): the test images are binned by the model's confidence (its largest
  probability) into equal-width bins; in each bin the mean confidence is set against the share of
  images classified correctly. A calibrated model is right 90% of the time when it says 90%.
* **Expected calibration error** (ECE, Guo et al. 2017): the mean of ``|accuracy - confidence|``
  over the bins, weighted by each bin's share of images. 0 is perfect.
* **Brier score** (multi-class, Brier 1950): the mean over images of ``sum_k (p_k - y_k)^2`` with
  ``y`` one-hot; 0 is perfect, 2 the worst, ``1 - 1/K`` a uniform guess.
* **Temperature scaling** (Guo et al. 2017): one number ``T`` that divides the logits
  (``softmax(log p / T)``), fitted by minimising the negative log-likelihood on the validation
  split. It never changes the predicted class. octreport reports what it would do; it never
  applies it to the model or to any other number of the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from octreport.evaluation.metrics import validate_predictions

N_BINS = 10
_LOG_FLOOR = 1e-12
_BETA_RANGE = (0.05, 20.0)  # 1 / T searched in here: T from 0.05 to 20
_GOLDEN = (np.sqrt(5.0) - 1) / 2


@dataclass(frozen=True)
class ReliabilityBin:
    """Images whose confidence lies in ``[low, high)`` (the last bin includes 1)."""

    low: float
    high: float
    count: int
    mean_confidence: float | None
    accuracy: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "count": self.count,
                "mean_confidence": self.mean_confidence, "accuracy": self.accuracy}


@dataclass(frozen=True)
class TemperatureScaling:
    """What temperature scaling fitted on the validation split would do (reported, not applied)."""

    temperature: float
    val_images: int
    val_nll_before: float
    val_nll_after: float
    test_nll_before: float
    test_nll_after: float
    test_ece_after: float
    test_brier_after: float

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class CalibrationResult:
    """Top-label reliability, ECE and Brier score on the test split, in plain words too."""

    n_images: int
    bins: tuple[ReliabilityBin, ...]
    ece: float
    brier: float
    nll: float
    mean_confidence: float
    accuracy: float
    reading: str
    temperature: TemperatureScaling | None = None
    temperature_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_images": self.n_images,
            "binning": f"{len(self.bins)} equal-width bins of the top-label confidence",
            "ece": self.ece,
            "brier": self.brier,
            "nll": self.nll,
            "mean_confidence": self.mean_confidence,
            "accuracy": self.accuracy,
            "reading": self.reading,
            "bins": [b.to_dict() for b in self.bins],
            "temperature_scaling": None if self.temperature is None else self.temperature.to_dict(),
            "temperature_note": self.temperature_note,
        }


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS) -> tuple[ReliabilityBin, ...]:
    """Equal-width bins of ``confidence`` (N,) in [0, 1] with the accuracy of ``correct`` (N,) in each."""
    confidence = np.clip(np.asarray(confidence, dtype=np.float64), 0.0, 1.0)
    correct = np.asarray(correct, dtype=bool)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    confidence_sums = np.bincount(index, weights=confidence, minlength=n_bins)
    correct_sums = np.bincount(index, weights=correct.astype(np.float64), minlength=n_bins)
    return tuple(
        ReliabilityBin(
            float(edges[i]), float(edges[i + 1]), int(counts[i]),
            float(confidence_sums[i] / counts[i]) if counts[i] else None,
            float(correct_sums[i] / counts[i]) if counts[i] else None,
        )
        for i in range(n_bins)
    )


def expected_calibration_error(y_true: np.ndarray, probabilities: np.ndarray, n_bins: int = N_BINS) -> float:
    """Top-label ECE: sum over bins of ``(count / N) * |accuracy - mean confidence|``."""
    p = np.asarray(probabilities, dtype=np.float64)
    bins = reliability_bins(p.max(axis=1), p.argmax(axis=1) == np.asarray(y_true), n_bins)
    n = p.shape[0]
    return float(sum(b.count / n * abs(b.accuracy - b.mean_confidence) for b in bins if b.count))


def brier_score(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """Multi-class Brier score: mean over images of ``sum_k (p_k - onehot_k)^2`` (0 best, 2 worst)."""
    p = np.asarray(probabilities, dtype=np.float64)
    onehot = np.zeros_like(p)
    onehot[np.arange(p.shape[0]), np.asarray(y_true)] = 1.0
    return float(((p - onehot) ** 2).sum(axis=1).mean())


def uniform_brier_score(n_classes: int) -> float:
    """The Brier score of a uniform guess over ``n_classes`` classes: ``1 - 1 / n_classes``."""
    return 1 - 1 / max(1, n_classes)


def negative_log_likelihood(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean of ``-log p[true class]`` (probabilities floored at 1e-12)."""
    p = np.asarray(probabilities, dtype=np.float64)
    return float(-np.log(np.maximum(p[np.arange(p.shape[0]), np.asarray(y_true)], _LOG_FLOOR)).mean())


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)``: the same ranking in every row, sharper (T < 1) or softer (T > 1)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = np.log(np.maximum(np.asarray(probabilities, dtype=np.float64), _LOG_FLOOR)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=1, keepdims=True)


def fit_temperature(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises the NLL of ``apply_temperature(probabilities, T)``.

    The NLL is convex in ``1 / T`` (a log-sum-exp minus a linear term), so a golden-section search
    over ``1 / T`` finds its minimum; T = 1 (no change) is kept when nothing does better.
    """
    y = np.asarray(y_true)
    logp = np.log(np.maximum(np.asarray(probabilities, dtype=np.float64), _LOG_FLOOR))
    rows = np.arange(logp.shape[0])

    def nll(beta: float) -> float:
        z = beta * logp
        top = z.max(axis=1)
        return float((top + np.log(np.exp(z - top[:, None]).sum(axis=1)) - z[rows, y]).mean())

    low, high = _BETA_RANGE
    a, b = high - _GOLDEN * (high - low), low + _GOLDEN * (high - low)
    fa, fb = nll(a), nll(b)
    for _ in range(80):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - _GOLDEN * (high - low)
            fa = nll(a)
        else:
            low, a, fa = a, b, fb
            b = low + _GOLDEN * (high - low)
            fb = nll(b)
    beta = (low + high) / 2
    return 1.0 / beta if nll(beta) < nll(1.0) else 1.0


def calibration_reading(bins: tuple[ReliabilityBin, ...], mean_confidence: float, accuracy: float, ece: float) -> str:
    """A few sentences in plain words: what the model's confidence means, and how far off it is."""
    populated = [b for b in bins if b.count]
    busiest = max(populated, key=lambda b: (b.count, b.low))
    n = sum(b.count for b in populated)
    sentences = [
        f"When the model says {busiest.mean_confidence:.0%} (its confidence lies between {busiest.low:.0%} and "
        f"{busiest.high:.0%} for {busiest.count:,} of the {n:,} test images, the most common range), it is right "
        f"{busiest.accuracy:.0%} of the time."
    ]
    gap = mean_confidence - accuracy
    if abs(gap) < 0.005:
        lean = "as confident as it is accurate"
    else:
        lean = f"{'over' if gap > 0 else 'under'}confident by {abs(gap) * 100:.1f} points"
    quality = ("well calibrated" if ece < 0.02 else "fairly well calibrated" if ece < 0.05
               else "noticeably miscalibrated" if ece < 0.10 else "poorly calibrated")
    sentences.append(
        f"On average it is {mean_confidence:.1%} confident and right {accuracy:.1%} of the time: {lean}; "
        f"with an expected calibration error of {ece:.3f} it is {quality}."
    )
    return " ".join(sentences)


def compute_calibration(
    y_true: np.ndarray,
    probabilities: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    n_bins: int = N_BINS,
    no_validation_reason: str = "",
) -> CalibrationResult:
    """Reliability, ECE, Brier and NLL on the test predictions; with ``validation``
    (``(y_val, p_val)``), the temperature fitted there and what it would change on the test split.

    ``no_validation_reason`` says why there is no temperature scaling (shown in the report).
    """
    y, p, _ = validate_predictions(y_true, probabilities, [str(k) for k in range(np.shape(probabilities)[1])])
    confidence, correct = p.max(axis=1), p.argmax(axis=1) == y
    bins = reliability_bins(confidence, correct, n_bins)
    ece = expected_calibration_error(y, p, n_bins)
    mean_confidence, accuracy = float(confidence.mean()), float(correct.mean())
    temperature, note = None, no_validation_reason
    if validation is not None and len(validation[0]):
        y_val, p_val = np.asarray(validation[0]), np.asarray(validation[1], dtype=np.float64)
        t = fit_temperature(y_val, p_val)
        scaled = apply_temperature(p, t)
        temperature = TemperatureScaling(
            temperature=t,
            val_images=int(y_val.shape[0]),
            val_nll_before=negative_log_likelihood(y_val, p_val),
            val_nll_after=negative_log_likelihood(y_val, apply_temperature(p_val, t)),
            test_nll_before=negative_log_likelihood(y, p),
            test_nll_after=negative_log_likelihood(y, scaled),
            test_ece_after=expected_calibration_error(y, scaled, n_bins),
            test_brier_after=brier_score(y, scaled),
        )
        note = (
            f"Temperature scaling fitted on the {temperature.val_images:,} validation images: T = {t:.2f} "
            f"({'softens' if t > 1 else 'sharpens' if t < 1 else 'leaves'} the probabilities). Reported only: "
            "the model, its predictions and every other number in this report are unchanged."
        )
    return CalibrationResult(
        n_images=int(y.shape[0]), bins=bins, ece=ece, brier=brier_score(y, p), nll=negative_log_likelihood(y, p),
        mean_confidence=mean_confidence, accuracy=accuracy,
        reading=calibration_reading(bins, mean_confidence, accuracy, ece),
        temperature=temperature, temperature_note=note,
    )
