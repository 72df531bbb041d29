"""The data audit in a run: metrics.json, the report's Data section, the gates and --patients."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import OCT_CLASSES
from octreport.cli import main
from test_data_audit import _scan, _write

REPORT = ["--batch-size", "8", "--images-per-class", "1", "--maps-per-layer", "2", "--filters-per-layer", "2",
          "--errors-per-cell", "0", "--format", "html", "--no-temperature-scaling", "--bootstrap-resamples", "200"]


@pytest.fixture(scope="module")
def leaky(tmp_path_factory) -> Path:
    """Kermany layout: patient 1000 (CNV) in train and test, and a train file copied into test."""
    root = tmp_path_factory.mktemp("leaky") / "oct"
    seed = 0
    for split in ("train", "test"):
        for c, name in enumerate(OCT_CLASSES):
            for p in range(4 if split == "train" else 2):
                seed += 1
                patient = 1000 + 10 * c + p + (5 if split == "test" else 0)  # 1000-1003 train, 1005-1006 test
                _write(root / split / name / f"{name}-{patient}-1.jpeg", _scan(seed, (48, 64)))
    _write(root / "test/CNV/CNV-1000-2.jpeg", _scan(99, (48, 64)))  # patient 1000 is also in train
    shutil.copyfile(root / "train/DME/DME-1010-1.jpeg", root / "test/DME/DME-1099-1.jpeg")
    return root


def test_leaked_patient_and_copy_are_in_metrics_report_and_gates(leaky, conv_model, tmp_path):
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, ["report", "--model", str(conv_model), "--data", str(leaky), "--out", str(out), *REPORT,
                                       "--max-leaked-patients", "0", "--max-duplicates", "0"])
    assert result.exit_code == 5, result.output
    run = (out / "latest").resolve()
    audit = json.loads((run / "metrics.json").read_text())["data_audit"]
    assert audit["leaked_patients"] == 1 and audit["shared_patients"][0]["patient"] == "1000"
    assert audit["shared_patients"][0]["images"] in ({"train": 1, "test": 1}, {"val": 1, "test": 1})
    assert audit["exact_duplicates_across_splits"] == 1 and audit["duplicates_across_splits"] == 1
    assert [f["path"] for f in audit["duplicate_groups"][0]["files"]] == ["test/DME/DME-1099-1.jpeg", "train/DME/DME-1010-1.jpeg"]
    assert audit["near_duplicate_threshold_bits"] == 4 and len(audit["shortcuts"]) == 5
    gates = {g["name"]: g for g in json.loads((run / "metrics.json").read_text())["gates"]["results"]}
    assert not gates["leaked patients"]["passed"] and gates["leaked patients"]["value"] == 1
    assert not gates["duplicates"]["passed"]
    html = (run / "report.html").read_text()
    assert 'id="data"' in html and "patient 1000" in html and "DME-1099-1.jpeg" in html
    assert html.index('id="data"') < html.index('id="metrics"')  # near the top
    assert "Data:</strong> 1 patient(s) have images in more than one split" in html
    # A model without a sidecar has no training profile: the evaluated one, the per-size table and a note.
    shift = json.loads((run / "metrics.json").read_text())["data_shift"]
    assert shift["training_profile"] is None and shift["evaluated_profile"]["sizes"] == {"64x48": 10}
    assert "No training profile was available" in html and "Performance by image size" in html


def test_patients_file_replaces_the_names_and_a_malformed_one_is_refused_before_the_run(leaky, conv_model, tmp_path):
    out = tmp_path / "runs"
    bad = tmp_path / "bad.csv"
    bad.write_text("image;who\nx;y\n")
    result = CliRunner().invoke(main, ["report", "--model", str(conv_model), "--data", str(leaky), "--out", str(out), *REPORT,
                                       "--patients", str(bad)])
    assert result.exit_code == 3 and "patients file" in result.output and not out.exists()
    csv = tmp_path / "patients.csv"
    csv.write_text("file,patient\n" + "".join(f"{p.relative_to(leaky).as_posix()},P{n}\n"
                                               for n, p in enumerate(sorted(leaky.rglob("*.jpeg")))))
    result = CliRunner().invoke(main, ["report", "--model", str(conv_model), "--data", str(leaky), "--out", str(out), *REPORT,
                                       "--patients", str(csv), "--max-leaked-patients", "0"])
    assert result.exit_code in (0, 5), result.output  # 5: the untrained model may sit at chance
    document = json.loads(((out / "latest").resolve() / "metrics.json").read_text())
    audit = document["data_audit"]
    assert {g["name"]: g["passed"] for g in document["gates"]["results"]}["leaked patients"] is True
    assert audit["leaked_patients"] == 0 and audit["patient_source"] == "patients file patients.csv"


def test_audit_data_alone_writes_a_short_report_and_gates_with_exit_5(leaky, tmp_path):
    out = tmp_path / "audits"
    result = CliRunner().invoke(main, ["audit-data", "--data", str(leaky), "--out", str(out), "--format", "html"])
    assert result.exit_code == 0, result.output
    run = (out / "latest").resolve()
    assert sorted(p.name for p in run.iterdir() if p.suffix != ".log") == ["manifest.json", "metrics.json", "report.html"]
    document = json.loads((run / "metrics.json").read_text())
    assert document["kind"] == "data-audit" and document["data_audit"]["leaked_patients"] == 1
    html = (run / "report.html").read_text()
    assert "patient 1000" in html and "Shortcuts" in html and "no model" in html
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["model"] is None and manifest["data"]["n_files"] == 26
    result = CliRunner().invoke(main, ["audit-data", "--data", str(leaky), "--out", str(out), "--format", "pdf",
                                       "--max-duplicates", "0", "--max-leaked-patients", "5"])
    assert result.exit_code == 5 and "duplicates across splits 1 exceeds the maximum 0" in result.output
    from pypdf import PdfReader

    text = " ".join(page.extract_text() for page in PdfReader((out / "latest" / "report.pdf").resolve()).pages)
    text = " ".join(text.split())
    assert "patient 1000" in text and "label conflict" in text and "FAILED" in text


@pytest.mark.parametrize("make", ["missing", "file", "empty", "one-class"])
def test_audit_data_on_bad_folders_is_refused_and_leaves_nothing(make, tmp_path):
    target = tmp_path / "data"
    if make == "file":
        target.write_text("not a folder")
    elif make == "empty":
        target.mkdir()
    elif make == "one-class":
        _write(target / "CNV" / "CNV-1-1.jpeg", _scan(1))
    out = tmp_path / "audits"
    result = CliRunner().invoke(main, ["audit-data", "--data", str(target), "--out", str(out)])
    assert result.exit_code == 3 and result.output.count("Error:") == 1 and "Expected either" in result.output
    assert not out.exists()


def test_data_section_shows_a_label_conflict_and_a_near_duplicate_side_by_side(tmp_path):
    from octreport.data.data_audit import audit_data
    from octreport.data.image_facts import collect_image_facts
    from octreport.report.assets import FigureStore
    from octreport.report.data_section import data_section
    from test_data_audit import _audited

    wide = _scan(11, (120, 170))
    paths = [_write(tmp_path / "train/CNV/CNV-1-1.jpeg", wide[:, :160]), _write(tmp_path / "test/NORMAL/NORMAL-2-1.jpeg", _scan(2, (120, 160))),
             _write(tmp_path / "test/CNV/CNV-3-1.jpeg", wide[:, 3:163], quality=70)]
    conflict = tmp_path / "train/CNV/CNV-4-1.jpeg"
    conflict.write_bytes(paths[1].read_bytes())
    images = _audited(tmp_path, [*paths, conflict])
    audit = audit_data(images, ("CNV", "NORMAL"), collect_image_facts([tmp_path / i.path for i in images]))
    section = data_section(audit, tmp_path, ("CNV", "NORMAL"), FigureStore("embedded"))
    captions = [figure.caption for figure in section.pairs]
    assert len(captions) == 2 and "identical files under two classes" in captions[0]
    assert "CNV-3-1.jpeg" in captions[1] and "hash bits differ" in captions[1]
    assert section.pairs[0].src.startswith("data:image/jpeg;base64,")
    assert [row.label for row in section.duplicates] == ["label conflict"]
