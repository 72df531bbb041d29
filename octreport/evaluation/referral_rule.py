"""The urgent-referral rule of a model: a threshold on ``P(CNV) + P(DME)`` chosen on the
validation split for a target sensitivity, or the predicted class (argmax) when there is none.

Why a threshold: the argmax rule ("the predicted class is CNV or DME") sits wherever training put
it; on real scans it misses urgent eyes that a lower threshold on the same scores would catch at
little cost in specificity (see ``docs/referral-rule.md``).

How it is chosen (:func:`choose_referral_threshold`), so that it does not collapse on a small
validation split (about 60 urgent scans for the ``oct-real`` recipe, where the 5% that a 95%
target may miss are three scans, and a model that separates the validation split perfectly
would otherwise get a threshold just below its lowest urgent score):

1. each urgent scan's score is taken on the logit scale (clipped to ``[1e-7, 1 - 1e-7]``), where
   confident scores are not all squeezed against 1;
2. their distribution is smoothed with a Gaussian kernel (Silverman's bandwidth,
   ``0.9 * min(sd, IQR / 1.349) * n ** (-1/5)``, at least :data:`MIN_BANDWIDTH` logits), which
   gives a smooth sensitivity curve ``S(t) = mean_i Phi((x_i - t) / h)`` instead of a staircase of
   steps of ``1 / n``;
3. the threshold is the ``t`` where ``S(t)`` equals the target (bisection), mapped back to a
   probability. The smoothing adds the kernel's variance to the scores', so in the low tail it
   sits below the empirical quantile: it errs toward sensitivity;
4. it is at most :data:`MAX_THRESHOLD` (0.5): a scan the model finds more likely urgent than not
   is always referred. Without the cap, a model that separates its validation split well gets a
   threshold far above 0.5 (0.69 to 0.89 in four of five cross-validation folds of the ``oct-real``
   recipe), which gives back urgent eyes that the predicted class would have caught, for a
   specificity the target did not ask for: the costlier error traded for the cheaper one.

The sensitivity and specificity the threshold reaches on the same split are reported with their
Wilson intervals. The rule falls back to argmax, with a note, when a class is absent from the
validation split (the target would be met on a case mix without it) or when there are fewer
urgent scans than ``1 / (1 - target)`` (the target would not allow a single miss).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from octreport.errors import ConfigError
from octreport.formatting import with_ci
from octreport.evaluation.intervals import Interval, wilson
from octreport.evaluation.referral import OCT_CLASSES, oct_class_order, urgent_calls, urgent_rule_text, urgent_scores

DEFAULT_TARGET_SENSITIVITY = 0.95
MAX_THRESHOLD = 0.5
"""The highest threshold chosen: urgent more likely than not is always urgent."""
MIN_BANDWIDTH = 0.5
"""Logits. Scores saturated at 1 in float32 tie exactly; below half a logit the kernel would no
longer smooth their ranks but copy their values."""
SCORE_CLIP = 1e-7
METHOD = "kernel-smoothed sensitivity curve on the logit of P(CNV) + P(DME), Silverman bandwidth"

VALIDATION = "validation"
OVERRIDE = "--referral-threshold"
NONE = "none"
SOURCE_WORDS = {VALIDATION: "chosen on the validation split", OVERRIDE: "set by --referral-threshold",
                NONE: "the model stores no threshold"}


@dataclass(frozen=True)
class ReferralRule:
    """How a model decides urgent referral, and where that came from.

    ``threshold``: urgent when ``P(CNV) + P(DME) >= threshold``; None: when the predicted class is
    CNV or DME. ``source``: :data:`VALIDATION` (chosen on the validation split when the model was
    trained), :data:`OVERRIDE` (set for one report), or :data:`NONE` (the model has no stored rule).
    ``sensitivity`` and ``specificity``: what the threshold reaches on the split it was chosen on,
    with Wilson intervals (None for a rule not chosen on data). ``note``: why the rule is argmax, or
    what an override replaced.
    """

    threshold: float | None
    source: str
    target_sensitivity: float | None = None
    split: str | None = None
    n_images: int = 0
    n_urgent: int = 0
    n_non_urgent: int = 0
    sensitivity: Interval | None = None
    specificity: Interval | None = None
    bandwidth: float | None = None
    method: str = ""
    note: str = ""

    @property
    def text(self) -> str:
        """The rule in words: ``P(CNV) + P(DME) >= 0.1234`` or ``predicted class CNV or DME``."""
        return urgent_rule_text(self.threshold)

    @property
    def labelled(self) -> str:
        """The rule and where it came from, in a few words:
        ``P(CNV) + P(DME) >= 0.12 (chosen on the validation split)``."""
        if self.source == VALIDATION and self.threshold is None:
            return f"{self.text} (the validation split allowed no threshold)"
        return f"{self.text} ({SOURCE_WORDS.get(self.source, self.source)})"

    def provenance(self) -> str:
        """Where the rule came from, one sentence for the report; a field the sidecar left out is
        left out of the sentence."""
        if self.source == OVERRIDE:
            given = "" if self.threshold is None else f" {self.threshold:g}"
            return f"Set for this report with --referral-threshold{given}. {self.note}".strip()
        if self.threshold is None:
            return self.note or "The predicted (most probable) class decides."
        split = self.split or "validation"
        scans = f" ({self.n_images} scans)" if self.n_images else ""
        target = ("" if self.target_sensitivity is None
                  else f", for a target sensitivity of {self.target_sensitivity:.0%}")
        method = f" ({self.method})" if self.method else ""
        reached = ""
        if self.sensitivity is not None and self.specificity is not None:
            reached = (f"; there it reaches sensitivity {with_ci(self.sensitivity)} over {self.n_urgent} urgent scans "
                       f"and specificity {with_ci(self.specificity)} over {self.n_non_urgent} others "
                       f"({OPTIMISTIC})")
        chosen = f"Chosen when the model was trained, on its {split} split{scans}{target}{method}{reached}."
        return f"{chosen} {self.note}".strip()

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.text, "threshold": self.threshold, "source": self.source,
            "target_sensitivity": self.target_sensitivity, "split": self.split, "n_images": self.n_images,
            "n_urgent": self.n_urgent, "n_non_urgent": self.n_non_urgent,
            "sensitivity": None if self.sensitivity is None else self.sensitivity.to_dict(),
            "specificity": None if self.specificity is None else self.specificity.to_dict(),
            "bandwidth_logits": self.bandwidth, "method": self.method, "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ReferralRule":
        """The rule a sidecar stores; :class:`ValueError` (the sidecar loader's :class:`ModelError`,
        exit 4, before any run folder exists) when a field is not what :meth:`to_dict` writes: an
        unknown source, a threshold that is not a finite number in [0, 1], a negative count."""
        if not isinstance(data, dict):
            raise ValueError(f"referral_rule must be an object, got {type(data).__name__}")
        source = data.get("source")
        if source not in SOURCE_WORDS:
            raise ValueError(f"referral_rule.source must be one of {', '.join(sorted(SOURCE_WORDS))}, got {source!r}")
        target = _fraction(data, "target_sensitivity")
        if target is not None and not 0 < target < 1:
            raise ValueError(f"referral_rule.target_sensitivity must lie in (0, 1), got {target}")
        bandwidth = _number(data, "bandwidth_logits")
        split = data.get("split")
        return cls(
            threshold=_fraction(data, "threshold"), source=source, target_sensitivity=target,
            split=None if split is None else str(split),
            n_images=_count(data, "n_images"), n_urgent=_count(data, "n_urgent"),
            n_non_urgent=_count(data, "n_non_urgent"),
            sensitivity=_interval(data.get("sensitivity"), "sensitivity"),
            specificity=_interval(data.get("specificity"), "specificity"),
            bandwidth=bandwidth, method=str(data.get("method") or ""), note=str(data.get("note") or ""),
        )


OPTIMISTIC = "on the validation split it was chosen on: optimistic"
"""What the sensitivity and specificity a rule reached on its own split are: measured where it was tuned."""


def _number(data: dict[str, Any], key: str) -> float | None:
    """``data[key]`` as a finite float, None when absent or null; :class:`ValueError` otherwise."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"referral_rule.{key} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"referral_rule.{key} must be a finite number, got {value!r}")
    return float(value)


