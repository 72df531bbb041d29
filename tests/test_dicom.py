"""DICOM scans: pixels as the device stored them, files that cannot give a B-scan skipped and
named, and no identifying tag in any output of a run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner
from dicom_files import BIRTH_DATE, PATIENT_ID, PATIENT_NAME, gradient, write_dicom
from pydicom.encaps import encapsulate

from octreport.cli import main
from octreport.data.dataset import prepare_data
from octreport.data.dicom import DicomProblem, dicom_facts, frame_pixels, patient_key
from octreport.data.dicom_headers import DicomHeaderReads

QUICK = ["--images-per-class", "1", "--maps-per-layer", "2", "--filters-per-layer", "2", "--filter-views", "kernels",
         "--errors-per-cell", "0", "--no-heatmap-checks", "--bootstrap-resamples", "100"]


def _pixels(path: Path, channels: int = 1) -> np.ndarray:
    return frame_pixels(path.read_bytes(), channels)


def test_single_frame_pixels_come_out_as_stored(tmp_path):
    image = gradient()
    plain = _pixels(write_dicom(tmp_path / "plain.dcm", image))
    assert plain.shape == (32, 40, 1) and plain.dtype == np.uint8
    # 8 bits stored: 0..255 is the full range, so the values are the stored ones.
    np.testing.assert_array_equal(plain[..., 0], image)
    np.testing.assert_array_equal(_pixels(write_dicom(tmp_path / "rle.dcm", image, rle=True)), plain)  # RLE Lossless
    np.testing.assert_array_equal(_pixels(write_dicom(tmp_path / "inverted.dcm", 255 - image, photometric="MONOCHROME1")),
                                  plain)  # MONOCHROME1: white is low
    rgb = np.repeat(image[..., None], 3, axis=2)
    np.testing.assert_array_equal(_pixels(write_dicom(tmp_path / "rgb.dcm", rgb, photometric="RGB")), plain)
    assert _pixels(write_dicom(tmp_path / "three.dcm", image), channels=3).shape == (32, 40, 3)


def test_bit_depth_is_scaled_to_the_full_range(tmp_path):
    twelve_bit = np.array([[0, 4095], [2048, 1024]], dtype=np.uint16)
    pixels = _pixels(write_dicom(tmp_path / "deep.dcm", twelve_bit, bits=12))[..., 0]
    np.testing.assert_array_equal(pixels, np.round(twelve_bit / 4095 * 255).astype(np.uint8))


def test_a_multi_frame_volume_gives_its_central_b_scan(tmp_path):
    volume = np.stack([gradient() // (k + 1) for k in range(5)])
    pixels = _pixels(write_dicom(tmp_path / "volume.dcm", volume, frames=True))[..., 0]
    np.testing.assert_array_equal(pixels, volume[2])


def _unsupported(path: Path) -> Path:
    write_dicom(path, gradient())
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.80"  # JPEG-LS Lossless: no decoder installed
    ds.PixelData = encapsulate([b"\xff\xd8" + bytes(40) + b"\xff\xd9"])
    ds.save_as(path)
    return path


def _zero_frames(path: Path) -> Path:
    write_dicom(path, gradient()[None], frames=True)
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 0
    ds.save_as(path)
    return path


@pytest.mark.parametrize("make, reason", [
    (lambda p: p.write_bytes(bytes(128) + b"DICM" + b"\x02\x00garbage"), "damaged DICOM file"),
    (lambda p: p.write_bytes(b"not dicom at all"), "not a DICOM file"),
    (lambda p: write_dicom(p, gradient(), pixel_data=False), "DICOM file without pixel data"),
    (_zero_frames, "multi-frame DICOM file with zero frames"),
    (lambda p: write_dicom(p, np.full((8, 8), 1000), bits=16), "constant image (every pixel 1000)"),
    (_unsupported, "JPEG-LS Lossless Image Compression (1.2.840.10008.1.2.4.80): no installed decoder reads it"),
])
def test_files_that_give_no_b_scan_are_skipped_and_named(tmp_path, make, reason):
    root = tmp_path / "data"
    for name in ("DME", "NORMAL"):
        write_dicom(root / name / f"{name}-1-1.dcm", gradient())
    bad = root / "DME" / "DME-2-1.dcm"
    make(bad)
    with pytest.raises(DicomProblem, match=reason.split(" (")[0]):
        frame_pixels(bad.read_bytes())
    data = prepare_data(root, training=False)
    if reason.startswith("constant image"):
        # The check before the run parses the header only: a constant image is found by the run's
        # one decode, which drops the file and names it with the reason.
        assert data.skipped == () and len(data.test) == 3
        import keras

        from octreport.data.preprocessing import Preprocessing
        from octreport.engine.layers import discover_conv_layers
        from octreport.evaluation.predict import evaluate_files

        inputs = keras.Input((16, 16, 1))
        x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(inputs))
        model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
        skipped = evaluate_files(model, discover_conv_layers(model), data.test, Preprocessing(16, 16, 1), 4).predictions.skipped
        assert [(s.path.name, s.reason.startswith(f"could not be decoded: {reason}")) for s in skipped] == [(bad.name, True)]
        return
    assert [(s.path.name, reason in s.reason) for s in data.skipped] == [(bad.name, True)]
    assert len(data.test) == 2


def test_patient_ids_are_kept_only_as_salted_hashes(tmp_path):
    path = write_dicom(tmp_path / "scan.dcm", gradient())
    facts = dicom_facts(path, "salt-a")
    assert facts.patient == patient_key(PATIENT_ID, "salt-a") != patient_key(PATIENT_ID, "salt-b")
    assert facts.device == "Heidelberg Engineering Spectralis" and facts.frames == 1
    assert PATIENT_ID not in repr(facts) and "Vanderzee" not in repr(facts)
    items = prepare_data(_clinic(tmp_path / "data"), training=False).test
    first, again = (_header_tables(tmp_path / "data", items, "salt-a") for _ in range(2))
    assert dict(first.patients.patients) == dict(again.patients.patients)  # one salt, one key per patient: runs agree
    assert len(set(first.patients.patients.values())) == 2


def _header_tables(root: Path, items, salt: str):
    """The header facts of ``items`` as a run gathers them, one file at a time."""
    headers = DicomHeaderReads(root, salt)
    for item in items:
        headers.add(item.path, item.path)
    return headers.tables()


def _clinic(root: Path) -> Path:
    """DME/ and NORMAL/ of DICOM scans from two patients (the first named PATIENT_NAME, ID PATIENT_ID)."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(("DME", "NORMAL")):
        for k in range(3):
            image = np.clip(rng.normal(60 + 80 * c, 20, (32, 40)), 0, 255)
            write_dicom(root / name / f"scan-{c}{k}.dcm", image, rle=k == 0,
                        patient_id=PATIENT_ID if k < 2 else "ID-2", patient_name=PATIENT_NAME if k < 2 else "Other^Person")
    return root


