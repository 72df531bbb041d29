"""octreport history over run folders built by hand: the table, the change marks, the links, the JSON,
failed, incomplete and unreadable runs, an empty root; and the trend figure."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from octreport.audit.history import build_history, history_to_dict
from octreport.report.history_view import render_history_html
from octreport.cli import main
from run_documents import gate_result, manifest_document, metrics_document, referral_section, write_run

MODEL_A, MODEL_B = "a" * 64, "b" * 64
DATA_1 = "5" * 64


def headline(accuracy: float, started_at: str, gates: list[dict] | None = None) -> dict:
    """A metrics.json with what history reads: the headline metrics, the layer health, and the gates
    (one passed unless ``gates`` are given)."""
    gates = gates if gates is not None else [gate_result("above chance", accuracy, 0.3, True, "above chance")]
    return metrics_document(accuracy, started_at=started_at, gates=gates,
                            referral=referral_section(0.95, 0.1, specificity=0.97),
                            health=[{"layer": "conv1", "dead_share": 0.0}, {"layer": "conv2", "dead_share": 0.125}])


@pytest.fixture
def archive(tmp_path) -> Path:
    """Five complete runs (one on a new model, one with a new configuration, one failing a gate, one
    with intervals), a failed run, an incomplete one, one with a corrupt metrics.json, and clutter."""
    root = tmp_path / "runs"
    write_run(root, "20260101-020000-aaaaaa", headline(0.90, "2026-01-01T02:00:00+00:00"), manifest_document(MODEL_A, DATA_1))
    write_run(root, "20260102-020000-bbbbbb", headline(0.91, "2026-01-02T02:00:00+00:00"),
              manifest_document(MODEL_A, DATA_1, out_root="/elsewhere"), report="report.pdf")
    write_run(root, "20260103-020000-cccccc", headline(0.93, "2026-01-03T02:00:00+00:00"), manifest_document(MODEL_B, DATA_1))
    failing = [gate_result("accuracy", 0.85, 0.9, False, "accuracy 0.85 is below the minimum 0.9")]
    write_run(root, "20260104-020000-dddddd", headline(0.85, "2026-01-04T02:00:00+00:00", failing),
              manifest_document(MODEL_B, DATA_1))
    with_interval = headline(0.92, "2026-01-05T02:00:00+00:00")
    with_interval["classification"]["accuracy"] = {"value": 0.92, "low": 0.88, "high": 0.95, "method": "wilson"}
    write_run(root, "20260105-020000-eeeeee", with_interval, manifest_document(MODEL_B, DATA_1, epochs=20))
    failed = root / "20260103-030000-ffffff.failed"
    failed.mkdir()
    (failed / "run.log").write_text("ERROR run failed\n")
    (root / ".incomplete-20260105-030000-abcdef").mkdir()
    write_run(root, "20260104-030000-000000", '{"classification": {"accuracy": 0.9', manifest_document(MODEL_B, DATA_1))
    (root / "notes").mkdir()  # not a run
    os.symlink("20260105-020000-eeeeee", root / "latest")
    return root


def test_history_lists_complete_runs_with_what_changed_and_the_gates(archive):
    history = build_history(archive)
    assert [e.name for e in history.entries] == [
        "20260101-020000-aaaaaa", "20260102-020000-bbbbbb", "20260103-020000-cccccc",
        "20260104-020000-dddddd", "20260105-020000-eeeeee"]
    changes = [e.changes for e in history.entries]
    # Where a run was written is not a configuration change; a new model and new epochs are.
    assert changes == [(), (), ("model",), (), ("config",)]
    assert history.entries[4].config_changes == ("train.epochs",)
    failing = history.entries[3]
    assert failing.gates_passed is False and failing.failed_gates == ("accuracy: accuracy 0.85 is below the minimum 0.9",)
    assert all(e.gates_passed for e in history.entries if e is not failing)
    assert history.entries[0].metrics["dead_filter_share"].value == 0.125
    assert history.entries[4].metrics["accuracy"].value == 0.92 and history.entries[4].metrics["accuracy"].low == 0.88
    problems = {p.name: (p.kind, p.log) for p in history.problems}
    assert problems == {
        "20260103-030000-ffffff.failed": ("failed", "run.log"),
        "20260104-030000-000000": ("unreadable", None),
        ".incomplete-20260105-030000-abcdef": ("incomplete", None),
    }
    assert "not valid JSON" in next(p.reason for p in history.problems if p.kind == "unreadable")


def test_history_page_rows_marks_and_relative_links(archive, tmp_path):
    html = render_history_html(build_history(archive), archive)
    rows = re.findall(r"<tr class=\"run-(?:pass|fail)\">.*?</tr>", html, flags=re.S)
    assert len(rows) == 5
    assert "20260105-020000-eeeeee" in rows[0] and "20260101-020000-aaaaaa" in rows[-1]  # newest first
    failing = next(r for r in rows if "dddddd" in r)
    assert failing.startswith('<tr class="run-fail">') and "FAILED: accuracy: accuracy 0.85 is below the minimum 0.9" in failing
    assert sum(r.startswith('<tr class="run-fail">') for r in rows) == 1
    new_model = next(r for r in rows if "cccccc" in r)
    assert '<td class="hash changed"><span class="mark">▲</span> bbbbbbbbbbbb</td>' in new_model
    assert "configuration (train.epochs)" in rows[0]
    assert "92.0%<br><span class=\"hint\">88.0%–95.0%</span>" in rows[0]
    assert 'href="20260101-020000-aaaaaa/report.html"' in html
    assert 'href="20260102-020000-bbbbbb/report.pdf"' in html  # a run with only a PDF links to it
    assert 'href="20260103-030000-ffffff.failed/run.log"' in html
    assert re.search(r'<img src="data:image/png;base64,', html)
    unreadable = html.split('id="unreadable"')[1]
    assert "20260104-030000-000000" in unreadable and "metrics.json is not valid JSON" in unreadable
    # Written into another folder, the links climb out of it: the page and the archive move together.
    elsewhere = render_history_html(build_history(archive), tmp_path / "site" / "pages")
    assert 'href="../../runs/20260101-020000-aaaaaa/report.html"' in elsewhere


def test_history_cli_json_and_default_page(archive):
    result = CliRunner().invoke(main, ["history", "--out", str(archive), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [r["name"] for r in document["runs"]][-1] == "20260105-020000-eeeeee"
    assert document["runs"][2]["changes"] == ["model"] and document["runs"][3]["gates_passed"] is False
    assert document["runs"][0]["report"] == "20260101-020000-aaaaaa/report.html"
    assert document["runs"][4]["metrics"]["accuracy"] == {"value": 0.92, "low": 0.88, "high": 0.95}
    assert {p["kind"] for p in document["problems"]} == {"failed", "incomplete", "unreadable"}
    assert not (archive / "history.html").exists()  # --json alone writes nothing
    plain = CliRunner().invoke(main, ["history", "--out", str(archive)])
    assert plain.exit_code == 0, plain.output
    assert "5 complete run(s), 1 with a failed gate; 1 failed, 1 incomplete, 1 unreadable" in plain.output
    assert (archive / "history.html").read_text().startswith("<!doctype html>")
    assert sorted(p.name for p in (archive / "20260101-020000-aaaaaa").iterdir()) == ["manifest.json", "metrics.json", "report.html"]


def test_history_last_keeps_the_newest_runs_and_marks_against_the_one_before(archive):
    history = build_history(archive, last=2)
    assert [e.name for e in history.entries] == ["20260104-020000-dddddd", "20260105-020000-eeeeee"]
    assert history.entries[1].changes == ("config",)
    assert [p.name for p in history.problems] == ["20260104-030000-000000", ".incomplete-20260105-030000-abcdef"]
    assert len(history_to_dict(history)["runs"]) == 2


def test_history_of_an_empty_root_and_of_a_missing_one(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["history", "--out", str(tmp_path / "empty"), "--html", str(tmp_path / "h.html")])
    assert result.exit_code == 0, result.output
    assert "0 complete run(s)" in result.output
    html = (tmp_path / "h.html").read_text()
    assert "No complete run under" in html and "No complete run recorded a headline metric." in html
    missing = CliRunner().invoke(main, ["history", "--out", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "does not exist" in missing.output and "Traceback" not in missing.output


def test_a_corrupt_metrics_json_is_listed_never_a_traceback(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "20260101-020000-aaaaaa", "{ not json", manifest_document(MODEL_A, DATA_1))
    write_run(root, "20260102-020000-bbbbbb", "[1, 2]", None)
    write_run(root, "20260103-020000-cccccc", headline(0.9, "2026-01-03T02:00:00+00:00"), None)
    (root / "20260103-020000-cccccc" / "manifest.json").write_bytes(b"\xff\xfe")
    result = CliRunner().invoke(main, ["history", "--out", str(root), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    reasons = {p["name"]: p["reason"] for p in document["problems"]}
    assert "not valid JSON" in reasons["20260101-020000-aaaaaa"]
    assert "holds a list, not an object" in reasons["20260102-020000-bbbbbb"]
    # A run whose manifest cannot be read is still listed, its identity unknown.
    assert document["runs"][0]["name"] == "20260103-020000-cccccc" and document["runs"][0]["weights_sha256"] is None
    assert "model, data and configuration unknown" in document["runs"][0]["notes"][0]


def test_history_pdf_keeps_links_relative(archive, tmp_path):
    import pypdf

    pdf = tmp_path / "out" / "history.pdf"
    pdf.parent.mkdir()
    result = CliRunner().invoke(main, ["history", "--out", str(archive), "--pdf", str(pdf)])
    assert result.exit_code == 0, result.output
    uris = [annotation.get_object()["/A"]["/URI"] for page in pypdf.PdfReader(pdf).pages
            for annotation in page.get("/Annots", []) if "/A" in annotation.get_object()]
    assert "../runs/20260101-020000-aaaaaa/report.html" in uris
    assert not any(str(uri).startswith("file:") for uri in uris)


def test_trend_figure_marks_failed_runs_new_models_and_changes():
    from octreport.drawing.trends import CONFIG_COLOR, DATA_COLOR, FAILED_COLOR, TrendMarks, TrendSeries, trend_figure

    n = 6
    marks = TrendMarks(failed=np.array([0, 0, 1, 0, 0, 1], bool), new_model=np.array([0, 1, 0, 0, 1, 0], bool),
                       data_changed=np.array([0, 0, 0, 1, 0, 0], bool), config_changed=np.array([0, 0, 0, 0, 0, 1], bool))
    values = np.array([0.9, 0.91, np.nan, 0.93, 0.92, 0.88])
    series = [TrendSeries("accuracy", values, values - 0.02, values + 0.02), TrendSeries("weighted error", values / 10, fraction=False)]
    fig = trend_figure([f"01-0{i}" for i in range(n)], series, marks)
    assert len(fig.axes) == 2
    top = fig.axes[0]
    red = [line for line in top.lines if line.get_color() == FAILED_COLOR]
    assert [len(line.get_xdata()) for line in red] == [1]  # run 2 failed but recorded no accuracy: only run 5 is drawn
    assert list(red[0].get_xdata()) == [5.0]
    diamonds = [line for line in top.lines if line.get_marker() == "D"]
    assert sorted(x for line in diamonds for x in line.get_xdata()) == [1.0, 4.0]
    assert [line.get_xdata()[0] for line in top.lines if line.get_color() == DATA_COLOR] == [2.5]
    assert [line.get_xdata()[0] for line in top.lines if line.get_color() == CONFIG_COLOR] == [4.5]
    assert len(top.collections) == 1  # the interval band
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()][:2] == ["01-00", "01-01"]


def test_the_manifest_file_list_is_skipped_but_everything_else_read(tmp_path):
    from octreport.audit.history import _read_manifest
    from octreport.audit.manifest import write_manifest

    for n in (50, 3000):  # a small manifest is read whole; a large one only at its head and tail
        document = manifest_document(MODEL_A, DATA_1)
        document["data"]["counts"] = {"test": {"CNV": n}}
        document["data"]["files"] = [{"path": f"test/CNV/{k}.jpeg", "split": "test", "class": "CNV", "size": k,
                                      "sha256": "0" * 64} for k in range(n)]
        write_manifest(tmp_path / "manifest.json", document)
        parsed, problem = _read_manifest(tmp_path / "manifest.json")
        assert problem is None and parsed["data"]["files"] is None
        assert {k: v for k, v in parsed.items() if k != "data"} == {k: v for k, v in document.items() if k != "data"}
        assert parsed["data"]["sha256"] == DATA_1 and parsed["data"]["counts"] == {"test": {"CNV": n}}
        (tmp_path / "compact.json").write_text(json.dumps(document))  # another layout: parsed whole
        assert _read_manifest(tmp_path / "compact.json") == (document, None)


def test_a_new_dicom_salt_is_no_configuration_change_and_a_new_referral_threshold_is(tmp_path):
    root = tmp_path / "runs"
    for k, (salt, threshold) in enumerate([("s1", None), ("s2", None), ("s3", 0.2)]):
        manifest = manifest_document(MODEL_A, DATA_1)
        manifest["config"]["report"].update(dicom_salt=salt, referral_threshold=threshold)
        write_run(root, f"2026010{k + 1}-020000-aaaaa{k}", headline(0.9, f"2026-01-0{k + 1}T02:00:00+00:00"), manifest)
    entries = build_history(root).entries
    assert [e.changes for e in entries] == [(), (), ("config",)]
    assert entries[2].config_changes == ("report.referral_threshold",)


def test_history_marks_a_run_whose_urgent_numbers_follow_another_rule(tmp_path):
    root = tmp_path / "runs"
    old = headline(0.9, "2026-01-01T02:00:00+00:00")
    old["referral"].pop("threshold", None)  # schema 4: the predicted class, nothing recorded
    new = headline(0.9, "2026-01-02T02:00:00+00:00")
    new["referral"]["threshold"] = 0.43
    write_run(root, "20260101-020000-aaaaaa", old, manifest_document(MODEL_A, DATA_1))
    write_run(root, "20260102-020000-bbbbbb", new, manifest_document(MODEL_A, DATA_1))
    first, second = build_history(root).entries
    assert first.urgent_rule == "predicted class CNV or DME (recorded before referral rules)"
    assert second.urgent_rule == "P(CNV) + P(DME) >= 0.43"
    assert second.notes == ("urgent numbers by the rule P(CNV) + P(DME) >= 0.43; the run before: "
                            "predicted class CNV or DME (recorded before referral rules)",)
    assert history_to_dict(build_history(root))["runs"][1]["urgent_rule"] == "P(CNV) + P(DME) >= 0.43"