def _fraction(data: dict[str, Any], key: str) -> float | None:
    """``data[key]`` as a finite float in [0, 1], None when absent or null."""
    value = _number(data, key)
    if value is not None and not 0 <= value <= 1:
        raise ValueError(f"referral_rule.{key} must lie in [0, 1], got {value}")
    return value


def _count(data: dict[str, Any], key: str) -> int:
    """``data[key]`` as a whole number, 0 or more (``150.0`` too); 0 when absent."""
    value = data.get(key, 0)
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or value < 0:
        raise ValueError(f"referral_rule.{key} must be a count (0 or more), got {value!r}")
    return int(value)


def _interval(data: dict[str, Any] | None, name: str) -> Interval | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError(f"referral_rule.{name} must be an object, got {type(data).__name__}")
    values = {key: _fraction(data, key) for key in ("value", "low", "high")}
    return Interval(values["value"], values["low"], values["high"], str(data.get("method") or "wilson"))


def silverman_bandwidth(values: np.ndarray) -> float:
    """``0.9 * min(sd, IQR / 1.349) * n ** (-1/5)`` (the sd alone when the IQR is 0), at least
    :data:`MIN_BANDWIDTH`."""
    x = np.asarray(values, dtype=np.float64)
    sd = float(x.std(ddof=1)) if x.size > 1 else 0.0
    iqr = float(np.subtract(*np.percentile(x, [75, 25])))
    spread = min(sd, iqr / 1.349) if iqr > 0 else sd
    return max(MIN_BANDWIDTH, 0.9 * spread * x.size ** -0.2)


