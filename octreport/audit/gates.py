"""Quality gates: thresholds a run's metrics.json must meet, for unattended runs (exit code 5).

Every gate reads the metrics document (``metrics.json``, see
:mod:`octreport.report.metrics_json`) and gives one :class:`GateResult`; nothing is recomputed.

Gates (all off unless set, except the chance check):

* ``min_accuracy``: ``classification.accuracy >= threshold``;
* ``min_sensitivity``: per class, ``recall >= threshold`` (class names matched without regard to
  case or surrounding spaces; a name the data does not have is a :class:`ConfigError`);
* ``min_urgent_sensitivity``: ``referral.urgent_sensitivity >= threshold``;
* ``max_weighted_error``: ``referral.weighted_error <= threshold`` (penalty per image, 0 to 4);
* ``max_dead_filters``: in every audited layer, the share of dead filters ``<= threshold``, read
  from ``layer_health``: a list of ``{"layer": path, "dead_share": fraction}`` (or a dict holding
  that list under ``"layers"``);
* ``require_card``: every field of the model card is given (``card.missing`` is empty; see
  :mod:`octreport.audit.model_card`), for teams that must not publish without one;
* ``above chance`` (always on): ``accuracy > chance_level + chance_margin``; a model at or near
  the accuracy of always answering the largest class fails.

A threshold is met exactly at its value (``>=`` / ``<=``, with a 1e-9 allowance for rounding).

**Unmeasured gates fail closed.** A gate that was asked for but whose value is not in the
document (no ``layer_health`` because the layer audit did not run, no ``referral`` because the
classes are not the four OCT ones, a recall that is undefined because the test split has no image
of that class) fails with the message "not measured: ...". An unattended check must never pass
because the number it guards went missing. :func:`check_gate_classes` finds the predictable cases
(unknown class names, referral gates on other classes) before a run starts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from octreport.errors import ConfigError

_EPS = 1e-9
CHANCE_GATE = "above chance"
NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class GateConfig:
    """Thresholds; None (or an empty mapping) turns a gate off. Validated when built."""

    min_accuracy: float | None = None
    min_sensitivity: Mapping[str, float] = field(default_factory=dict)
    min_urgent_sensitivity: float | None = None
    max_weighted_error: float | None = None
    max_dead_filters: float | None = None
    require_card: bool = False
    chance_margin: float = 0.05

    def __post_init__(self) -> None:
        # A read-only copy: the config stays frozen even if the caller's dict changes later.
        object.__setattr__(self, "min_sensitivity", MappingProxyType(dict(self.min_sensitivity)))
        for name in ("min_accuracy", "min_urgent_sensitivity", "max_dead_filters"):
            _check_fraction(name.replace("_", " "), getattr(self, name))
        for class_name, value in self.min_sensitivity.items():
            _check_fraction(f"minimum sensitivity of {class_name}", value)
        if self.max_weighted_error is not None and not (0 <= self.max_weighted_error <= 4 and _finite(self.max_weighted_error)):
            raise ConfigError(f"max weighted error must be between 0 and 4 (penalty per image), got {self.max_weighted_error}.")
        if not (0 <= self.chance_margin < 1 and _finite(self.chance_margin)):
            raise ConfigError(f"chance margin must be between 0 and 1, got {self.chance_margin}.")
        keys = [_class_key(n) for n in self.min_sensitivity]
        if len(set(keys)) != len(keys):
            raise ConfigError(f"minimum sensitivity is given twice for one class: {', '.join(self.min_sensitivity)}.")

    @property
    def uses_referral(self) -> bool:
        return self.min_urgent_sensitivity is not None or self.max_weighted_error is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_accuracy": self.min_accuracy,
            "min_sensitivity": dict(self.min_sensitivity),
            "min_urgent_sensitivity": self.min_urgent_sensitivity,
            "max_weighted_error": self.max_weighted_error,
            "max_dead_filters": self.max_dead_filters,
            "require_card": self.require_card,
            "chance_margin": self.chance_margin,
        }


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict. ``value`` is None when the metric was not measured (the gate then fails)."""

    name: str
    threshold: float
    value: float | None
    passed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "threshold": self.threshold, "value": self.value, "passed": self.passed, "message": self.message}


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_fraction(what: str, value: float | None) -> None:
    if value is not None and not (_finite(value) and 0 <= value <= 1):
        raise ConfigError(f"{what} must be a fraction between 0 and 1, got {value!r}.")


