"""Performance per acquisition group against hand counts, the --groups file, and the data-shift
check end to end: a profile recorded by `octreport train`, read back by `octreport report`, silent
on the training distribution and firing on test images at half the width."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import OCT_CLASSES, write_learnable_kermany
from octreport.cli import main
from octreport.data.groups import NOT_LISTED, read_groups_file
from octreport.errors import DataError
from octreport.evaluation.group_metrics import compute_group_metrics
from octreport.evaluation.intervals import wilson_interval

REPORT = ["--batch-size", "8", "--images-per-class", "1", "--maps-per-layer", "2", "--filters-per-layer", "2",
          "--errors-per-cell", "0", "--format", "html", "--no-temperature-scaling", "--bootstrap-resamples", "200",
          "--no-heatmap-checks", "--filter-views", "kernels"]


def test_group_metrics_match_hand_counts():
    # CNV=0 and DME=1 are urgent. Group A: 3 of 4 right; urgent 1 of 2 found; others 2 of 2 kept out.
    # Group B: 0 of 3 right; urgent 1 of 2 found (DME for CNV still counts); the NORMAL called CNV.
    # Unlisted: one DRUSEN, right; no urgent case.
    labels = [0, 1, 2, 3, 0, 0, 3, 2]
    predicted = [0, 3, 2, 3, 1, 2, 0, 2]
    groups = ["A", "A", "A", "A", "B", "B", "B", NOT_LISTED]
    result = compute_group_metrics(labels, predicted, OCT_CLASSES, groups, "site", level=0.95)
    assert result.referral and [r.group for r in result.rows] == ["A", "B", NOT_LISTED] and result.not_listed == 1
    a, b, unlisted = result.rows
    assert (a.n, a.correct, a.n_urgent, a.n_non_urgent) == (4, 3, 2, 2)
    assert a.accuracy.value == 0.75 and (a.accuracy.low, a.accuracy.high) == pytest.approx(wilson_interval(3, 4))
    assert a.urgent_sensitivity.value == 0.5 and a.urgent_specificity.value == 1.0
    assert (b.n, b.correct, b.urgent_sensitivity.value, b.urgent_specificity.value) == (3, 0, 0.5, 0.0)
    assert (b.accuracy.low, b.accuracy.high) == pytest.approx(wilson_interval(0, 3))
    assert unlisted.n == 1 and unlisted.urgent_sensitivity.value is None and unlisted.urgent_specificity.value == 1.0
    assert result.to_dict()["groups"][0]["accuracy"]["value"] == 0.75
    # The same scans with the classes in another order give the same referral counts.
    order = ("NORMAL", "DRUSEN", "DME", "CNV")
    remap = {0: 3, 1: 2, 2: 1, 3: 0}
    again = compute_group_metrics([remap[x] for x in labels], [remap[x] for x in predicted], order, groups, "site")
    assert [(r.correct, r.urgent_sensitivity.value) for r in again.rows] == [(3, 0.5), (0, 0.5), (1, None)]
    other = compute_group_metrics([0, 1], [0, 0], ("cat", "dog"), ["x", "x"], "site")
    assert not other.referral and other.rows[0].urgent_sensitivity is None and other.rows[0].accuracy.value == 0.5


def test_groups_file_takes_relative_paths_and_unique_names_and_refuses_ambiguous_ones(tmp_path):
    for split in ("train", "test"):
        for name in ("a.jpeg", "b.jpeg"):
            (tmp_path / "data" / split / "CNV").mkdir(parents=True, exist_ok=True)
            (tmp_path / "data" / split / "CNV" / name).write_bytes(b"")
    (tmp_path / "data" / "test" / "CNV" / "c.jpeg").write_bytes(b"")
    csv = tmp_path / "groups.csv"
    csv.write_text("file,group\ntest/CNV/a.jpeg,site A\nc.jpeg,site B\n")
    table = read_groups_file(csv, tmp_path / "data")
    assert table.group("test/CNV/a.jpeg") == "site A" and table.group("test/CNV/c.jpeg") == "site B"
    assert table.group("test/CNV/b.jpeg") == NOT_LISTED and table.source == "groups file groups.csv"
    csv.write_text("file,group\nb.jpeg,site A\n")
    with pytest.raises(DataError, match="'b.jpeg', which is the name of 2 images"):
        read_groups_file(csv, tmp_path / "data")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained by `octreport train` on 32x32 scans, and its data folder."""
    base = tmp_path_factory.mktemp("shift")
    data = write_learnable_kermany(base / "data", patients=4, per_patient=1)
    model = base / "model.keras"
    result = CliRunner().invoke(main, ["train", "--data", str(data), "--out", str(model), "--epochs", "1",
                                       "--image-size", "16", "--batch-size", "8", "--no-augment"])
    assert result.exit_code == 0, result.output
    return model, data


