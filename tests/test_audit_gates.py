"""Quality gates on hand-built metrics documents: each passes at its threshold and fails just past it."""

from __future__ import annotations

import pytest

from octreport.audit.gates import (
    GateConfig, GateResult, check_gate_classes, evaluate_gates, format_gate_results, gates_passed,
    parse_sensitivity_option, parse_sensitivity_options,
)
from octreport.errors import ConfigError
from run_documents import OCT, metrics_document, referral_section


def document(accuracy=0.9, chance=0.25, recalls=(0.95, 0.9, 0.8, 0.85), referral=True, health=None) -> dict:
    return metrics_document(accuracy, chance=chance, recalls=recalls, referral=referral_section() if referral else None,
                            health=health)


def only(results, name) -> GateResult:
    [result] = [r for r in results if r.name == name]
    return result


def test_no_gates_set_leaves_only_the_chance_check():
    results = evaluate_gates(document(), GateConfig())
    assert [r.name for r in results] == ["above chance"]
    assert gates_passed(results)


def test_accuracy_gate_at_its_threshold():
    assert only(evaluate_gates(document(accuracy=0.9), GateConfig(min_accuracy=0.9)), "accuracy").passed
    failed = only(evaluate_gates(document(accuracy=0.899), GateConfig(min_accuracy=0.9)), "accuracy")
    assert not failed.passed and (failed.value, failed.threshold) == (0.899, 0.9)
    assert failed.message == "accuracy 0.899 is below the minimum 0.9"


def test_chance_check_fails_at_or_near_chance():
    at_margin = only(evaluate_gates(document(accuracy=0.30, chance=0.25), GateConfig()), "above chance")
    assert not at_margin.passed and at_margin.threshold == pytest.approx(0.30)
    assert "at or near chance" in at_margin.message
    assert only(evaluate_gates(document(accuracy=0.31, chance=0.25), GateConfig()), "above chance").passed
    assert not only(evaluate_gates(document(accuracy=0.4, chance=0.25), GateConfig(chance_margin=0.2)), "above chance").passed
    # Unbalanced data: 80 % of one class; 82 % accuracy is no model at all.
    assert not gates_passed(evaluate_gates(document(accuracy=0.82, chance=0.8), GateConfig()))


def test_sensitivity_gates_match_class_names_without_case():
    config = GateConfig(min_sensitivity={"cnv": 0.95, " Drusen ": 0.81})
    results = evaluate_gates(document(), config)
    cnv, drusen = only(results, "sensitivity CNV"), only(results, "sensitivity DRUSEN")
    assert cnv.passed and cnv.value == 0.95
    assert not drusen.passed and drusen.message == "recall of DRUSEN 0.8 is below the minimum 0.81"
    assert not gates_passed(results)


def test_sensitivity_gate_for_an_unknown_class_lists_the_classes():
    with pytest.raises(ConfigError, match=r"unknown class\(es\) 'AMD'.*CNV, DME, DRUSEN, NORMAL"):
        evaluate_gates(document(), GateConfig(min_sensitivity={"AMD": 0.9}))
    with pytest.raises(ConfigError, match="'AMD'"):
        check_gate_classes(GateConfig(min_sensitivity={"AMD": 0.9}), OCT)


def test_referral_gates_at_their_thresholds():
    config = GateConfig(min_urgent_sensitivity=0.96, max_weighted_error=0.12)
    results = evaluate_gates(document(), config)
    assert only(results, "urgent sensitivity").passed and only(results, "weighted error").passed
    stricter = evaluate_gates(document(), GateConfig(min_urgent_sensitivity=0.97, max_weighted_error=0.11))
    assert only(stricter, "urgent sensitivity").message == "urgent sensitivity 0.96 is below the minimum 0.97"
    assert only(stricter, "weighted error").message == "weighted error 0.12 exceeds the maximum 0.11"
    assert not any(r.passed for r in stricter if r.name != "above chance")


def test_dead_filter_gate_per_layer():
    health = [{"layer": "conv1", "dead_share": 0.0}, {"layer": "block/conv2", "dead_share": 0.25}]
    assert only(evaluate_gates(document(health=health), GateConfig(max_dead_filters=0.25)), "dead filters").passed
    failed = only(evaluate_gates(document(health={"layers": health}), GateConfig(max_dead_filters=0.2)), "dead filters")
    assert not failed.passed and failed.value == 0.25
    assert "block/conv2 (25.0%)" in failed.message and "conv1" not in failed.message


def test_unmeasured_gates_fail_closed():
    config = GateConfig(max_dead_filters=0.5, min_urgent_sensitivity=0.5, max_weighted_error=1.0, min_sensitivity={"DME": 0.5})
    results = evaluate_gates(document(referral=False, recalls=(0.9, None, 0.9, 0.9)), config)
    unmeasured = [r for r in results if r.name != "above chance"]
    assert len(unmeasured) == 4
    for result in unmeasured:
        assert not result.passed and result.value is None and result.message.startswith("not measured")
    assert "layer_health" in only(results, "dead filters").message
    assert "DME is not in this data (no evaluated image of DME)" in only(results, "sensitivity DME").message
    assert not gates_passed(results)


def test_referral_gates_on_other_classes_are_refused_before_a_run():
    with pytest.raises(ConfigError, match="four OCT classes"):
        check_gate_classes(GateConfig(max_weighted_error=0.2), ["cat", "dog"])
    check_gate_classes(GateConfig(max_weighted_error=0.2, min_sensitivity={"normal": 0.5}), OCT)


@pytest.mark.parametrize("text, expected", [("CNV=0.9", ("CNV", 0.9)), (" drusen = 1 ", ("drusen", 1.0)), ("A B=0", ("A B", 0.0))])
def test_parse_sensitivity_option(text, expected):
    assert parse_sensitivity_option(text) == expected