def _class_key(name: str) -> str:
    return str(name).strip().casefold()


def parse_sensitivity_option(text: str) -> tuple[str, float]:
    """``"CNV=0.9"`` -> ``("CNV", 0.9)``; a :class:`ConfigError` for anything else."""
    name, sep, number = str(text).partition("=")
    name, number = name.strip(), number.strip()
    example = "write CLASS=FRACTION, e.g. CNV=0.9 (recall of CNV at least 90%)"
    if not sep or not name or not number:
        raise ConfigError(f"minimum sensitivity '{text}' is not CLASS=FRACTION: {example}.")
    try:
        value = float(number)
    except ValueError:
        raise ConfigError(f"minimum sensitivity '{text}': '{number}' is not a number; {example}.") from None
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise ConfigError(f"minimum sensitivity '{text}': {number} is outside [0, 1]; {example}.")
    return name, value


def parse_sensitivity_options(texts: Iterable[str]) -> dict[str, float]:
    """Several ``CLASS=FRACTION`` options (a repeated command-line option) as one mapping."""
    result: dict[str, float] = {}
    for text in texts:
        name, value = parse_sensitivity_option(text)
        if any(_class_key(name) == _class_key(seen) for seen in result):
            raise ConfigError(f"minimum sensitivity of '{name}' is given more than once.")
        result[name] = value
    return result


def resolve_class_names(requested: Iterable[str], class_names: Sequence[str]) -> dict[str, str]:
    """Each requested name mapped to the data's spelling; a :class:`ConfigError` listing the classes."""
    by_key = {_class_key(n): n for n in class_names}
    resolved, unknown = {}, []
    for name in requested:
        if _class_key(name) in by_key:
            resolved[name] = by_key[_class_key(name)]
        else:
            unknown.append(name)
    if unknown:
        raise ConfigError(
            f"minimum sensitivity names unknown class(es) {', '.join(repr(n) for n in unknown)}; "
            f"the classes are: {', '.join(class_names)} (matched without regard to case)."
        )
    return resolved


def check_gate_classes(config: GateConfig, class_names: Sequence[str]) -> None:
    """Refuse, before a run starts, gates that cannot be measured on these classes."""
    from octreport.evaluation.referral import OCT_CLASSES, oct_class_order

    resolve_class_names(config.min_sensitivity, class_names)
    if config.uses_referral and oct_class_order(class_names) is None:
        raise ConfigError(
            f"the urgent-sensitivity and weighted-error gates need the four OCT classes "
            f"({', '.join(OCT_CLASSES)}); this data has {', '.join(class_names)}."
        )


def _minimum(name: str, what: str, value: float | None, threshold: float, missing: str = "") -> GateResult:
    if value is None:
        return GateResult(name, threshold, None, False, f"{NOT_MEASURED}: {missing or what + ' is not in metrics.json'}")
    passed = value >= threshold - _EPS
    verb = "meets" if passed else "is below"
    return GateResult(name, threshold, value, passed, f"{what} {value:.4g} {verb} the minimum {threshold:.4g}")


def _maximum(name: str, what: str, value: float | None, threshold: float, missing: str = "") -> GateResult:
    if value is None:
        return GateResult(name, threshold, None, False, f"{NOT_MEASURED}: {missing or what + ' is not in metrics.json'}")
    passed = value <= threshold + _EPS
    verb = "is within" if passed else "exceeds"
    return GateResult(name, threshold, value, passed, f"{what} {value:.4g} {verb} the maximum {threshold:.4g}")


def _chance_gate(classification: Mapping[str, Any], margin: float) -> GateResult:
    accuracy, chance = classification.get("accuracy"), classification.get("chance_level")
    if accuracy is None or chance is None:
        return GateResult(CHANCE_GATE, margin, None, False, f"{NOT_MEASURED}: accuracy or chance level is not in metrics.json")
    threshold = chance + margin
    passed = accuracy > threshold + _EPS
    verdict = "is above" if passed else "is at or near chance:"
    return GateResult(
        CHANCE_GATE, threshold, accuracy, passed,
        f"accuracy {accuracy:.4g} {verdict} chance level {chance:.4g} + margin {margin:.4g} = {threshold:.4g}",
    )


