"""Quality gates: thresholds a run's metrics.json must meet, for unattended runs (exit code 5).

Every gate reads the metrics document (``metrics.json``, see
:mod:`octreport.document.metrics`) and gives one :class:`GateResult`; nothing is recomputed.

Gates (all off unless set, except the chance check):

* ``min_accuracy``: ``classification.accuracy >= threshold``;
* ``min_sensitivity``: per class, ``recall >= threshold`` (class names matched without regard to
  case or surrounding spaces; a name the data does not have is a :class:`ConfigError`);
* ``min_urgent_sensitivity``: ``referral.urgent_sensitivity >= threshold``, the sensitivity of the
  report's referral rule (``referral.rule``: the model's threshold chosen on validation,
  ``--referral-threshold``, or the predicted class), which the message names;
* ``max_weighted_error``: ``referral.weighted_error <= threshold`` (penalty per image, 0 to 4);
* ``max_dead_filters``: in every audited layer, the share of dead filters ``<= threshold``, read
  from ``layer_health``: a list of ``{"layer": path, "dead_share": fraction}`` (or a dict holding
  that list under ``"layers"``);
* ``require_card``: every field of the model card is given (``card.missing`` is empty; see
  :mod:`octreport.audit.model_card`), for teams that must not publish without one;
* ``max_leaked_patients``: ``data_audit.leaked_patients <= threshold`` (patients with images in
  more than one split; see :mod:`octreport.data.data_audit`);
* ``max_duplicates``: ``data_audit.duplicates_across_splits <= threshold`` (identical files and
  near-duplicate pairs that span splits);
* ``fail_on_shift``: the Data shift section found no material difference between the evaluated
  scans and the model's training profile (``data_shift.material`` is false); not measured (failed)
  when the model has no training profile. For a cron job that receives scans from a new device;
  a screening run over unlabelled scans has this gate too;
* ``above chance`` (always on): ``accuracy > chance_level + chance_margin``; a model at or near
  the accuracy of always answering the largest class fails.

A threshold is met exactly at its value (``>=`` / ``<=``, with a 1e-9 allowance for rounding).

**What is compared** (``gate_on``): ``value`` (the default) compares the measured number itself;
``lower-bound`` compares the pessimistic end of its confidence interval (``metrics.json``
``intervals``): the lower bound for a minimum, the upper bound for the weighted error's maximum.
"accuracy at least 0.90 with 95% confidence" is ``min_accuracy=0.9, gate_on="lower-bound"``. The
dead-filter and chance gates have no interval and always compare the value.

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
from octreport.evaluation.metrics import CHANCE_MARGIN

_EPS = 1e-9
CHANCE_GATE = "above chance"
NOT_MEASURED = "not measured"
GATE_ON = ("value", "lower-bound")


@dataclass(frozen=True)
class GateConfig:
    """Thresholds; None (or an empty mapping) turns a gate off. Validated when built."""

    min_accuracy: float | None = None
    min_sensitivity: Mapping[str, float] = field(default_factory=dict)
    min_urgent_sensitivity: float | None = None
    max_weighted_error: float | None = None
    max_dead_filters: float | None = None
    require_card: bool = False
    max_leaked_patients: int | None = None
    max_duplicates: int | None = None
    fail_on_shift: bool = False
    chance_margin: float = CHANCE_MARGIN
    gate_on: str = "value"

    def __post_init__(self) -> None:
        if self.gate_on not in GATE_ON:
            raise ConfigError(f"gate-on must be one of {', '.join(GATE_ON)}, got '{self.gate_on}'.")
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
        for name in ("max_leaked_patients", "max_duplicates"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ConfigError(f"{name.replace('_', ' ')} must be a whole number of at least 0, got {value!r}.")
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
            "max_leaked_patients": self.max_leaked_patients,
            "max_duplicates": self.max_duplicates,
            "fail_on_shift": self.fail_on_shift,
            "chance_margin": self.chance_margin,
            "gate_on": self.gate_on,
        }


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict. ``value`` is None when the metric was not measured (the gate then fails).
    ``compared`` says what ``value`` is: the metric itself (``value``), or the ``lower bound`` /
    ``upper bound`` of its confidence interval."""

    name: str
    threshold: float
    value: float | None
    passed: bool
    message: str
    compared: str = "value"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "threshold": self.threshold, "value": self.value, "passed": self.passed,
                "message": self.message, "compared": self.compared}


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


