"""Which changes between two runs are real: pair the runs when they evaluated the same images,
and test each change (:mod:`octreport.evaluation.paired`); otherwise set their intervals side by side.

Used by :func:`octreport.audit.compare.compare_runs`; reads only what the runs recorded
(``manifest.json``'s data fingerprint, ``predictions.csv``, ``metrics.json``'s intervals).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from octreport.evaluation.bootstrap_settings import BootstrapSettings
from octreport.evaluation.intervals import Interval
from octreport.evaluation.paired import SignificanceTest, compare_intervals, paired_tests
from octreport.evaluation.predictions_file import PREDICTIONS_NAME, RunPredictions, align
from octreport.formatting import level_text


@dataclass(frozen=True)
class Pairing:
    """Whether the runs evaluated the same images, so that their changes were tested image by image."""

    paired: bool
    note: str
    settings: BootstrapSettings
    n_images: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"paired": self.paired, "note": self.note, "n_images": self.n_images, **self.settings.to_dict()}


def _fingerprint(manifest: Mapping[str, Any] | None) -> str | None:
    data = (manifest or {}).get("data")
    return data.get("sha256") if isinstance(data, Mapping) else None


def pair_runs(
    predictions_a: RunPredictions | None,
    predictions_b: RunPredictions | None,
    manifest_a: Mapping[str, Any] | None,
    manifest_b: Mapping[str, Any] | None,
    settings: BootstrapSettings,
) -> tuple[Pairing, tuple[RunPredictions, RunPredictions] | None]:
    """The pairing verdict, and both runs' predictions aligned image by image when paired."""
    fingerprint_a, fingerprint_b = _fingerprint(manifest_a), _fingerprint(manifest_b)
    aligned: tuple[RunPredictions, RunPredictions] | str
    if predictions_a is None or predictions_b is None:
        which = " and ".join(label for label, p in (("A", predictions_a), ("B", predictions_b)) if p is None)
        aligned = f"run {which} has no {PREDICTIONS_NAME} (written by octreport since intervals were added)"
    elif fingerprint_a is None or fingerprint_b is None:
        aligned = "a run's manifest does not record its data fingerprint"
    elif fingerprint_a != fingerprint_b:
        aligned = "the data fingerprints differ, so the runs did not evaluate the same images"
    else:
        aligned = align(predictions_a, predictions_b)
    level = level_text(settings.level)
    if isinstance(aligned, str):
        note = (f"Not paired: {aligned}. Each run's own {level} intervals are compared instead, and a change counts "
                "as significant only when they do not overlap.")
        return Pairing(False, note, settings), None
    n = len(aligned[0].paths)
    unit = "patients" if len(set(aligned[0].patients())) < n else "images"
    note = (f"Paired: both runs evaluated the same {n:,} test images (same data fingerprint). Accuracy and the "
            f"sensitivities are tested with the exact McNemar test, the other metrics with a paired bootstrap "
            f"({settings.resamples:,} resamples of {unit}, seed {settings.seed}); significant means p < "
            f"{settings.alpha:.2g} (the {level} interval of B − A excludes 0).")
    return Pairing(True, note, settings, n), aligned


def interval_in(metrics: Mapping[str, Any], key: str) -> Interval | None:
    """A statistic's interval as ``metrics.json`` records it (``intervals``), or None."""
    intervals = metrics.get("intervals")
    if not isinstance(intervals, Mapping):
        return None
    if key.startswith("per_class."):
        name, metric = key[len("per_class."):].rsplit(".", 1)
        entry = ((intervals.get("per_class") or {}).get(name) or {}).get(metric)
    else:
        entry = intervals
        for part in key.split("."):
            entry = entry.get(part) if isinstance(entry, Mapping) else None
    if not isinstance(entry, Mapping) or "low" not in entry:
        return None
    return Interval(entry.get("value"), entry.get("low"), entry.get("high"), str(entry.get("method", "")),
                    float(intervals.get("level", 0.95)))


def referral_threshold(metrics: Mapping[str, Any]) -> float | None:
    """The threshold of the run's urgent-referral rule (``referral.threshold``); None: argmax, or not recorded."""
    referral = metrics.get("referral")
    value = referral.get("threshold") if isinstance(referral, Mapping) else None
    return None if value is None else float(value)


def significance_tests(
    keys: Iterable[str],
    metrics_a: Mapping[str, Any],
    metrics_b: Mapping[str, Any],
    aligned: tuple[RunPredictions, RunPredictions] | None,
    settings: BootstrapSettings,
) -> dict[str, SignificanceTest]:
    """A test for each key: paired when ``aligned`` is given, else the runs' intervals compared."""
    keys = list(keys)
    if aligned is not None:
        a, b = aligned
        tests = paired_tests(a.labels, a.probabilities, b.probabilities, a.class_names, a.patients(), settings,
                             (referral_threshold(metrics_a), referral_threshold(metrics_b)))
        return {key: tests[key] for key in keys if key in tests}
    return {
        key: compare_intervals(_bounds(interval_in(metrics_a, key)), _bounds(interval_in(metrics_b, key)), settings.level)
        for key in keys
    }


def _bounds(interval: Interval | None) -> dict[str, float | None] | None:
    return None if interval is None else {"low": interval.low, "high": interval.high}
