"""The same real scans as JPEG and as DICOM: does octreport read both alike, and keep the DICOM
patient data out of every output?

Run on demand (not a test), from the repository root:

    python benchmarks/dicom_oct_real.py [--data ../shared/oct-real] [--work /tmp/octreport-dicom]
        [--epochs 4] [--image-size 64] [--preset oct-real]

1. Converts every JPEG of ``--data`` (class folders, Kermany names) into an Ophthalmic Tomography
   DICOM file of the same name (``.dcm``) under ``WORK/dicom``, with pydicom: gray scans as
   MONOCHROME2, the few 3-channel JPEGs as RGB, every third file RLE Lossless; each patient gets a
   made-up name and ID (``Synthetic^Patient<n>``, ``SYN-<patient>``).
2. Trains one model (small, or ``--preset``) on the JPEG folder (``octreport train``: its own patient-disjoint
   train/validation/test cut, seed 0); the test split is never used for training or stopping.
3. Reports on the test split of both folders (``octreport report --split test``: the same
   patients, as the cut reads the file names) and compares accuracy and the per-scan predictions.
4. Reads every output of the DICOM run (report.html, metrics.json, predictions.csv,
   manifest.json, run.log) for the made-up names and IDs.
5. The other clinic's case (issue 25), with the same model, on the DME and NORMAL scans of the
   test split: ``DME/`` and ``NORMAL/`` only; renamed folders with and without ``--class-map``;
   the scans unlabelled in one folder, as they are and resized to 1408x573, 3-channel and 30%
   darker, each with ``--fail-on-shift``. Prints each command's exit code and what it found.

Skips (exit 0, says so) when ``--data`` is absent. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

OCT_REAL = Path(__file__).resolve().parents[2] / "shared" / "oct-real"
OPT_STORAGE = "1.2.840.10008.5.1.4.1.1.77.1.5.4"


def to_dicom(jpeg: Path, out: Path, patient: int, rle: bool) -> None:
    from PIL import Image
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

    image = Image.open(jpeg)
    rgb = image.mode == "RGB"
    pixels = np.asarray(image.convert("RGB" if rgb else "L"))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = OPT_STORAGE, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = OPT_STORAGE, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = f"Synthetic^Patient{patient}", f"SYN-{patient:06d}", "19500101"
    ds.Manufacturer, ds.ManufacturerModelName, ds.Modality = "Heidelberg Engineering", "Spectralis", "OPT"
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel = 3 if rgb else 1
    if rgb:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = "RGB" if rgb else "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.tobytes()
    if rle:
        ds.compress(RLELossless, pixels)
    ds.save_as(out, enforce_file_format=True)


def convert(data: Path, target: Path) -> dict:
    patients: dict[str, int] = {}
    counts = {"files": 0, "rgb": 0, "rle": 0}
    for k, jpeg in enumerate(sorted(data.glob("*/*.jpeg"))):
        patient = jpeg.stem.split("-")[1]
        number = patients.setdefault(patient, len(patients) + 1)
        out = target / jpeg.parent.name / f"{jpeg.stem}.dcm"
        out.parent.mkdir(parents=True, exist_ok=True)
        to_dicom(jpeg, out, number, rle=k % 3 == 0)
        counts["files"] += 1
        counts["rle"] += k % 3 == 0
    from PIL import Image
    counts["rgb"] = sum(Image.open(p).mode == "RGB" for p in data.glob("*/*.jpeg"))
    counts["patients"] = len(patients)
    return counts


def octreport(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "octreport", *args], check=True)


def predictions(run: Path) -> dict[str, tuple[str, str]]:
    with open(run / "predictions.csv", newline="") as handle:
        return {Path(row["path"]).with_suffix("").as_posix(): (row["true_class"], row["predicted_class"])
                for row in csv.DictReader(handle)}


def clinic_cases(data: Path, model: Path, work: Path, quick: list[str]) -> list[dict]:
    """Step 5: the folders made from the test split's DME and NORMAL scans, and each command's outcome."""
    from PIL import Image, ImageEnhance

    from octreport.data.dataset import prepare_data

    split = prepare_data(data)  # the cut `octreport train` made (seed 0): only its test patients are used
    renamed = {"DME": "diabetic macular edema", "NORMAL": "healthy"}
    base = work / "clinic"
    for item in split.test:
        name = split.class_names[item.label]
        if name not in renamed:
            continue
        for folder in (base / "subset" / name, base / "renamed" / renamed[name], base / "unlabelled-same"):
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(item.path, folder / item.path.name)
        (base / "unlabelled-other").mkdir(parents=True, exist_ok=True)
        wide = Image.open(item.path).convert("RGB").resize((1408, 573))
        ImageEnhance.Brightness(wide).enhance(0.7).save(base / "unlabelled-other" / item.path.name, quality=90)
    cases = [("subset", []), ("renamed", ["--class-map", "diabetic macular edema=DME,healthy=NORMAL",
                                          "--min-sensitivity", "DRUSEN=0.8"]),
             ("renamed", []), ("unlabelled-same", ["--fail-on-shift"]), ("unlabelled-other", ["--fail-on-shift"])]
    results = []
    for folder, extra in cases:
        out = work / "clinic-runs"
        before = set(out.iterdir()) if out.is_dir() else set()
        done = subprocess.run([sys.executable, "-m", "octreport", "report", "--model", str(model), "--data",
                               str(base / folder), "--out", str(out), *quick, *extra], capture_output=True, text=True)
        new = sorted(set(out.iterdir()) - before - {out / "latest", out / "previous"}) if out.is_dir() else []
        entry = {"data": folder, "options": extra, "exit": done.returncode,
                 "error": [line for line in done.stderr.splitlines() if line.startswith("Error:")]}
        if new and (new[-1] / "metrics.json").is_file():
            metrics = json.loads((new[-1] / "metrics.json").read_text())
            if "classification" in metrics:
                c = metrics["classification"]
                entry.update(accuracy=c["accuracy"], accuracy_interval=[metrics["intervals"]["accuracy"]["low"],
                                                                        metrics["intervals"]["accuracy"]["high"]],
                             not_in_data=c["classes_not_in_data"],
                             per_class={r["name"]: [r["support"], r["recall"], r["predicted"]] for r in c["per_class"]},
                             urgent=[metrics["referral"]["urgent_sensitivity"], metrics["referral"]["urgent_specificity"]])
            else:
                s = metrics["screening"]
                entry.update(referral=s["referral_counts"], deferrals={d["threshold"]: d["count"] for d in s["deferrals"]},
                             shift=[f["kind"] for f in metrics["data_shift"]["findings"]])
        results.append(entry)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=OCT_REAL)
    parser.add_argument("--work", type=Path, default=Path("/tmp/octreport-dicom"))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--image-size", default="64")
    parser.add_argument("--preset", default=None, help="train with this recipe instead of --epochs and --image-size")
    args = parser.parse_args()
    if not args.data.is_dir():
        print(json.dumps({"skipped": f"{args.data} is absent"}))
        return 0
    shutil.rmtree(args.work, ignore_errors=True)
    started = time.perf_counter()
    converted = convert(args.data, args.work / "dicom")
    convert_s = time.perf_counter() - started
    model = args.work / "model.keras"
    recipe = ["--preset", args.preset] if args.preset else ["--epochs", str(args.epochs), "--image-size", args.image_size]
    octreport("train", "--data", str(args.data), "--out", str(model), *recipe, "--seed", "0", "-q")
    quick = ["--split", "test", "--format", "html", "--images-per-class", "1", "--maps-per-layer", "4",
             "--filters-per-layer", "4", "--filter-views", "kernels", "--errors-per-cell", "0", "--no-heatmap-checks", "-q"]
    runs = {}
    for name, folder in (("jpeg", args.data), ("dicom", args.work / "dicom")):
        out = args.work / f"runs-{name}"
        subprocess.run([sys.executable, "-m", "octreport", "report", "--model", str(model), "--data", str(folder),
                        "--out", str(out), *quick])  # exit 5 (a gate) still writes the report
        runs[name] = (out / "latest").resolve()
    metrics = {name: json.loads((run / "metrics.json").read_text()) for name, run in runs.items()}
    jpeg, dicom = predictions(runs["jpeg"]), predictions(runs["dicom"])
    same = sum(jpeg[k] == dicom.get(k) for k in jpeg)
    secrets = ("Synthetic^Patient", "Synthetic", "SYN-", "19500101")
    found = [f"{path.name}: {s}" for path in runs["dicom"].iterdir() if path.is_file()
             for s in secrets if s in path.read_text(errors="replace")]
    print(json.dumps({
        "converted": converted, "convert_seconds": round(convert_s, 1),
        "test_images": {n: m["classification"]["n_images"] for n, m in metrics.items()},
        "accuracy": {n: m["classification"]["accuracy"] for n, m in metrics.items()},
        "same_prediction": f"{same} of {len(jpeg)}",
        "dicom_file_types": metrics["dicom"]["data_shift"]["evaluated_profile"]["file_types"],
        "dicom_patients_from_headers": metrics["dicom"]["data_audit"]["patients_per_split"],
        "identifying_text_found": found,
        "clinic_cases": clinic_cases(args.data, model, args.work, quick[2:]),  # every image of each folder: no --split
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
