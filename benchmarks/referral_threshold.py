"""How the urgent-referral threshold chosen on a small validation split holds on new scans (issue 26).

Draws many validation splits of ``--urgent`` urgent and ``--others`` other scans from a known
score distribution (logit of P(CNV) + P(DME)), chooses the threshold on each, and measures the
sensitivity and specificity each threshold has on the whole population (exact, from the known
distribution). Three ways to choose it, for the same target sensitivity:

- ``smoothed``: the kernel-smoothed sensitivity curve on the logit scale
  (:func:`~octreport.evaluation.referral_rule.smoothed_threshold`);
- ``smoothed, capped at 0.5``: octreport's rule,
  :func:`~octreport.evaluation.referral_rule.choose_referral_threshold` (the smoothed threshold,
  at most 0.5);
- ``empirical``: the highest threshold whose sensitivity on the split reaches the target (the
  ``ceil(target * n)``-th highest urgent score), the plain ROC-table choice.

Score distributions (logits; pure NumPy, no model, seconds to run):
- ``normal``: urgent N(2, 1), others N(-2, 1);
- ``confident``: a model sure of most scans: urgent 90% N(9, 2) + 10% N(1, 2), others 90% N(-9, 2)
  + 10% N(-1, 2) (the long inner tails are the hard scans).

    python benchmarks/referral_threshold.py [--splits 1000] [--urgent 60] [--others 90] [--target 0.95]
"""

from __future__ import annotations

import argparse
import math
from statistics import NormalDist

import numpy as np

from octreport.evaluation.referral_rule import choose_referral_threshold, smoothed_threshold

OCT = ("CNV", "DME", "DRUSEN", "NORMAL")
DISTRIBUTIONS = {
    "normal": ((1.0, 2.0, 1.0),),
    "confident": ((0.9, 9.0, 2.0), (0.1, 1.0, 2.0)),
}
"""Each: the urgent logits' mixture of (weight, mean, sd); the others' is its mirror image."""


def draw(components, n: int, rng: np.random.Generator, sign: float = 1.0) -> np.ndarray:
    weights = np.array([w for w, _, _ in components])
    which = rng.choice(len(components), size=n, p=weights / weights.sum())
    means = np.array([m for _, m, _ in components])[which]
    sds = np.array([s for _, _, s in components])[which]
    return sign * rng.normal(means, sds)


def above(components, cut: float, sign: float = 1.0) -> float:
    """Share of the population (urgent: sign 1; others: sign -1) whose logit is at least ``cut``."""
    return sum(w * (1 - NormalDist(sign * m, s).cdf(cut)) for w, m, s in components)


def labelled(urgent_logits: np.ndarray, other_logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    score = 1 / (1 + np.exp(-np.r_[urgent_logits, other_logits]))
    y = np.r_[np.arange(urgent_logits.size) % 2, 2 + np.arange(other_logits.size) % 2]
    return y, np.stack([score / 2, score / 2, (1 - score) / 2, (1 - score) / 2], axis=1)


def run(name: str, splits: int, n_urgent: int, n_others: int, target: float, seed: int) -> None:
    components = DISTRIBUTIONS[name]
    rng = np.random.default_rng(seed)
    rows = {"smoothed": [], "smoothed, capped at 0.5 (octreport's rule)": [], "empirical": []}
    for _ in range(splits):
        urgent, others = draw(components, n_urgent, rng), draw(components, n_others, rng, -1.0)
        y, p = labelled(urgent, others)
        smoothed, _ = smoothed_threshold(1 / (1 + np.exp(-urgent)), target)
        rule = choose_referral_threshold(y, p, OCT, target).threshold
        cuts = {"smoothed": math.log(smoothed / (1 - smoothed)),
                "smoothed, capped at 0.5 (octreport's rule)": math.log(rule / (1 - rule)),
                "empirical": float(np.sort(urgent)[::-1][math.ceil(target * n_urgent - 1e-9) - 1])}
        for method, cut in cuts.items():
            rows[method].append((above(components, cut), 1 - above(components, cut, -1.0)))
    print(f"\n{name}: {splits} validation splits of {n_urgent} urgent and {n_others} other scans, target {target:.0%}")
    print("| threshold | population sensitivity: mean | 5th percentile | share >= target | specificity: mean | 5th percentile |")
    print("|---|---|---|---|---|---|")
    for method, values in rows.items():
        sens, spec = np.array(values).T
        print(f"| {method} | {sens.mean():.1%} | {np.percentile(sens, 5):.1%} | {np.mean(sens >= target):.0%} "
              f"| {spec.mean():.1%} | {np.percentile(spec, 5):.1%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=1000)
    parser.add_argument("--urgent", type=int, default=60)
    parser.add_argument("--others", type=int, default=90)
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in DISTRIBUTIONS:
        run(name, args.splits, args.urgent, args.others, args.target, args.seed)


if __name__ == "__main__":
    main()