def _sensitivity_gates(classification: Mapping[str, Any], minimums: Mapping[str, float]) -> list[GateResult]:
    rows = {row["name"]: row for row in classification.get("per_class", [])}
    names = classification.get("class_names") or list(rows)
    results = []
    for requested, real in resolve_class_names(minimums, names).items():
        recall = rows.get(real, {}).get("recall")
        results.append(_minimum(
            f"sensitivity {real}", f"recall of {real}", recall, minimums[requested],
            missing=f"recall of {real} is undefined (no test image of {real})",
        ))
    return results


def _layer_health_rows(document: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    health = document.get("layer_health")
    if isinstance(health, Mapping):
        health = health.get("layers")
    return None if health is None else list(health)


def _dead_filter_gate(document: Mapping[str, Any], threshold: float) -> GateResult:
    name = "dead filters"
    rows = _layer_health_rows(document)
    if not rows:
        return GateResult(name, threshold, None, False, f"{NOT_MEASURED}: metrics.json has no layer_health (the layer audit did not run)")
    measured = [(row["layer"], row["dead_share"]) for row in rows if row.get("dead_share") is not None]
    if not measured:
        return GateResult(name, threshold, None, False, f"{NOT_MEASURED}: layer_health gives no dead-filter share")
    worst_layer, worst = max(measured, key=lambda pair: pair[1])
    over = [f"{layer} ({share:.1%})" for layer, share in measured if share > threshold + _EPS]
    if over:
        message = f"dead-filter share exceeds the maximum {threshold:.1%} in {len(over)} layer(s): {', '.join(over)}"
    else:
        message = f"dead-filter share at most {worst:.1%} ({worst_layer}), within the maximum {threshold:.1%} in all {len(measured)} layers"
    return GateResult(name, threshold, worst, not over, message)


def _card_gate(document: Mapping[str, Any]) -> GateResult:
    """Every model-card field given. Value: the share of fields given (the threshold is 1)."""
    from octreport.audit.model_card import CARD_KEYS, CARD_LABELS

    name = "model card"
    card = document.get("card")
    if not isinstance(card, Mapping) or not isinstance(card.get("missing"), list):
        return GateResult(name, 1.0, None, False, f"{NOT_MEASURED}: metrics.json has no model card")
    missing = [key for key in card["missing"] if key in CARD_LABELS]
    share = (len(CARD_KEYS) - len(missing)) / len(CARD_KEYS)
    if missing:
        labels = ", ".join(CARD_LABELS[key].lower() for key in missing)
        message = f"the model card lacks {len(missing)} of {len(CARD_KEYS)} fields: {labels}"
    else:
        message = f"the model card gives all {len(CARD_KEYS)} fields"
    return GateResult(name, 1.0, share, not missing, message)


def evaluate_gates(metrics_document: Mapping[str, Any], config: GateConfig) -> tuple[GateResult, ...]:
    """Every configured gate, plus the chance check, against ``metrics_document``, in a fixed order.

    Raises :class:`ConfigError` when ``min_sensitivity`` names a class the document does not have.
    """
    classification = metrics_document.get("classification") or {}
    referral = metrics_document.get("referral")
    no_referral = "metrics.json has no referral metrics (they need the four OCT classes)"
    results = [_chance_gate(classification, config.chance_margin)]
    if config.min_accuracy is not None:
        results.append(_minimum("accuracy", "accuracy", classification.get("accuracy"), config.min_accuracy))
    results += _sensitivity_gates(classification, config.min_sensitivity)
    if config.min_urgent_sensitivity is not None:
        value = None if referral is None else referral.get("urgent_sensitivity")
        missing = no_referral if referral is None else "urgent sensitivity is undefined (no urgent case in the test split)"
        results.append(_minimum("urgent sensitivity", "urgent sensitivity", value, config.min_urgent_sensitivity, missing))
    if config.max_weighted_error is not None:
        value = None if referral is None else referral.get("weighted_error")
        missing = no_referral if referral is None else ""
        results.append(_maximum("weighted error", "weighted error", value, config.max_weighted_error, missing))
    if config.max_dead_filters is not None:
        results.append(_dead_filter_gate(metrics_document, config.max_dead_filters))
    if config.require_card:
        results.append(_card_gate(metrics_document))
    return tuple(results)


def gates_passed(results: Iterable[GateResult]) -> bool:
    """True when every gate passed (an empty list passes)."""
    return all(result.passed for result in results)


def format_gate_results(results: Sequence[GateResult]) -> str:
    """One line per gate for the terminal: ``PASS accuracy: accuracy 0.92 meets the minimum 0.9``."""
    return "\n".join(f"{'PASS' if r.passed else 'FAIL'} {r.name}: {r.message}" for r in results)