@pytest.mark.parametrize("content, expected", [
    (None, "'--groups': File"),  # no such file: click's usage error, exit 2
    ("a.jpeg,site\n", "no 'file' and 'group' columns"),
    ("file,group\ntest/CNV/CNV-1050-1.jpeg,\n", "an empty file or group"),
    ("file,group\nCNV-1050-1.jpeg,A\nCNV-1050-1.jpeg,B\n", "given two groups"),
    ("file,group\nCNV-1050-1.jpeg,A\nnot-here.jpeg,B\n", "not images of the data folder"),
])
def test_a_bad_groups_file_is_refused_before_the_run_folder(trained, tmp_path, content, expected):
    model, data = trained
    out, groups = tmp_path / "runs", tmp_path / "groups.csv"
    if content is not None:
        groups.write_text(content)
    result = CliRunner().invoke(main, ["report", "--model", str(model), "--data", str(data), "--out", str(out),
                                       "--groups", str(groups), *REPORT])
    assert result.exit_code == (2 if content is None else 3), result.output
    assert expected in result.output and not out.exists(), result.output


def test_the_training_profile_is_compared_silent_on_its_own_data_and_warns_at_half_the_width(trained, tmp_path):
    model, data = trained
    recorded = json.loads(model.with_name("model.octreport.json").read_text())["training_profile"]
    assert recorded["sizes"] == {"32x32": recorded["n_images"]} and recorded["channels"] == {"1": recorded["n_images"]}

    out = tmp_path / "runs"
    result = CliRunner().invoke(main, ["report", "--model", str(model), "--data", str(data), "--out", str(out), *REPORT])
    assert result.exit_code in (0, 5), result.output
    run = (out / "latest").resolve()
    shift = json.loads((run / "metrics.json").read_text())["data_shift"]
    assert shift["training_profile"] == recorded and shift["findings"] == [] and not shift["material"]
    html = (run / "report.html").read_text()
    assert 'id="data-shift"' in html and "no material difference" in html and "Data shift:</strong>" not in html

    half = tmp_path / "half"
    shutil.copytree(data, half)
    tests = sorted((half / "test").rglob("*.jpeg"))
    for path in tests:
        Image.open(path).resize((16, 32)).save(path)
    groups = tmp_path / "groups.csv"
    groups.write_text("file,group\n" + "".join(f"{p.relative_to(half).as_posix()},site {'AB'[n % 2]}\n"
                                               for n, p in enumerate(tests[:-1])))
    result = CliRunner().invoke(main, ["report", "--model", str(model), "--data", str(half), "--out", str(out),
                                       "--groups", str(groups), *REPORT])
    assert result.exit_code in (0, 5), result.output
    run = (out / "latest").resolve()
    document = json.loads((run / "metrics.json").read_text())
    texts = [f["text"] for f in document["data_shift"]["findings"]]
    assert texts[0] == "100% of these scans are 16x32 px (training: none); the model was trained on 32x32 px scans (100%)."
    assert len(texts) == 2 and "(aspect 'stretch')" in texts[1]  # what that width does to this model
    by_size, by_site = document["group_metrics"]
    assert by_size["grouping"] == "image size" and [g["group"] for g in by_size["groups"]] == ["16x32"]
    assert by_size["groups"][0]["n"] == len(tests) and by_size["referral"]
    assert [(g["group"], g["n"]) for g in by_site["groups"]] == [("site A", 8), ("site B", 7), (NOT_LISTED, 1)]
    assert sum(g["correct"] for g in by_site["groups"]) == round(document["classification"]["accuracy"] * len(tests))
    assert any("not listed in the groups file groups.csv" in w for w in document["data"]["warnings"])
    html = (run / "report.html").read_text()
    assert "Data shift:</strong> 100% of these scans are 16x32 px" in html
    assert "Performance by group (groups file groups.csv)" in html and "(not listed)" in html