def test_no_identifying_tag_reaches_any_output_of_a_run(conv_model, tmp_path):
    data = _clinic(tmp_path / "clinic")
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, ["report", "--model", str(conv_model), "--data", str(data), "--out", str(out),
                                       "--class-names", "CNV,DME,DRUSEN,NORMAL", *QUICK])
    assert result.exit_code in (0, 5), result.output
    run = (out / "latest").resolve()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["classification"]["n_images"] == 6 and metrics["data_shift"]["evaluated_profile"]["file_types"] == {"dicom": 6}
    assert metrics["data_audit"]["patients_per_split"] == {"test": 2}  # from the hashed PatientIDs
    assert any(g["grouping"].startswith("DICOM device") for g in metrics["group_metrics"])
    device = "Heidelberg Engineering Spectralis"
    assert metrics["data_shift"]["evaluated_profile"]["devices"] == {device: 6}  # the device in the profile
    assert metrics["data_audit"]["devices"] == {device: 6}
    html = (run / "report.html").read_text()
    assert "Device (DICOM Manufacturer and model)" in html and f"{device} (100%)" in html
    salt = json.loads((run / "manifest.json").read_text())["config"]["report"]["dicom_salt"]
    assert salt
    assert_no_identifying_tag(run, result.output)


def assert_no_identifying_tag(run: Path, terminal: str,
                              outputs=("report.html", "metrics.json", "predictions.csv", "manifest.json", "run.log",
                                       "report.pdf")) -> None:
    """No name, ID or birth date of :mod:`dicom_files`' patients in any output of ``run`` nor on the terminal."""
    from pypdf import PdfReader

    texts = {path.name: path.read_text(errors="replace") for path in run.iterdir() if path.is_file() and path.suffix != ".pdf"}
    texts["report.pdf"] = "\n".join(page.extract_text() for page in PdfReader(run / "report.pdf").pages)
    assert set(outputs) <= set(texts)
    texts["terminal"] = terminal
    for name, text in texts.items():
        for secret in (PATIENT_NAME, "Vanderzee", "Quintessa", PATIENT_ID, "7Q3X9K", BIRTH_DATE, "Other^Person"):
            assert secret not in text, f"{secret} in {name}"