@dataclass(frozen=True)
class _Bound:
    """Which number a gate compares: the value, or one end of its interval (see ``gate_on``)."""

    intervals: Mapping[str, Any] | None
    on_bound: bool

    def pick(self, what: str, value: float | None, interval_path: tuple[str, ...], end: str) -> tuple[float | None, str, str]:
        """``(number compared, how the message names it, why it is missing)``; the message gives the
        value itself beside a bound (see :func:`_with_value`)."""
        if not self.on_bound:
            return value, what, ""
        entry: Any = self.intervals
        for key in interval_path:
            entry = entry.get(key) if isinstance(entry, Mapping) else None
        level = self.intervals.get("level", 0.95) if isinstance(self.intervals, Mapping) else 0.95
        label = f"{'lower' if end == 'low' else 'upper'} {100 * level:g}% bound of {what}"
        bound = entry.get(end) if isinstance(entry, Mapping) else None
        missing = f"the {label} is not in metrics.json" + ("" if isinstance(self.intervals, Mapping) else " (it has no intervals)")
        return bound, label, missing


def _compared(bound: _Bound, end: str) -> str:
    return "value" if not bound.on_bound else ("lower bound" if end == "low" else "upper bound")


def _with_value(value: float | None, compared: str) -> str:
    """`` (value 0.925)`` after a bound, so the message shows both; empty when the value itself is compared."""
    return "" if compared == "value" or value is None else f" (value {value:.4g})"


def _number(value: float) -> str:
    """A count as a whole number (``21,740``, never ``2.174e+04``), anything else to 4 digits."""
    return f"{int(value):,}" if float(value).is_integer() and abs(value) < 1e15 else f"{value:.4g}"


def _minimum(name: str, what: str, value: float | None, threshold: float, missing: str = "",
             compared: str = "value", note: str = "") -> GateResult:
    if value is None:
        return GateResult(name, threshold, None, False, f"{NOT_MEASURED}: {missing or what + ' is not in metrics.json'}", compared)
    passed = value >= threshold - _EPS
    verb = "meets" if passed else "is below"
    return GateResult(name, threshold, value, passed,
                      f"{what} {_number(value)}{note} {verb} the minimum {_number(threshold)}", compared)


def _maximum(name: str, what: str, value: float | None, threshold: float, missing: str = "",
             compared: str = "value", note: str = "") -> GateResult:
    if value is None:
        return GateResult(name, threshold, None, False, f"{NOT_MEASURED}: {missing or what + ' is not in metrics.json'}", compared)
    passed = value <= threshold + _EPS
    verb = "is within" if passed else "exceeds"
    return GateResult(name, threshold, value, passed,
                      f"{what} {_number(value)}{note} {verb} the maximum {_number(threshold)}", compared)


def _rule_note(referral: Mapping[str, Any] | None) -> str:
    """`` (rule: P(CNV) + P(DME) >= 0.12)``: the referral rule behind the urgent numbers, when recorded."""
    rule = referral.get("rule") if isinstance(referral, Mapping) else None
    return f" (rule: {rule['rule']})" if isinstance(rule, Mapping) and rule.get("rule") else ""


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


