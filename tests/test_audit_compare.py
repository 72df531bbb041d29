"""Comparing two run folders written by hand: deltas, confusion change, drift, manifests, aliases."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from octreport.audit.compare import ABSENT, compare_runs, flatten, load_run, regressions, resolve_run
from octreport.report.compare_view import format_comparison_text, render_comparison_html
from octreport.errors import ConfigError
from run_documents import OCT as CLASSES
from run_documents import manifest_document as manifest
from run_documents import confident, metrics_document, referral_section, write_run


def metrics(accuracy, macro_f1, recalls, confusion, weighted_error, urgent_sensitivity, norms, health=None,
            epochs=3, keras_version="3.15.1", class_names=CLASSES) -> dict:
    return metrics_document(accuracy, class_names=class_names, macro_f1=macro_f1, recalls=recalls, confusion=confusion,
                            referral=referral_section(urgent_sensitivity, weighted_error), health=health, norms=norms,
                            epochs=epochs, keras_version=keras_version)


RUN_A = metrics(0.80, 0.78, [0.9, 0.8, 0.7, 0.8], [[9, 1, 0, 0], [1, 8, 1, 0], [0, 1, 7, 2], [0, 0, 2, 8]],
                0.30, 0.85, {"conv1": (0.1, 0.2, 0.3), "conv2": (0.5, 0.6, 0.7), "old": (1, 1, 1)},
                health=[{"layer": "conv1", "dead_share": 0.0}, {"layer": "conv2", "dead_share": 0.125}])
RUN_B = metrics(0.75, 0.74, [0.95, 0.6, 0.7, 0.75], [[10, 0, 0, 0], [2, 6, 1, 1], [0, 1, 7, 2], [0, 1, 2, 7]],
                0.42, 0.80, {"conv1": (0.15, 0.2, 0.35), "conv2": (0.5, 0.55, 0.9), "new": (1, 1, 1)},
                health=[{"layer": "conv1", "dead_share": 0.0}, {"layer": "conv2", "dead_share": 0.25}],
                epochs=5, keras_version="3.16.0")


@pytest.fixture
def runs(tmp_path) -> Path:
    """Two finished runs, then a failed and an incomplete one that aliases must skip."""
    root = tmp_path / "runs"
    write_run(root, "20260101-100000-aaaaaa", RUN_A, manifest())
    write_run(root, "20260102-100000-bbbbbb", RUN_B, manifest(weights="w2", epochs=5, keras_version="3.16.0", height=64))
    write_run(root, "20260103-100000-cccccc.failed", None)
    write_run(root, ".incomplete-20260104-100000-dddddd", RUN_A)
    os.symlink("20260102-100000-bbbbbb", root / "latest")
    return root


@pytest.fixture
def comparison(runs):
    return compare_runs(load_run("previous", runs), load_run("latest", runs))


def test_aliases_skip_failed_and_incomplete_runs(runs):
    assert resolve_run("latest", runs).name == "20260102-100000-bbbbbb"
    assert resolve_run("previous", runs).name == "20260101-100000-aaaaaa"
    assert resolve_run("20260101-100000-aaaaaa", runs) == runs / "20260101-100000-aaaaaa"  # a name under out_root
    assert resolve_run(str(runs / "20260102-100000-bbbbbb"), Path("/nowhere")).name == "20260102-100000-bbbbbb"


def test_latest_link_pointing_back_makes_previous_the_run_before_it(runs):
    os.remove(runs / "latest")
    os.symlink("20260101-100000-aaaaaa", runs / "latest")
    assert resolve_run("latest", runs).name == "20260101-100000-aaaaaa"
    with pytest.raises(ConfigError, match="'previous': no finished run before 20260101-100000-aaaaaa"):
        resolve_run("previous", runs)


def test_without_a_latest_link_latest_is_the_newest_finished_run(runs):
    os.remove(runs / "latest")
    assert resolve_run("latest", runs).name == "20260102-100000-bbbbbb"


@pytest.mark.parametrize("name, message", [
    ("20260103-100000-cccccc.failed", "failed or incomplete"),
    (".incomplete-20260104-100000-dddddd", "failed or incomplete"),
    ("nothing-here", "no run 'nothing-here'.*latest, previous"),
])
def test_bad_run_names_are_config_errors(runs, name, message):
    with pytest.raises(ConfigError, match=message):
        resolve_run(name, runs)


def test_empty_out_root(tmp_path):
    with pytest.raises(ConfigError, match="no finished run"):
        resolve_run("latest", tmp_path / "none")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ConfigError, match="has no metrics.json"):
        resolve_run(str(tmp_path / "plain"), tmp_path)


def test_metric_deltas(comparison):
    by_name = {m.name: m for m in comparison.metrics + comparison.referral}
    assert by_name["accuracy"].delta == pytest.approx(-0.05)
    assert by_name["macro F1"].delta == pytest.approx(-0.04)
    assert by_name["weighted error"].delta == pytest.approx(0.12) and not by_name["weighted error"].higher_is_better
    assert by_name["urgent sensitivity"].delta == pytest.approx(-0.05)
    dme = next(c for c in comparison.per_class if c.name == "DME")
    assert dme.metric("recall").delta == pytest.approx(-0.2)
    assert (dme.support_a, dme.support_b) == (10, 10)


def test_confusion_change_is_b_minus_a(comparison):
    assert comparison.confusion.class_names == tuple(CLASSES)
    assert comparison.confusion.delta == ((1, -1, 0, 0), (1, -2, 0, 1), (0, 0, 0, 0), (0, 1, 0, -1))


def test_confusion_change_reorders_classes_and_refuses_other_classes(tmp_path):
    order_b = ["NORMAL", "DRUSEN", "DME", "CNV"]
    confusion_b = [[8, 2, 0, 0], [2, 7, 1, 0], [0, 1, 8, 1], [0, 0, 1, 9]]  # RUN_A's matrix in reversed order
    a = write_run(tmp_path, "a", RUN_A)
    b = write_run(tmp_path, "b", metrics(0.8, 0.78, [0.8] * 4, confusion_b, 0.3, 0.85, {}, class_names=order_b))
    same = compare_runs(load_run(a, tmp_path), load_run(b, tmp_path))
    assert same.confusion.delta == ((0,) * 4,) * 4
    c = write_run(tmp_path, "c", metrics(0.8, 0.78, [0.8] * 2, [[5, 5], [5, 5]], 0.3, 0.85, {}, class_names=["cat", "dog"]))
    other = compare_runs(load_run(a, tmp_path), load_run(c, tmp_path))
    assert other.confusion.delta is None and "the classes differ" in other.confusion.note
    assert other.classes_only_in_a == tuple(CLASSES) and other.classes_only_in_b == ("cat", "dog")


def test_layer_drift_for_layers_in_both_runs(comparison):
    assert [d.layer for d in comparison.layers] == ["conv1", "conv2"]
    conv2 = comparison.layers[1]
    assert [n.delta for n in conv2.norms] == pytest.approx([0.0, -0.05, 0.2])
    assert conv2.dead_share.delta == pytest.approx(0.125)
    assert comparison.layers_only_in_a == ("old",) and comparison.layers_only_in_b == ("new",)


def test_manifest_changes(comparison):
    identity = {i.what: i for i in comparison.identity}
    assert identity["model weights"].same is False and identity["model file"].verdict == "changed"
    assert identity["data fingerprint"].same is True
    changes = {c.key: (c.a, c.b) for c in comparison.config_changes}
    assert changes == {
        "train.epochs": (3, 5), "train.preprocessing.height": (48, 64),
        "command_line": ("octreport run --epochs 3", "octreport run --epochs 5"),
    }
    assert [(c.key, c.a, c.b) for c in comparison.version_changes] == [("keras", "3.15.1", "3.16.0")]
    assert comparison.notes == ()


def test_runs_without_manifest_compare_what_metrics_json_records(tmp_path):
    a, b = write_run(tmp_path, "a", RUN_A), write_run(tmp_path, "b", RUN_B)
    c = compare_runs(load_run(a, tmp_path), load_run(b, tmp_path))
    assert all(i.same is None for i in c.identity)
    assert {x.key for x in c.config_changes} == {"train.epochs", "command_line"}
    assert len(c.notes) == 2 and "no manifest.json" in c.notes[0]


def test_flatten_and_absent_keys():
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}}) == {"a.b": 1, "a.c.d": [1, 2], "e": {}}
    from octreport.audit.compare import _differences

    [change] = _differences({"x": 1}, {"x": 1, "y": None})
    assert (change.key, change.a, change.b, change.a_text, change.b_text) == ("y", ABSENT, None, "(absent)", "null")


def test_regressions_respect_the_tolerance(comparison):
    found = regressions(comparison, 0.05)  # accuracy and urgent sensitivity fell by exactly 0.05: within
    assert found == [
        "recall of DME fell from 80.0% to 60.0% (\u221220.0 pp; tolerance 5.0 pp)",
        "weighted error rose from 0.300 to 0.420 (+0.120; tolerance 0.05)",
    ]
    strict = regressions(comparison, 0.01)
    assert [line.split(" ")[0] for line in strict] == ["accuracy", "macro", "urgent", "recall", "recall", "weighted"]
    assert regressions(comparison, 0.5) == []
    with pytest.raises(ConfigError, match="tolerance"):
        regressions(comparison, -0.1)


def test_text_report(comparison):
    text = format_comparison_text(comparison)
    assert "A: 20260101-100000-aaaaaa" in text and "B: 20260102-100000-bbbbbb" in text
    assert "accuracy" in text and "\u22125.0 pp" in text
    assert "train.epochs: 3 -> 5" in text and "keras: 3.15.1 -> 3.16.0" in text
    assert "model weights: changed" in text and "data fingerprint: same" in text
    assert "layers only in A: old" in text


def test_f1_reads_as_the_report_prints_it_a_score_not_a_percentage(comparison):
    text = format_comparison_text(comparison)
    macro = next(line for line in text.splitlines() if line.strip().startswith("macro F1"))
    assert macro.split()[2:5] == ["0.780", "0.740", "\u22120.040"] and "%" not in macro
    dme = text.split("  DME (support")[1].split("  DRUSEN (support")[0]
    assert "F1" in dme and "0.700" in dme
    [found] = [line for line in regressions(comparison, 0.01) if line.startswith("macro F1")]
    assert found == "macro F1 fell from 0.780 to 0.740 (\u22120.040; tolerance 0.01)"


def test_html_report(comparison):
    html = render_comparison_html(comparison, tolerance=0.05)
    assert html.startswith("<!doctype html>")
    assert "<title>octreport comparison: 20260101-100000-aaaaaa vs 20260102-100000-bbbbbb</title>" in html
    assert "2 regression(s) beyond the tolerance of 5.0%" in html
    assert "recall of DME fell from 80.0% to 60.0%" in html
    assert "\u22125.0 pp" in html and "+0.120" in html      # accuracy and weighted error changes
    assert "<td class=\"num\">\u22122</td>" in html           # DME predicted as DME: 8 -> 6
    assert "train.preprocessing.height" in html and "3.16.0" in html
    assert "<style>" in html and "@page" in html              # the report stylesheet, inlined
    without = render_comparison_html(comparison)
    assert "Regressions" not in without


def test_html_escapes_what_the_runs_say(tmp_path):
    evil = dict(RUN_A, command_line="<script>alert(1)</script>")
    a, b = write_run(tmp_path, "a", RUN_A), write_run(tmp_path, "b", evil)
    html = render_comparison_html(compare_runs(load_run(a, tmp_path), load_run(b, tmp_path)))
    assert "<script>" not in html and "&lt;script&gt;" in html


# ---------- significance: paired when both runs evaluated the same images ----------


def run_from_predictions(root: Path, name: str, y, p, fingerprint: str = "d1", with_predictions: bool = True) -> Path:
    """A run folder whose metrics.json, intervals and predictions.csv come from ``(y, p)``."""
    from octreport.evaluation.predictions_file import predictions_csv, run_predictions
    from octreport.evaluation.intervals import compute_metric_intervals
    from octreport.evaluation.metrics import compute_classification_metrics
    from octreport.evaluation.referral import compute_referral_metrics

    metrics, referral = compute_classification_metrics(y, p, CLASSES), compute_referral_metrics(y, p, CLASSES)
    doc = {"classification": metrics.to_dict(), "referral": referral.to_dict(),
           "intervals": compute_metric_intervals(metrics, p, referral).to_dict()}
    folder = write_run(root, name, doc, manifest(data=fingerprint))
    if with_predictions:
        paths = [f"test/{CLASSES[label]}/{CLASSES[label]}-{1000 + i // 2}-{i % 2 + 1}.jpeg" for i, label in enumerate(y)]
        record = run_predictions(paths, y, p, CLASSES)
        (folder / "predictions.csv").write_text(predictions_csv(record), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def paired_runs(tmp_path_factory):
    """A baseline and three later runs on the same 200 images: identical, a small drop (8 images
    newly wrong, 2 newly right: 3 points, not significant) and a large one (30 newly wrong)."""
    root = tmp_path_factory.mktemp("paired")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    right = rng.random(200) < 0.9
    small, large = right.copy(), right.copy()
    small[np.flatnonzero(right)[:8]] = False
    small[np.flatnonzero(~right)[:2]] = True
    large[np.flatnonzero(right)[:30]] = False
    for name, r in (("base", right), ("same", right), ("small-drop", small), ("large-drop", large)):
        run_from_predictions(root, name, y, confident(y, r))
    return root


def test_identical_paired_runs_are_not_significant(paired_runs):
    c = compare_runs(load_run("base", paired_runs), load_run("same", paired_runs))
    assert c.pairing.paired and c.pairing.n_images == 200 and "Paired: both runs evaluated the same 200" in c.pairing.note
    tested = [m.test for m in c.metrics + c.referral if m.test is not None]
    assert len(tested) == 10 and not any(t.significant for t in tested)
    assert c.metrics[0].test.method == "exact McNemar" and c.metrics[0].test.verdict == "not significant (p = 1.000)"
    assert "not significant (p = 1.000)" in format_comparison_text(c)


def test_a_large_paired_drop_is_significant_and_fails_in_either_mode(paired_runs):
    c = compare_runs(load_run("base", paired_runs), load_run("large-drop", paired_runs))
    accuracy = c.metrics[0]
    assert accuracy.delta == pytest.approx(-0.15) and accuracy.test.significant and accuracy.test.p_value < 1e-6
    assert accuracy.ci_a is not None and accuracy.ci_a.method == "wilson"
    found = regressions(c, 0.02, "significant")
    assert found[0].startswith("accuracy fell from") and "significant (p < 0.001), exact McNemar" in found[0]
    html = render_comparison_html(c, 0.02, mode="significant")
    assert "significant drops only" in html and "Paired: both runs" in html and "95% CI" in html


def test_a_small_drop_fails_only_when_every_drop_counts(paired_runs):
    c = compare_runs(load_run("base", paired_runs), load_run("small-drop", paired_runs))
    assert c.metrics[0].delta == pytest.approx(-0.03) and c.metrics[0].test.significant is False
    assert [line.split(" fell")[0] for line in regressions(c, 0.02)][:1] == ["accuracy"]
    assert regressions(c, 0.02, "significant") == []
    with pytest.raises(ConfigError, match="regression mode"):
        regressions(c, 0.02, "maybe")


def test_compare_command_exit_codes_for_both_modes(paired_runs):
    from click.testing import CliRunner

    from octreport.cli import main

    def compare(*args):
        return CliRunner().invoke(main, ["compare", "base", *args, "--out", str(paired_runs), "--bootstrap-resamples", "500"])

    assert compare("small-drop", "--fail-on-regression", "0.02").exit_code == 5
    lenient = compare("small-drop", "--fail-on-regression", "0.02", "--regression-mode", "significant")
    assert lenient.exit_code == 0, lenient.output
    assert "not significant (p = 0.109)" in lenient.output  # 8 against 2: 2 * 56 / 1024
    strict = compare("large-drop", "--fail-on-regression", "0.02", "--regression-mode", "significant")
    assert strict.exit_code == 5 and "Significant regression beyond the tolerance: accuracy fell" in strict.output
    assert compare("same", "--ci-level", "2").exit_code == 2


def test_runs_on_different_images_compare_intervals_and_say_so(tmp_path):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 200)
    right = rng.random(200) < 0.9
    worse = right & (rng.random(200) < 0.7)
    run_from_predictions(tmp_path, "a", y, confident(y, right), fingerprint="d1")
    run_from_predictions(tmp_path, "b", y, confident(y, worse), fingerprint="d2")
    run_from_predictions(tmp_path, "c", y, confident(y, right), fingerprint="d1", with_predictions=False)
    c = compare_runs(load_run("a", tmp_path), load_run("b", tmp_path))
    assert not c.pairing.paired and "Not paired: the data fingerprints differ" in c.pairing.note
    accuracy = c.metrics[0]
    assert accuracy.test.method == "intervals compared (not paired)"
    assert accuracy.test.significant == (accuracy.ci_b.high < accuracy.ci_a.low)
    assert accuracy.test.significant  # about 27 points apart on 200 images each
    old = compare_runs(load_run("a", tmp_path), load_run("c", tmp_path))
    assert not old.pairing.paired and "run B has no predictions.csv" in old.pairing.note
    assert old.metrics[0].test.verdict == "not significant (the intervals overlap)"


def test_runs_without_intervals_are_not_tested(comparison):
    assert not comparison.pairing.paired
    assert comparison.metrics[0].test.significant is None and "not tested" in format_comparison_text(comparison)
    # Not tested drops still count in the significant mode: a check must not pass for want of a test.
    assert regressions(comparison, 0.05, "significant")[0].startswith("recall of DME fell")