def test_a_folder_of_dicom_scans_is_split_by_their_patient_ids(tmp_path):
    root = tmp_path / "data"
    for c, name in enumerate(("CNV", "DME", "DRUSEN", "NORMAL")):
        for p in range(5):
            for n in range(3):  # names that say nothing of the patient: only the header does
                write_dicom(root / name / f"export-{c}{p}{n}.dcm", gradient() // (c + 1), patient_id=f"{name}-{p}")
    data = prepare_data(root)
    sides = {}  # patient (export-CP of export-CPN) -> the splits holding its scans
    for split in ("train", "val", "test"):
        for item in data.split(split):
            sides.setdefault(item.path.stem[:-1], set()).add(split)
    assert data.test and all(len(s) == 1 for s in sides.values()), sides


def test_audit_data_reads_patients_and_devices_from_dicom_headers(tmp_path):
    root = tmp_path / "kermany"
    for c, name in enumerate(("CNV", "DME", "DRUSEN", "NORMAL")):
        for p in range(4):
            write_dicom(root / "train" / name / f"export-{c}{p}.dcm", gradient() // (c + 1) + p,
                        patient_id=PATIENT_ID if (c, p) == (1, 0) else f"{name}-{p}")
        write_dicom(root / "test" / name / f"export-{c}9.dcm", gradient() // (c + 2),
                    patient_id=PATIENT_ID if c == 1 else f"{name}-test")  # DME's test scan: a training patient
    out = tmp_path / "audits"
    result = CliRunner().invoke(main, ["audit-data", "--data", str(root), "--out", str(out), "--dicom-salt", "s1"])
    assert result.exit_code == 0, result.output
    run = (out / "latest").resolve()
    metrics = json.loads((run / "metrics.json").read_text())
    audit = metrics["data_audit"]
    assert audit["patient_source"].startswith("DICOM PatientID") and audit["images_without_patient"] == 0
    assert audit["leaked_patients"] == 1
    assert audit["shared_patients"][0]["patient"] == patient_key(PATIENT_ID, "s1")  # hashed with the given salt
    assert audit["devices"] == {"Heidelberg Engineering Spectralis": 20}
    assert json.loads((run / "manifest.json").read_text())["config"]["report"]["dicom_salt"] == "s1"
    assert "Devices (DICOM Manufacturer and model)" in (run / "report.html").read_text()
    assert_no_identifying_tag(run, result.output, ("report.html", "metrics.json", "manifest.json", "report.pdf"))


def test_the_check_before_the_run_reads_the_header_only(tmp_path, monkeypatch):
    import pydicom.pixels

    from octreport.data import dicom as dicom_module
    from octreport.data.dicom import dicom_problem

    volume = write_dicom(tmp_path / "volume.dcm", np.stack([gradient(128, 160)] * 6), frames=True)  # 123 kB of frames
    read = []
    real_open = Path.open

    def counting_open(self, *args, **kwargs):
        handle = real_open(self, *args, **kwargs)
        real_read = handle.read
        handle.read = lambda *a: read.append(len(chunk := real_read(*a))) or chunk  # noqa: E731
        return handle

    def no_decode(*args, **kwargs):
        raise AssertionError("the check decoded pixels")

    monkeypatch.setattr(pydicom.pixels, "pixel_array", no_decode)
    monkeypatch.setattr(dicom_module, "frame_pixels", no_decode)
    monkeypatch.setattr(Path, "open", counting_open)
    assert dicom_problem(volume) is None
    assert 0 < sum(read) < 4096 < volume.stat().st_size // 30  # the header and a tag, not the frames
