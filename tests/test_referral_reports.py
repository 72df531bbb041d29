"""Reports apply the model's urgent-referral rule (issue 26): the rule a trained run stores, a
stored threshold, ``--referral-threshold`` for one report, and a model without a stored rule."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from conftest import write_class_folders
from octreport.cli import main

QUICK_REPORT = ["--format", "html", "--images-per-class", "1", "--maps-per-layer", "2", "--filters-per-layer", "2",
                "--filter-views", "kernels", "--errors-per-cell", "0", "--no-heatmap-checks", "--bootstrap-resamples", "200"]


def _report(model, data, out, *extra):
    result = CliRunner().invoke(main, ["report", "--model", str(model), "--data", str(data), "--out", str(out),
                                       *QUICK_REPORT, *extra])
    assert result.exit_code in (0, 5), result.output
    run = (out / "latest").resolve()
    return json.loads((run / "metrics.json").read_text()), (run / "report.html").read_text(), result.output


def _model_copy(audited_run, folder, rule):
    """The audited run's model in ``folder``, its sidecar's referral rule replaced by ``rule`` (None: removed)."""
    run, _ = audited_run
    folder.mkdir()
    shutil.copy(run / "model.keras", folder / "model.keras")
    sidecar = json.loads((run / "model.octreport.json").read_text())
    if rule is None:
        del sidecar["referral_rule"]  # as a sidecar written before rules were stored
    else:
        sidecar["referral_rule"] = rule
    (folder / "model.octreport.json").write_text(json.dumps(sidecar))
    return folder / "model.keras"


def test_a_trained_run_stores_the_rule_it_chose_on_validation(audited_run):
    # The tiny run's validation split has 4 urgent scans: too few for a 95% target, so the rule it
    # stores is the predicted class, with the reason; the report and metrics.json say so.
    run, _ = audited_run
    stored = json.loads((run / "model.octreport.json").read_text())["referral_rule"]
    assert stored["source"] == "validation" and stored["threshold"] is None and stored["target_sensitivity"] == 0.95
    assert "fewer than the 20" in stored["note"] and stored["n_urgent"] == 4
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["referral"]["rule"] == stored and metrics["referral"]["threshold"] is None
    assert metrics["train_config"]["referral_sensitivity"] == 0.95
    html = (run / "report.html").read_text()
    assert "Referral rule:</strong> urgent when predicted class CNV or DME" in html
    assert "fewer than the 20" in html
    # the checklist's TRIPOD+AI item 15 (classification thresholds)
    assert "for urgent referral too: predicted class CNV or DME (the validation split allowed no threshold)" in html


STORED = {"rule": "P(CNV) + P(DME) >= 0", "threshold": 0.0, "source": "validation", "target_sensitivity": 0.95,
          "split": "validation", "n_images": 150, "n_urgent": 60, "n_non_urgent": 90,
          "sensitivity": {"value": 1.0, "low": 0.94, "high": 1.0, "method": "wilson"},
          "specificity": {"value": 0.0, "low": 0.0, "high": 0.04, "method": "wilson"},
          "bandwidth_logits": 0.5, "method": "kernel-smoothed", "note": ""}


def test_a_stored_threshold_is_applied_and_an_override_replaces_it_for_one_report(audited_run, tmp_path):
    _, data = audited_run
    model = _model_copy(audited_run, tmp_path / "model", STORED)
    # Threshold 0 calls every scan urgent: sensitivity 1, specificity 0; argmax (this model is
    # right on every scan) keeps every other scan out.
    metrics, html, output = _report(model, data, tmp_path / "stored", "--min-urgent-sensitivity", "0.9",
                                    "--min-accuracy", "0.9")
    referral = metrics["referral"]
    assert (referral["urgent_sensitivity"], referral["urgent_specificity"]) == (1.0, 0.0)
    assert referral["threshold"] == 0.0 and referral["rule"]["source"] == "validation"
    assert referral["argmax"]["urgent_specificity"] == 1.0
    assert referral["false_positive"] == referral["n_non_urgent"] > 0
    assert metrics["operating_point"]["used"]["threshold"] == 0.0
    assert metrics["intervals"]["referral"]["urgent_specificity"]["value"] == 0.0
    assert metrics["report_config"]["referral_threshold"] is None
    gate = next(g for g in metrics["gates"]["results"] if g["name"] == "urgent sensitivity")
    assert gate["passed"] and "rule: P(CNV) + P(DME) >= 0" in gate["message"]
    assert "Urgent referral rule: P(CNV) + P(DME) &gt;= 0 (chosen on the validation split)" in html
    assert "argmax: 100.0% (95% CI" in html  # the predicted class's specificity, beside the rule's 0%
    assert referral["argmax"]["intervals"]["urgent_specificity"]["method"] == "wilson"
    assert referral["argmax"]["intervals"]["urgent_specificity"]["value"] == 1.0
    assert "Chosen when the model was trained, on its validation split (150 scans)" in html
    assert "on the validation split it was chosen on: optimistic" in html
    rows = ((tmp_path / "stored" / "latest").resolve() / "predictions.csv").read_text().splitlines()
    assert rows[0].endswith(",urgent") and {row.rsplit(",", 1)[1] for row in rows[1:]} == {"1"}  # threshold 0
    assert "Urgent-referral specificity, predicted class (argmax)" in html

    metrics, html, _ = _report(model, data, tmp_path / "override", "--referral-threshold", "0.5")
    referral = metrics["referral"]
    assert referral["threshold"] == 0.5 and referral["rule"]["source"] == "--referral-threshold"
    assert referral["urgent_specificity"] == 1.0
    assert referral["rule"]["note"] == "The model's stored rule (P(CNV) + P(DME) >= 0) is not used."
    assert metrics["report_config"]["referral_threshold"] == 0.5
    assert "Set for this report with --referral-threshold 0.5" in html


def test_a_model_without_a_stored_rule_uses_argmax_and_says_so(audited_run, tmp_path):
    _, data = audited_run
    model = _model_copy(audited_run, tmp_path / "model", None)
    metrics, html, _ = _report(model, data, tmp_path / "runs")
    rule = metrics["referral"]["rule"]
    assert rule["source"] == "none" and rule["threshold"] is None and rule["rule"] == "predicted class CNV or DME"
    assert "no stored referral threshold" in rule["note"] and "no stored referral threshold" in html
    assert "argmax:" not in html


def test_referral_options_are_checked_before_any_work(tmp_path):
    other = write_class_folders(tmp_path / "other", classes=("a", "b"), patients=10, per_patient=1)
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, ["run", "--data", str(other), "--out", str(out), "--referral-threshold", "0.2"])
    assert result.exit_code == 2 and "Error: --referral-threshold needs the four OCT classes" in result.output
    assert not out.exists() or not any(out.iterdir())
    for option, value in (("--referral-threshold", "1.5"), ("--referral-sensitivity", "1")):
        result = CliRunner().invoke(main, ["run", "--data", str(other), "--out", str(out), option, value])
        assert result.exit_code == 2 and option in result.output


@pytest.mark.parametrize("rule", [None, STORED])
def test_compare_notes_when_the_rules_differ(rule, tmp_path):
    from octreport.audit.compare import _rule_notes

    a = {"referral": {"rule": rule}}
    b = {"referral": {"rule": {"rule": "P(CNV) + P(DME) >= 0.2"}}}
    [note] = _rule_notes(a, b)
    assert "A calls urgent when " + ("predicted class CNV or DME" if rule is None else "P(CNV) + P(DME) >= 0") in note
    assert _rule_notes(b, b) == []


@pytest.mark.parametrize("rule", [{"source": "validation", "threshold": 7}, {"source": "validation", "threshold": "nan"}])
def test_a_hand_written_rule_that_is_wrong_stops_the_report_before_any_run_folder(audited_run, tmp_path, rule):
    _, data = audited_run
    model = _model_copy(audited_run, tmp_path / "model", rule)
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, ["report", "--model", str(model), "--data", str(data), "--out", str(out),
                                       *QUICK_REPORT])
    assert result.exit_code == 4, result.output
    assert "referral_rule.threshold" in result.output and "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())
