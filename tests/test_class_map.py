"""Evaluation data holding some of a model's classes, under the clinic's own folder names
(``--class-names``, ``--class-map``): matching, refusals before any run folder, and what the
report and metrics.json then claim."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from click.testing import CliRunner
from conftest import write_class_folders, write_kermany

from octreport.cli import main
from octreport.data.class_map import align_to_model, match_classes, parse_class_map, parse_class_names
from octreport.data.dataset import prepare_data
from octreport.errors import ConfigError, DataError

MODEL_CLASSES = ("CNV", "DME", "DRUSEN", "NORMAL")
QUICK = ["--format", "html", "--images-per-class", "1", "--maps-per-layer", "2", "--filters-per-layer", "2",
         "--filter-views", "kernels", "--errors-per-cell", "0", "--no-heatmap-checks", "--bootstrap-resamples", "100"]


def test_a_map_is_read_from_text_or_from_a_file(tmp_path):
    assert parse_class_map("wet AMD=CNV, healthy = NORMAL") == {"wet AMD": "CNV", "healthy": "NORMAL"}
    file = tmp_path / "map.txt"
    file.write_text("# the clinic's folders\nwet AMD=CNV\nhealthy=NORMAL  # graded 2024\n")
    assert parse_class_map(str(file)) == {"wet AMD": "CNV", "healthy": "NORMAL"}


@pytest.mark.parametrize("text, message", [
    ("healthy=NORMAL,Healthy =DME", "names folder 'Healthy' twice"),
    ("healthy", "neither a file nor FOLDER=CLASS"),
    ("healthy=,wet AMD=CNV", "is not FOLDER=CLASS"),
])
def test_a_malformed_map_is_refused(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_class_map(text)


def test_class_names_are_given_each_once():
    assert parse_class_names(" CNV,DME ,DRUSEN,NORMAL") == MODEL_CLASSES
    with pytest.raises(ConfigError, match="twice"):
        parse_class_names("CNV,cnv,DME")


def test_folders_match_model_classes_directly_or_through_the_map():
    match = match_classes(("diabetic macular edema", "Normal"), MODEL_CLASSES, {"Diabetic Macular Edema ": "dme"})
    assert dict(match.folder_of) == {"DME": "diabetic macular edema", "NORMAL": "Normal"}
    assert match.absent == ("CNV", "DRUSEN") and match.present == ("DME", "NORMAL")


@pytest.mark.parametrize("folders, class_map, error, message", [
    (("DME", "healthy"), {"healthy": "GA"}, ConfigError, "'GA', which is not a class of the model; its classes are: CNV, DME"),
    (("edema", "healthy"), {}, DataError, r"'edema', 'healthy' match none of the model's classes \(CNV, DME, DRUSEN, NORMAL\)"),
    (("DME", "edema"), {"edema": "DME"}, DataError, "'DME' and 'edema' would both be class DME"),
])
def test_folders_that_cannot_be_matched_are_refused(folders, class_map, error, message):
    with pytest.raises(error, match=message):
        match_classes(folders, MODEL_CLASSES, class_map)


def test_relabelled_data_carries_the_models_classes_and_output_indices(tmp_path):
    root = write_class_folders(tmp_path / "clinic", ("healthy", "DME"), patients=2, per_patient=1)
    (root / "CNV").mkdir()  # a class the clinic did not grade: an empty folder
    data = prepare_data(root, training=False)
    aligned = align_to_model(data, MODEL_CLASSES, {"healthy": "NORMAL"})
    assert aligned.class_names == MODEL_CLASSES
    assert aligned.class_folders == ("CNV", "DME", None, "healthy")
    assert aligned.classes_present() == ("DME", "NORMAL")
    assert {item.path.parent.name: item.label for item in aligned.test} == {"DME": 1, "healthy": 3}
    with pytest.raises(DataError, match="holds no JPEG or PNG"):
        prepare_data(root)  # training still needs every class


def test_the_other_clinics_folders_are_evaluated_with_what_the_data_allows(conv_model, tmp_path):
    data = write_class_folders(tmp_path / "clinic", ("diabetic macular edema", "healthy"), patients=4, per_patient=1)
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, [
        "report", "--model", str(conv_model), "--data", str(data), "--out", str(out), *QUICK,
        "--class-names", "CNV,DME,DRUSEN,NORMAL", "--class-map", "diabetic macular edema=DME,healthy=NORMAL",
        "--min-sensitivity", "CNV=0.5",
    ])
    assert result.exit_code == 5, result.output  # a gate on a class the data cannot measure fails, as a gate
    assert "recall of CNV is undefined: CNV is not in this data" in result.output
    run = (out / "latest").resolve()
    metrics = json.loads((run / "metrics.json").read_text())
    classification = metrics["classification"]
    assert classification["class_names"] == list(MODEL_CLASSES) and classification["n_images"] == 8
    assert classification["classes_not_in_data"] == ["CNV", "DRUSEN"]
    rows = {row["name"]: row for row in classification["per_class"]}
    for absent in ("CNV", "DRUSEN"):
        assert rows[absent]["support"] == 0
        assert rows[absent]["recall"] is None and rows[absent]["precision"] is None and rows[absent]["f1"] is None
    assert rows["DME"]["support"] == rows["NORMAL"]["support"] == 4 and rows["DME"]["recall"] is not None
    assert metrics["data"]["class_folders"] == {"CNV": None, "DME": "diabetic macular edema", "DRUSEN": None,
                                               "NORMAL": "healthy"}
    referral = metrics["referral"]  # urgent (DME) and non-urgent (NORMAL) both present: both defined
    assert referral["n_urgent"] == referral["n_non_urgent"] == 4
    assert referral["urgent_sensitivity"] is not None and referral["urgent_specificity"] is not None
    html = (run / "report.html").read_text()
    assert "not in this data: CNV, DRUSEN" in html and "NORMAL from folder &#39;healthy&#39;" in html
    assert html.count(">not in this data</td>") == 8  # precision, sensitivity, F1, ROC AUC of two classes
    text = re.sub(r"data:[^\"']+", "", html)  # the words, not the embedded images
    assert "NaN" not in text and "nan%" not in text
    verify = CliRunner().invoke(main, ["verify", str(run)])
    assert verify.exit_code == 0, verify.output  # the fingerprint reads the folders as they are


@pytest.mark.parametrize("extra, code, message", [
    (["--class-names", "CNV,DME,DRUSEN,NORMAL", "--class-map", "healthy=GA"], 2, "not a class of the model"),
    (["--class-map", "healthy=NORMAL,healthy=DME"], 2, "names folder 'healthy' twice"),
    (["--class-names", "CNV,DME,NORMAL"], 2, "gives 3 classes"),
    ([], 4, "give the model's classes in output order with --class-names"),
    (["--class-names", "CNV,DME,DRUSEN,NORMAL"], 3, "'healthy' match none of the model's classes"),
])
def test_what_cannot_be_matched_is_refused_before_a_run_folder_exists(conv_model, tmp_path, extra, code, message):
    data = write_class_folders(tmp_path / "clinic", ("DME", "healthy"), patients=2, per_patient=1)
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, ["report", "--model", str(conv_model), "--data", str(data), "--out", str(out),
                                       *QUICK, *extra])
    assert result.exit_code == code, result.output
    assert "Error:" in result.output and message in result.output and "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())


def test_a_kermany_test_folder_with_some_classes_is_evaluated(tmp_path):
    root = write_kermany(tmp_path / "data", ("DME", "NORMAL"), splits=("test",), patients=2, per_patient=1)
    shutil.copytree(root / "test" / "DME", root / "test" / "CNV")  # placeholders are no longer needed, but allowed
    data = align_to_model(prepare_data(root, training=False), MODEL_CLASSES, {})
    assert data.classes_present() == ("CNV", "DME", "NORMAL") and len(data.test) == 6


def test_a_run_that_trains_refuses_class_options(tmp_path):
    data = write_class_folders(tmp_path / "data", MODEL_CLASSES, patients=2, per_patient=1)
    result = CliRunner().invoke(main, ["run", "--data", str(data), "--out", str(tmp_path / "runs"), "--epochs", "1",
                                       "--class-map", "healthy=NORMAL"])
    assert result.exit_code == 2 and "for evaluating a model (--model)" in result.output, result.output
