"""``--dicom-frames all``: every frame of a DICOM volume as its own image, named ``FILE#FRAME``;
a volume's frames share its read, its patient and its split; refused for training."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner
from dicom_files import gradient, write_dicom
from test_dicom import QUICK, assert_no_identifying_tag

from octreport.cli import main
from octreport.data import files
from octreport.data.dataset import prepare_data
from octreport.data.dicom import DicomProblem, frame_pixels
from octreport.data.dicom_frames import expand_frames, with_frames
from octreport.data.files import FileReads
from octreport.data.layout import ImageItem, item_name

FRAMES = 5


def _volume(path, frames=FRAMES, patient_id="ID-7Q3X9K", shift=0):
    """A volume whose frame k is a gradient divided by k + 1 (each frame differs)."""
    return write_dicom(path, np.stack([(gradient() + shift) // (k + 1) for k in range(frames)]), frames=True,
                       patient_id=patient_id)


def test_each_frame_of_a_volume_decodes_to_its_own_b_scan(tmp_path):
    raw = _volume(tmp_path / "volume.dcm").read_bytes()
    for k in range(FRAMES):
        np.testing.assert_array_equal(frame_pixels(raw, 1, k)[..., 0], gradient() // (k + 1))
    np.testing.assert_array_equal(frame_pixels(raw, 1, -1), frame_pixels(raw, 1))  # negative: the central one
    with pytest.raises(DicomProblem, match="no frame 5 \\(the file has 5\\)"):
        frame_pixels(raw, 1, FRAMES)


def test_volumes_become_one_item_per_frame_in_place(tmp_path):
    volume = _volume(tmp_path / "DME" / "volume.dcm")
    single = write_dicom(tmp_path / "DME" / "single.dcm", gradient())
    items = expand_frames([ImageItem(single, 1), ImageItem(volume, 1)])
    assert [(i.path.name, i.frame, i.label) for i in items] == (
        [("single.dcm", None, 1)] + [("volume.dcm", k, 1) for k in range(FRAMES)])
    assert [item_name(i, tmp_path) for i in items][:3] == ["DME/single.dcm", "DME/volume.dcm#0", "DME/volume.dcm#1"]


def test_the_frames_of_a_volume_share_one_read(tmp_path, monkeypatch):
    volume = _volume(tmp_path / "volume.dcm")
    reads = []
    original = files.read_image_bytes
    monkeypatch.setattr(files, "read_image_bytes", lambda path: reads.append(path) or original(path))
    items = expand_frames([ImageItem(volume, 0)])
    reader = FileReads([item.path for item in items])
    assert all(reader.read(n) == volume.read_bytes() for n in range(FRAMES))
    assert reads == [volume]


def test_frames_follow_their_volume_into_one_split(tmp_path):
    root = tmp_path / "data"
    for c, name in enumerate(("CNV", "DME", "DRUSEN", "NORMAL")):
        for p in range(5):
            _volume(root / name / f"export-{c}{p}.dcm", frames=3, patient_id=f"{name}-{p}", shift=c)
    cut = prepare_data(root, training=False, split="test")
    framed = with_frames(cut, "all")
    assert len(framed.test) == 3 * len(cut.test) and 0 < len(cut.test) < 20
    assert {i.path for i in framed.test} == {i.path for i in cut.test}  # every frame of a test volume, no other
    assert framed.train == cut.train and with_frames(cut, "center") is cut


def _clinic_volumes(root):
    _volume(root / "DME" / "volume.dcm")
    _volume(root / "NORMAL" / "other.dcm", frames=3, patient_id="ID-2", shift=40)
    write_dicom(root / "NORMAL" / "single.dcm", gradient(), patient_id="ID-2")
    return root


def test_a_report_over_every_frame_names_each_frame(conv_model, tmp_path):
    data = _clinic_volumes(tmp_path / "clinic")
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, ["report", "--model", str(conv_model), "--data", str(data), "--out", str(out),
                                       "--class-names", "CNV,DME,DRUSEN,NORMAL", "--dicom-frames", "all", *QUICK,
                                       "--images-per-class", "9"])  # every image shown: frames of one volume side by side
    assert result.exit_code in (0, 5), result.output
    run = (out / "latest").resolve()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["classification"]["n_images"] == FRAMES + 3 + 1
    with open(run / "predictions.csv", newline="") as f:
        names = sorted(row["path"] for row in csv.DictReader(f))
    assert names == sorted([f"DME/volume.dcm#{k}" for k in range(FRAMES)] + [f"NORMAL/other.dcm#{k}" for k in range(3)]
                           + ["NORMAL/single.dcm"])
    assert metrics["data_audit"]["patients_per_split"] == {"test": 2}  # frames are their file's patient
    assert metrics["data_shift"]["evaluated_profile"]["file_types"] == {"dicom": FRAMES + 4}
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["config"]["report"]["dicom_frames"] == "all"
    assert_no_identifying_tag(run, result.output)
    shown = [image["path"] for image in metrics["shown_images"]]
    assert len(shown) == FRAMES + 3 + 1 and all("#" in path or path.endswith("single.dcm") for path in shown)
    html = (run / "report.html").read_text()
    assert all(f"B-scan volume.dcm#{k} as the model sees it" in html for k in range(FRAMES))
    verify = CliRunner().invoke(main, ["verify", str(run), "--full"])  # frames re-run as the frames they were
    assert verify.exit_code == 0, verify.output


def test_training_on_every_frame_is_refused_before_a_run_folder(tmp_path):
    data = _clinic_volumes(tmp_path / "clinic")
    result = CliRunner().invoke(main, ["run", "--data", str(data), "--out", str(tmp_path / "runs"),
                                       "--dicom-frames", "all"])
    assert result.exit_code == 2 and result.output.startswith("Error: --dicom-frames all is for evaluating"), result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
