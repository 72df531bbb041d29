"""Hardening II (issue 24): a template folder cannot read a file outside itself nor exhaust the
machine; hostile run folders and user files are clear errors; CSV cells cannot be formulas;
the near-duplicate audit is bounded; messages name the option given; ``--quiet`` is quiet; the
bundled data passes its own audit; ``verify --strict``."""

from __future__ import annotations

import time

import numpy as np
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import write_learnable_kermany
from test_hardening import refused as one_error
from octreport.cli import main
from octreport.errors import ReportError
from octreport.report.preview import check_templates


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_learnable_kermany(tmp_path_factory.mktemp("data") / "oct", patients=4, per_patient=1)


# ---------- 1. templates: confined loader, render limits ----------


def test_a_template_linked_to_a_file_outside_is_refused_before_the_run(data, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-LINE")
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "leak.html").symlink_to(secret)
    (templates / "base.html").write_text('{% include "leak.html" %}{{ report.title }}')
    code, error = one_error(["run", "--data", str(data), "--out", str(tmp_path / "runs"), "--templates", str(templates),
                             "--epochs", "1", "--image-size", "16"])
    assert code == 6 and "leak.html is a link to" in error and "outside the template folder" in error
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("name", ["/etc/hostname", "../templates/base.html", "partials/../../x.html"])
def test_absolute_and_dotdot_includes_are_refused(tmp_path, name):
    (tmp_path / "base.html").write_text(f'{{% include "{name}" %}}')
    with pytest.raises(ReportError, match="refused: templates may only name files inside the template folders"):
        check_templates(tmp_path)


def test_a_link_inside_the_folder_is_served(tmp_path):
    (tmp_path / "real.html").write_text("{{ report.title }}")
    (tmp_path / "alias.html").symlink_to(tmp_path / "real.html")
    (tmp_path / "base.html").write_text('{% include "alias.html" %}')
    check_templates(tmp_path)


@pytest.mark.parametrize("source, limit", [
    ("{% for i in range(10**9) %}{% endfor %}", "range() of 1,000,000,000 numbers"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "more than 5,000,000 steps"),
    ('{% set s = "x" * 20000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}', "more than 5,000,000 steps"),
    ('{{ "x" * 10**9 }}', "a '*' would make a value"),
    ('{{ "%0999999999d" % 1 }}', "format width"),
    ('{{ "x" | center(10**9) }}', "a filter argument over"),
    ('{% set l = [1] * 1000 %}{% for i in range(20) %}{% set _ = l.extend(l) %}{% endfor %}', "a call grew a value"),
])
def test_a_hostile_template_stops_at_a_limit_with_exit_6(tmp_path, source, limit):
    (tmp_path / "base.html").write_text(source)
    started = time.monotonic()
    with pytest.raises(ReportError, match="went past a render limit") as caught:
        check_templates(tmp_path)
    assert limit in str(caught.value)
    assert time.monotonic() - started < 5


def test_the_render_time_limit_holds(tmp_path):
    from octreport.report.render import render_page
    from octreport.report.template_limits import RenderLimits

    (tmp_path / "base.html").write_text("{% for i in range(100000) %}{{ i }}{% endfor %}")
    with pytest.raises(ReportError, match="rendering took longer than 0.001 s"):
        render_page("base.html", tmp_path, RenderLimits(seconds=0.001), report=None)


def test_any_exception_a_template_raises_is_exit_6(tmp_path):
    (tmp_path / "base.html").write_text('{{ {}.pop("x") }}')
    with pytest.raises(ReportError, match="KeyError"):
        check_templates(tmp_path)


# ---------- 2. hostile run folders and user files ----------


def _archive_with(audited_run, root: Path, name: str, text: str) -> Path:
    import shutil

    run = root / "20260102-000000"
    shutil.copytree(audited_run[0], run, ignore=shutil.ignore_patterns("*.pdf", "*.keras"))
    (run / name).write_text(text)
    return run