def smoothed_sensitivity(logits: np.ndarray, bandwidth: float, cut: float) -> float:
    """``mean_i Phi((x_i - cut) / h)``: the share of the kernel-smoothed urgent scores above ``cut``."""
    z = (np.asarray(logits, dtype=np.float64) - cut) / bandwidth
    return float(np.mean([NormalDist().cdf(v) for v in z]))


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), SCORE_CLIP, 1 - SCORE_CLIP)
    return np.log(q) - np.log1p(-q)


def smoothed_threshold(urgent_scores_: np.ndarray, target: float) -> tuple[float, float]:
    """``(threshold, bandwidth)``: the probability at which the smoothed sensitivity curve of the
    urgent scans' scores equals ``target`` (bisection on the logit scale, to 1e-9)."""
    logits = _logit(urgent_scores_)
    h = silverman_bandwidth(logits)
    low, high = float(logits.min()) - 12 * h, float(logits.max()) + 12 * h  # S(low) ~ 1, S(high) ~ 0
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if smoothed_sensitivity(logits, h, middle) > target else (low, middle)
        if high - low < 1e-9:
            break
    cut = (low + high) / 2
    return 1 / (1 + math.exp(-cut)), h


def argmax_rule(note: str, source: str = NONE) -> ReferralRule:
    """The predicted class decides; ``note`` says why there is no threshold."""
    return ReferralRule(threshold=None, source=source, note=note)


def choose_referral_threshold(
    y_true: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str],
    target: float = DEFAULT_TARGET_SENSITIVITY, split: str = VALIDATION, level: float = 0.95,
) -> ReferralRule | None:
    """The urgent-referral rule chosen on one split's predictions (see the module's description);
    None when the classes are not the four OCT ones.

    Args:
        y_true: (N,) class indices into ``class_names``; probabilities: (N, 4) softmax outputs.
        target: the sensitivity the threshold aims at, in (0, 1).
        split: the name of the split the predictions are of (recorded; never the test split).
        level: of the Wilson intervals on the sensitivity and specificity reached.
    """
    if not 0 < target < 1:
        raise ValueError(f"target sensitivity must lie in (0, 1), got {target}")
    scored = urgent_scores(y_true, probabilities, class_names)
    if scored is None:
        return None
    urgent, score = scored
    labels = np.asarray(y_true)
    order = oct_class_order(class_names)
    absent = [name for name, k in zip(OCT_CLASSES, order) if not np.any(labels == k)]
    n_urgent, n_other = int(urgent.sum()), int((~urgent).sum())
    counts = dict(split=split, n_images=int(labels.size), n_urgent=n_urgent, n_non_urgent=n_other,
                  target_sensitivity=float(target), source=VALIDATION)
    if absent:
        return ReferralRule(threshold=None, **counts, note=(
            f"No threshold: the {split} split has no {' or '.join(absent)} scan, so a threshold chosen on it would "
            "be tuned without that class. Urgent referral uses the predicted class (CNV or DME)."))
    needed = math.ceil(1 / (1 - target) - 1e-9)
    if n_urgent < needed:
        return ReferralRule(threshold=None, **counts, note=(
            f"No threshold: the {split} split has {n_urgent} urgent scans, fewer than the {needed} a target "
            f"sensitivity of {target:.0%} needs to allow one miss. Urgent referral uses the predicted class "
            "(CNV or DME)."))
    threshold, bandwidth = smoothed_threshold(score[urgent], target)
    note = ""
    if threshold > MAX_THRESHOLD:
        note = (f"The threshold for {target:.0%} sensitivity on the {split} split was {threshold:.4f}; it is capped at "
                f"{MAX_THRESHOLD:g}, so that a scan the model finds more likely urgent than not is always referred.")
        threshold = MAX_THRESHOLD
    called = urgent_calls(probabilities, class_names, threshold)
    return ReferralRule(
        threshold=threshold, **counts, bandwidth=bandwidth, method=METHOD, note=note,
        sensitivity=wilson(int((called & urgent).sum()), n_urgent, level),
        specificity=wilson(int((~called & ~urgent).sum()), n_other, level),
    )


def check_referral_override(override: float | None, class_names: Sequence[str]) -> None:
    """Refuse ``--referral-threshold`` (:class:`ConfigError`) for data without the four OCT classes."""
    if override is not None and oct_class_order(class_names) is None:
        raise ConfigError(
            f"--referral-threshold needs the four OCT classes ({', '.join(OCT_CLASSES)}); this data set has "
            f"{', '.join(class_names)}. Leave --referral-threshold out.")


def applied_rule(
    stored: ReferralRule | None, override: float | None, class_names: Sequence[str]
) -> ReferralRule | None:
    """The rule a report applies: ``override`` (``--referral-threshold``) when given, else the
    model's stored rule, else argmax with a note that the model has none; None when the classes
    are not the four OCT ones."""
    if oct_class_order(class_names) is None:
        return None
    if override is not None:
        replaced = "" if stored is None else f"The model's stored rule ({stored.text}) is not used."
        return ReferralRule(threshold=float(override), source=OVERRIDE, note=replaced)
    if stored is not None:
        return stored
    return argmax_rule(
        "The model has no stored referral threshold (it was not trained by octreport, or before octreport "
        "stored one): urgent referral uses the predicted class (CNV or DME).")