@pytest.mark.parametrize("text, message", [
    ("CNV", "not CLASS=FRACTION"), ("=0.9", "not CLASS=FRACTION"), ("CNV=", "not CLASS=FRACTION"),
    ("CNV=high", "'high' is not a number"), ("CNV=1.5", "outside"), ("CNV=-0.1", "outside"),
    ("CNV=nan", "outside"), ("CNV=90%", "not a number"),
])
def test_parse_sensitivity_option_refuses_bad_input(text, message):
    with pytest.raises(ConfigError, match=message) as error:
        parse_sensitivity_option(text)
    assert "CNV=0.9" in str(error.value)  # every message shows the expected form


def test_parse_several_sensitivity_options_refuses_a_repeated_class():
    assert parse_sensitivity_options(["CNV=0.9", "DME=0.8"]) == {"CNV": 0.9, "DME": 0.8}
    with pytest.raises(ConfigError, match="more than once"):
        parse_sensitivity_options(["CNV=0.9", "cnv=0.8"])


@pytest.mark.parametrize("kwargs, message", [
    ({"min_accuracy": 1.2}, "min accuracy"), ({"max_dead_filters": -0.1}, "max dead filters"),
    ({"min_sensitivity": {"CNV": 2}}, "CNV"), ({"max_weighted_error": 5}, "between 0 and 4"),
    ({"chance_margin": 1}, "chance margin"), ({"min_sensitivity": {"CNV": 0.5, "cnv": 0.6}}, "twice"),
])
def test_gate_config_is_validated(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        GateConfig(**kwargs)


def test_gate_config_is_frozen_and_serialisable():
    sensitivities = {"CNV": 0.9}
    config = GateConfig(min_sensitivity=sensitivities)
    sensitivities["DME"] = 0.1
    assert dict(config.min_sensitivity) == {"CNV": 0.9}
    with pytest.raises(TypeError):
        config.min_sensitivity["DME"] = 0.1  # type: ignore[index]
    assert config.to_dict()["min_sensitivity"] == {"CNV": 0.9}


def test_format_gate_results():
    results = evaluate_gates(document(accuracy=0.5), GateConfig(min_accuracy=0.6))
    assert format_gate_results(results).splitlines() == [
        "PASS above chance: accuracy 0.5 is above chance level 0.25 + margin 0.05 = 0.3",
        "FAIL accuracy: accuracy 0.5 is below the minimum 0.6",
    ]


# ---------- --gate-on lower-bound ----------


def with_intervals(doc: dict, level: float = 0.95) -> dict:
    """``doc`` with the intervals a 200-image run might have recorded."""
    doc["intervals"] = {
        "level": level,
        "accuracy": {"value": doc["classification"]["accuracy"], "low": 0.88, "high": 0.94, "method": "wilson"},
        "per_class": {"CNV": {"recall": {"value": 0.95, "low": 0.86, "high": 0.98, "method": "wilson"}}},
        "referral": {"urgent_sensitivity": {"value": 0.96, "low": 0.91, "high": 0.98, "method": "bootstrap over patients"},
                     "weighted_error": {"value": 0.12, "low": 0.08, "high": 0.17, "method": "bootstrap over patients"}},
    }
    return doc


def test_lower_bound_gates_compare_the_pessimistic_end_of_the_interval():
    doc = with_intervals(document(accuracy=0.91))
    gates = GateConfig(min_accuracy=0.9, min_sensitivity={"CNV": 0.9}, min_urgent_sensitivity=0.9, max_weighted_error=0.15)
    by_value = evaluate_gates(doc, gates)
    assert gates_passed(by_value) and all(r.compared == "value" for r in by_value)
    by_bound = evaluate_gates(doc, GateConfig(**{**gates.to_dict(), "gate_on": "lower-bound"}))
    accuracy, cnv = only(by_bound, "accuracy"), only(by_bound, "sensitivity CNV")
    urgent, error = only(by_bound, "urgent sensitivity"), only(by_bound, "weighted error")
    assert (accuracy.passed, accuracy.value, accuracy.compared) == (False, 0.88, "lower bound")
    assert accuracy.message == "lower 95% bound of accuracy 0.88 (value 0.91) is below the minimum 0.9"
    assert (cnv.passed, cnv.value) == (False, 0.86)
    assert (urgent.passed, urgent.value) == (True, 0.91)  # 0.91 >= 0.9 with 95% confidence
    assert (error.passed, error.value, error.compared) == (False, 0.17, "upper bound")  # a maximum uses the upper bound
    assert only(by_bound, "above chance").compared == "value"  # no interval: the chance check keeps the value
    assert not gates_passed(by_bound)


def test_lower_bound_gates_fail_closed_without_intervals():
    results = evaluate_gates(document(), GateConfig(min_accuracy=0.5, gate_on="lower-bound"))
    accuracy = only(results, "accuracy")
    assert not accuracy.passed and accuracy.value is None
    assert accuracy.message == "not measured: the lower 95% bound of accuracy is not in metrics.json (it has no intervals)"


def test_gate_on_is_validated_and_recorded():
    with pytest.raises(ConfigError, match="gate-on must be one of value, lower-bound"):
        GateConfig(gate_on="upper")
    assert GateConfig(gate_on="lower-bound").to_dict()["gate_on"] == "lower-bound"
    from octreport.cli_options import build_gate_config

    options = {"min_accuracy": 0.9, "min_sensitivity": (), "min_urgent_sensitivity": None, "max_weighted_error": None,
               "max_dead_filters": None, "require_card": False, "gate_on": "lower-bound"}
    assert build_gate_config(options).gate_on == "lower-bound"