@pytest.mark.parametrize("text, reason", [
    (None, "not shaped as octreport writes it (TypeError"),
    ("[" * 5000 + "]" * 5000, "nests deeper than 64 levels"),
])
def test_history_lists_an_odd_run_apart(audited_run, tmp_path, text, reason):
    import json

    if text is None:
        metrics = json.loads((audited_run[0] / "metrics.json").read_text())
        metrics["layer_health"] = 7
        text = json.dumps(metrics)
    _archive_with(audited_run, tmp_path, "metrics.json", text)
    result = CliRunner().invoke(main, ["history", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    problems = json.loads(result.output[result.output.index("{"):])["problems"]
    assert [p["name"] for p in problems] == ["20260102-000000"] and reason in problems[0]["reason"]


def test_a_deeply_nested_card_or_config_is_a_clear_error(data, tmp_path):
    card = tmp_path / "card.json"
    card.write_text('{"a":' * 3000 + "1" + "}" * 3000)
    code, error = one_error(["run", "--data", str(data), "--out", str(tmp_path / "runs"), "--card", str(card)])
    assert code == 2 and "nests deeper than 64 levels" in error
    config = tmp_path / "octreport.toml"
    config.write_text("[run]\nepochs = " + "[" * 3000 + "]" * 3000 + "\n")
    code, error = one_error(["--config", str(config), "run", "--data", str(data)])
    assert code == 2 and "nests deeper than 64 levels" in error
    assert not (tmp_path / "runs").exists()


def test_compare_names_a_run_of_the_wrong_shape(audited_run, tmp_path):
    import json

    metrics = json.loads((audited_run[0] / "metrics.json").read_text())
    metrics["layer_health"] = 7
    run = _archive_with(audited_run, tmp_path, "metrics.json", json.dumps(metrics))
    code, error = one_error(["compare", str(audited_run[0]), str(run)])
    assert code == 2 and "not shaped as octreport writes it" in error


def test_a_huge_patients_file_is_refused_unread(data, tmp_path):
    patients = tmp_path / "patients.csv"
    with patients.open("wb") as handle:  # sparse: 65 MiB that take no disk
        handle.write(b"file,patient\n")
        handle.truncate(65 * 2**20)
    code, error = one_error(["audit-data", "--data", str(data), "--patients", str(patients), "--out", str(tmp_path / "a")])
    assert code == 3 and "larger than 67,108,864 bytes" in error


# ---------- 3. CSV cells are never formulas ----------


@pytest.mark.parametrize("cell, written", [
    ('=HYPERLINK("http:x","y")', '\'=HYPERLINK("http:x","y")'), ("@SUM(1+1)", "'@SUM(1+1)"), ("+1+1", "'+1+1"),
    ("-1+1", "'-1+1"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("'quoted", "''quoted"),
    ("-0.5", "-0.5"), ("1e-05", "1e-05"), ("CNV", "CNV"), ("test/CNV/a.jpeg", "test/CNV/a.jpeg"),
])
def test_csv_cells_that_a_spreadsheet_would_run_are_text(cell, written):
    from octreport.csvcells import csv_cell, from_csv_cell

    assert csv_cell(cell) == written
    assert from_csv_cell(written) == cell


def test_predictions_csv_of_hostile_class_and_file_names_reads_as_text_and_back():
    import csv
    import io

    import numpy as np

    from octreport.evaluation.predictions_file import RunPredictions, parse_predictions_csv, predictions_csv

    names = ('=HYPERLINK("http:x","y")', "@SUM(1+1)", "+1+1", "NORMAL")
    record = RunPredictions(("=cmd|' /C calc'!A0.jpeg", "test/NORMAL/a.jpeg"), names, np.array([0, 3]),
                            np.array([[0.7, 0.1, 0.1, 0.1], [0.0, 0.0, 0.0, 1.0]]))
    text = predictions_csv(record)
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]
    back = parse_predictions_csv(text)
    assert back.paths == record.paths and back.class_names == names and list(back.labels) == [0, 3]


# ---------- 4. the near-duplicate audit is bounded ----------


def test_300_copies_of_one_scan_are_one_cluster_with_exact_counts():
    import numpy as np

    from octreport.data.near_clusters import cluster_near_duplicates

    hashes = np.full(300, 0x0F0F_F0F0_1234_5678, dtype=np.uint64)
    hashes[::3] ^= np.uint64(0b11)  # a third re-encoded 2 bits away
    splits = ["train"] * 200 + ["test"] * 100
    found = cluster_near_duplicates(hashes, splits, [f"P{k}" for k in range(300)], [str(k) for k in range(300)], 4)
    assert (found.counts.pairs, found.counts.across_splits, found.clusters) == (44_850, 20_000, 1)
    (cluster,) = found.listed
    assert cluster.size == 300 and len(cluster.listed) == 10 and cluster.splits == (("train", 200), ("test", 100))
    i, j, distance = cluster.example
    assert splits[i] != splits[j] and distance in (0, 2)


def test_cluster_counts_equal_counting_every_pair():
    import itertools
    import random

    import numpy as np

    from octreport.data.image_facts import hamming
    from octreport.data.near_clusters import cluster_near_duplicates

    rng = random.Random(0)
    for _ in range(20):
        n = rng.randint(2, 40)
        bases = [rng.getrandbits(64) for _ in range(3)]
        hashes = np.array([rng.choice(bases) ^ (1 << rng.randrange(64) if rng.random() < 0.5 else 0) for _ in range(n)],
                          dtype=np.uint64)
        splits, patients = [rng.choice("ab") for _ in range(n)], [rng.choice([None, "p", "q"]) for _ in range(n)]
        sha = [rng.choice(["x", str(k)]) for k in range(n)]
        found = cluster_near_duplicates(hashes, splits, patients, sha, 4)
        near = across = same = 0
        for i, j in itertools.combinations(range(n), 2):
            if hamming(hashes[i:i + 1], hashes[j:j + 1])[0] > 4 or sha[i] == sha[j]:
                continue
            if patients[i] is not None and patients[i] == patients[j]:
                same += 1
            else:
                near, across = near + 1, across + (splits[i] != splits[j])
        assert (found.counts.pairs, found.counts.across_splits, found.counts.same_patient) == (near, across, same)


def test_a_gate_prints_a_count_as_an_integer():
    from octreport.audit.gates import GateConfig, data_gates

    (gate,) = data_gates({"data_audit": {"duplicates_across_splits": 21740, "leaked_patients": 0}},
                         GateConfig(max_duplicates=0))
    assert not gate.passed and "21,740" in gate.message and "e+" not in gate.message


# ---------- 5. messages name the option given ----------


def test_sentinels_errors_name_sentinels(data, tmp_path):
    listing = tmp_path / "sentinels.txt"
    listing.write_text("/etc/passwd\n")
    for sentinels, expected in ((Path("/etc/passwd"), "line 1: no image"), (listing, "line 1: '/etc/passwd' is not a JPEG")):
        code, error = one_error(["run", "--data", str(data), "--out", str(tmp_path / "runs"), "--sentinels", str(sentinels)])
        assert code == 2 and error.startswith(f"Error: --sentinels '{sentinels}'") and expected in error
        assert "--image" not in error


# ---------- 6. --quiet is quiet ----------


def test_quiet_train_run_and_report_write_nothing_on_stderr(tmp_path):
    """In a process of its own (the C++ runtime writes to file descriptor 2, which only a real
    process shows): train on tiny data, then run and report on the model it saved, each with --quiet."""
    import subprocess
    import sys

    data = write_learnable_kermany(tmp_path / "data")
    tiny = ["--epochs", "15", "--patience", "15", "--no-augment", "--learning-rate", "0.005", "--image-size", "32", "--quiet"]
    report = ["--images-per-class", "1", "--maps-per-layer", "2", "--filters-per-layer", "2", "--errors-per-cell", "0",
              "--format", "html", "--filter-views", "kernels", "--no-heatmap-checks", "--bootstrap-resamples", "100"]
    commands = [["train", "--data", str(data), "--out", str(tmp_path / "m.keras"), *tiny],
                ["run", "--data", str(data), "--model", str(tmp_path / "m.keras"), "--out", str(tmp_path / "runs"),
                 "--quiet", *report],
                ["report", "--model", str(tmp_path / "m.keras"), "--data", str(data), "--out", str(tmp_path / "runs"),
                 "--quiet", *report]]
    script = ("import sys; from octreport.cli import main\n"
              f"for args in {commands!r}:\n"
              "    try:\n        main(args)\n    except SystemExit as exit:\n"
              "        if exit.code:\n            raise\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert (tmp_path / "m.keras").is_file() and len(list((tmp_path / "runs").glob("2*"))) == 2


# ---------- 8. verify --strict ----------


def test_verify_names_what_it_did_not_check_first_and_strict_exits_7(data, audited_run, tmp_path):
    import shutil

    gone = Path(shutil.copytree(data, tmp_path / "gone"))
    made = CliRunner().invoke(main, ["run", "--data", str(gone), "--out", str(tmp_path / "runs"), "--quiet",
                                     "--epochs", "1", "--image-size", "16", "--images-per-class", "1", "--maps-per-layer",
                                     "2", "--filters-per-layer", "2", "--errors-per-cell", "0", "--format", "html",
                                     "--filter-views", "kernels", "--no-heatmap-checks", "--bootstrap-resamples", "100"])
    assert made.exit_code in (0, 5), made.output  # 5: the one-epoch model may sit at chance
    shutil.rmtree(gone)
    args = ["verify", "latest", "--out", str(tmp_path / "runs")]
    result = CliRunner().invoke(main, args)
    first = next(line for line in result.output.splitlines() if not line.startswith("checking "))
    assert result.exit_code == 0, result.output
    assert "NOT CHECKED:" in first and "data fingerprint" in first
    strict = CliRunner().invoke(main, [*args, "--strict"])
    assert strict.exit_code == 7 and "--strict:" in strict.output and "could not be made" in strict.output
    whole = CliRunner().invoke(main, ["verify", str(audited_run[0]), "--strict"])
    assert whole.exit_code == 0, whole.output
    assert next(line for line in whole.output.splitlines() if line.startswith("verify ")).endswith(": every check made")


# ---------- 7. the bundled data passes the tool's own audit ----------


def test_the_bundled_sample_data_has_no_data_audit_finding(tmp_path):
    import json

    from octreport.resources import sample_data_dir

    result = CliRunner().invoke(main, ["audit-data", "--data", str(sample_data_dir()), "--out", str(tmp_path), "--quiet",
                                       "--format", "html"])
    assert result.exit_code == 0, result.output
    audit = json.loads((tmp_path / "latest" / "metrics.json").read_text())["data_audit"]
    assert audit["findings"] == [] and audit["near_duplicates"] == 0 and audit["duplicates_across_splits"] == 0


def test_sample_scans_of_different_patients_are_drawn_apart():
    import itertools

    from octreport.data.image_facts import hamming, phash_bits
    from octreport.data.synthetic import DISTINCT_BITS, distinct_samples, plan_sample_dataset

    plan = plan_sample_dataset(5, train_per_class=6, test_per_class=3)
    hashes = phash_bits(np.stack(distinct_samples(plan, 64, 128)).astype(float))
    for (a, ha), (b, hb) in itertools.combinations(zip(plan, hashes), 2):
        if (a.class_name, a.patient_id) != (b.class_name, b.patient_id):
            assert hamming(ha, hb) >= DISTINCT_BITS
