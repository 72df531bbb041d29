"""Evaluate-only data (issue 13): a model that is not trained in the run is evaluated on the whole
folder of class folders, or on a Kermany layout's ``test/`` alone; ``--split`` says which, and the
report and metrics.json say which images were evaluated and why."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from conftest import write_class_folders, write_kermany
from octreport.audit.verify_data import current_fingerprint
from octreport.cli import main
from octreport.data.dataset import prepare_data
from octreport.errors import ConfigError, DataError

QUICK_REPORT = ["--format", "html", "--images-per-class", "1", "--maps-per-layer", "2", "--filters-per-layer", "2",
                "--filter-views", "kernels", "--errors-per-cell", "0", "--no-heatmap-checks", "--bootstrap-resamples", "200"]


def test_class_folders_are_evaluated_in_full_when_nothing_is_trained(tmp_path):
    root = write_class_folders(tmp_path / "external", patients=8, per_patient=1)  # 32 images
    data = prepare_data(root, training=False)
    assert len(data.test) == 32 and data.train == data.val == () and data.evaluated_split == "all"
    assert "every image evaluated" in data.split_note
    cut = prepare_data(root, training=False, split="test")
    trained = prepare_data(root)  # what a training run would hold out
    assert cut.test == trained.test and 0 < len(cut.test) < 32 and cut.evaluated_split == "test"


def test_a_kermany_folder_needs_only_test_and_ignores_the_rest(tmp_path):
    root = write_kermany(tmp_path / "only-test", splits=("test",))
    with pytest.raises(DataError, match="no train/"):
        prepare_data(root)  # training still needs train/
    data = prepare_data(root, training=False)
    assert len(data.test) == 32 and data.evaluated_split == "test" and data.train == ()
    # A train/ that training would refuse (a class missing) does not stop the evaluation of test/ ...
    write_class_folders(root / "train", classes=("CNV", "DME"))
    narrowed = prepare_data(root, training=False)
    assert narrowed.test == data.test and narrowed.train == () and "covers test/ alone" in narrowed.split_note
    # ... but --split all evaluates it, so it must be whole.
    with pytest.raises(DataError, match="that train/ lacks"):
        prepare_data(root, training=False, split="all")


def test_split_all_of_a_kermany_folder_evaluates_every_split(tmp_path):
    root = write_kermany(tmp_path / "data", splits=("train", "val", "test"))
    tested = prepare_data(root, training=False)  # test/ evaluated; train/ and val/ kept for the data audit
    assert len(tested.test) == 32 and (len(tested.train), len(tested.val)) == (32, 32) and "audited" in tested.split_note
    data = prepare_data(root, training=False, split="all")
    assert len(data.test) == 96 and {p.path.parts[-3] for p in data.test} == {"train", "val", "test"}
    with pytest.raises(ConfigError, match="--split all"):
        prepare_data(root, split="all")  # training on images it then evaluates
    shutil.rmtree(root / "test")
    with pytest.raises(DataError, match="--split all"):
        prepare_data(root, training=False)


@pytest.mark.parametrize("split, images, why", [("auto", 32, "every image evaluated"), ("test", None, "20% of the patients")])
def test_report_says_which_images_were_evaluated_and_verify_finds_them_again(conv_model, tmp_path, split, images, why):
    data = write_class_folders(tmp_path / "external", patients=8, per_patient=1)
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, ["report", "--model", str(conv_model), "--data", str(data), "--out", str(out),
                                       "--split", split, *QUICK_REPORT])
    assert result.exit_code in (0, 5), result.output
    run = (out / "latest").resolve()
    metrics = json.loads((run / "metrics.json").read_text())
    evaluated = metrics["data"]["evaluated"]
    expected = images or len(prepare_data(data).test)
    assert evaluated["images"] == expected == metrics["classification"]["n_images"]
    assert evaluated["split"] == ("all" if split == "auto" else split) and why in evaluated["why"]
    html = (run / "report.html").read_text()
    assert why in html and f"{expected} evaluated images" in html
    manifest = json.loads((run / "manifest.json").read_text())
    assert current_fingerprint(data, manifest).sha256 == manifest["data"]["sha256"]


def test_split_all_is_refused_for_a_run_that_trains(tmp_path):
    data = write_class_folders(tmp_path / "data")
    result = CliRunner().invoke(main, ["run", "--data", str(data), "--out", str(tmp_path / "runs"), "--split", "all"])
    assert result.exit_code == 2 and "--split all" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_audit_data_takes_a_folder_with_test_alone(tmp_path):
    data = write_kermany(tmp_path / "external", splits=("test",))
    out = tmp_path / "audits"
    result = CliRunner().invoke(main, ["audit-data", "--data", str(data), "--out", str(out), "--format", "html"])
    assert result.exit_code == 0, result.output
    document = json.loads(((out / "latest").resolve() / "metrics.json").read_text())
    assert "audited as one set" in document["data"]["split_note"] and sum(document["data"]["counts"]["test"].values()) == 32