def _sensitivity_gates(classification: Mapping[str, Any], minimums: Mapping[str, float], bound: _Bound) -> list[GateResult]:
    rows = {row["name"]: row for row in classification.get("per_class", [])}
    names = classification.get("class_names") or list(rows)
    results = []
    for requested, real in resolve_class_names(minimums, names).items():
        recall = rows.get(real, {}).get("recall")
        number, what, missing = bound.pick(f"recall of {real}", recall, ("per_class", real, "recall"), "low")
        if recall is None:
            missing = f"recall of {real} is undefined: {real} is not in this data (no evaluated image of {real})"
        compared = _compared(bound, "low")
        results.append(_minimum(f"sensitivity {real}", what, number, minimums[requested], missing, compared,
                                _with_value(recall, compared)))
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
    bound = _Bound(metrics_document.get("intervals"), config.gate_on == "lower-bound")
    no_referral = "metrics.json has no referral metrics (they need the four OCT classes)"
    results = [_chance_gate(classification, config.chance_margin)]
    if config.min_accuracy is not None:
        value = classification.get("accuracy")
        number, what, missing = bound.pick("accuracy", value, ("accuracy",), "low")
        results.append(_minimum("accuracy", what, number, config.min_accuracy, missing, _compared(bound, "low"),
                                _with_value(value, _compared(bound, "low"))))
    results += _sensitivity_gates(classification, config.min_sensitivity, bound)
    if config.min_urgent_sensitivity is not None:
        value = None if referral is None else referral.get("urgent_sensitivity")
        number, what, missing = bound.pick("urgent sensitivity", value, ("referral", "urgent_sensitivity"), "low")
        if value is None:
            missing = no_referral if referral is None else "urgent sensitivity is undefined: no urgent case (CNV or DME) in this data"
        results.append(_minimum("urgent sensitivity", what, number, config.min_urgent_sensitivity, missing,
                                _compared(bound, "low"),
                                _with_value(value, _compared(bound, "low")) + _rule_note(referral)))
    if config.max_weighted_error is not None:
        value = None if referral is None else referral.get("weighted_error")
        number, what, missing = bound.pick("weighted error", value, ("referral", "weighted_error"), "high")
        if referral is None:
            missing = no_referral
        results.append(_maximum("weighted error", what, number, config.max_weighted_error, missing,
                                _compared(bound, "high"), _with_value(value, _compared(bound, "high"))))
    if config.max_dead_filters is not None:
        results.append(_dead_filter_gate(metrics_document, config.max_dead_filters))
    if config.require_card:
        results.append(_card_gate(metrics_document))
    results += data_gates(metrics_document, config)
    if config.fail_on_shift:
        results.append(shift_gate(metrics_document))
    return tuple(results)


def shift_gate(document: Mapping[str, Any]) -> GateResult:
    """``--fail-on-shift``: passes when the Data shift section found no material difference. Value:
    the number of differences found (the threshold is 0)."""
    name = "data shift"
    shift = document.get("data_shift")
    if not isinstance(shift, Mapping) or shift.get("training_profile") is None:
        return GateResult(name, 0.0, None, False, f"{NOT_MEASURED}: the model has no training profile to compare the "
                                                  "scans with (a model octreport did not train, or one saved before it recorded one)")
    findings = [str(f.get("text", "")).rstrip(".") for f in shift.get("findings") or [] if isinstance(f, Mapping)]
    if findings:
        return GateResult(name, 0.0, float(len(findings)), False,
                          f"the scans differ materially from the training scans: {'; '.join(findings)}")
    return GateResult(name, 0.0, 0.0, True, "no material difference from the training scans")


def data_gates(document: Mapping[str, Any], config: GateConfig) -> list[GateResult]:
    """The data-audit gates that ``config`` sets (``octreport audit-data`` runs only these); not
    measured (failed) when metrics.json has no ``data_audit``."""
    audit = document.get("data_audit")
    wanted = [("leaked patients", "leaked_patients", "patients with images in more than one split", config.max_leaked_patients),
              ("duplicates", "duplicates_across_splits", "duplicates across splits", config.max_duplicates)]
    results = []
    for name, key, what, threshold in wanted:
        if threshold is None:
            continue
        value = audit.get(key) if isinstance(audit, Mapping) else None
        missing = "metrics.json has no data_audit" if not isinstance(audit, Mapping) else f"data_audit has no {key}"
        if key == "leaked_patients" and isinstance(audit, Mapping) and audit.get("patients_per_split") is None:
            value, missing = None, "no image has a known patient (give --patients FILE)"
        results.append(_maximum(name, what, None if value is None else float(value), float(threshold), missing))
    return results


def gates_passed(results: Iterable[GateResult]) -> bool:
    """True when every gate passed (an empty list passes)."""
    return all(result.passed for result in results)


def gates_entry(results: Sequence[GateResult]) -> dict[str, Any]:
    """The ``gates`` entry of a run's metrics.json: whether every gate passed, and each verdict."""
    return {"passed": gates_passed(results), "results": [g.to_dict() for g in results]}


def failed_gate_messages(results: Iterable[GateResult]) -> tuple[str, ...]:
    """What each failed gate says, in order."""
    return tuple(r.message for r in results if not r.passed)


def format_gate_results(results: Sequence[GateResult]) -> str:
    """One line per gate for the terminal: ``PASS accuracy: accuracy 0.92 meets the minimum 0.9``."""
    return "\n".join(f"{'PASS' if r.passed else 'FAIL'} {r.name}: {r.message}" for r in results)
