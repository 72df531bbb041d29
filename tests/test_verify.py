"""octreport verify on a real small run: an untouched run holds; each tampering is caught with the
check that differs, its message and exit code 7; bad input gets the usual codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from octreport.cli import main


def verify(*args: str):
    result = CliRunner().invoke(main, ["verify", *args])
    return result.exit_code, result.output


def verdicts(output: str) -> dict[str, str]:
    """``{check name: HOLDS/DIFFERS/NOT CHECKED}`` from the text verify prints."""
    found = {}
    for line in output.splitlines():
        for verdict in ("HOLDS", "DIFFERS", "NOT CHECKED"):
            if line.startswith(f"  {verdict} "):
                found[line[len(verdict) + 2:].strip()] = verdict
    return found


@pytest.fixture
def copies(audited_run, tmp_path) -> tuple[Path, Path]:
    """A copy of the run folder and of its data, to tamper with."""
    run, data = audited_run
    return Path(shutil.copytree(run, tmp_path / run.name)), Path(shutil.copytree(data, tmp_path / "data"))


def shown_image(run: Path, data: Path) -> Path:
    """The first image the report shows, inside ``data``."""
    metrics = json.loads((run / "metrics.json").read_text())
    recorded = Path(metrics["shown_images"][0]["path"])
    return data / recorded.relative_to(metrics["data"]["root"])


def test_an_untouched_run_holds(audited_run):
    run, _ = audited_run
    code, output = verify(str(run))
    assert code == 0, output
    assert verdicts(output) == {
        "run folder files": "HOLDS", "PDF attachments": "HOLDS", "model file": "HOLDS", "model weights": "HOLDS",
        "data fingerprint": "HOLDS", "predictions on the images shown in the report": "HOLDS",
    }
    assert "model.keras, model.octreport.json, report.html, metrics.json, predictions.csv" in output
    assert "verdict: all checks hold" in output
    assert "4 image(s) re-run" in output and "tolerance 0.0001" in output


def test_full_reruns_every_evaluated_image(audited_run):
    run, _ = audited_run
    result = CliRunner().invoke(main, ["verify", str(run), "--full", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["holds"] is True
    check = next(c for c in document["checks"] if c["name"] == "predictions on every evaluated image")
    rows = (run / "predictions.csv").read_text().splitlines()
    assert check["verdict"] == "holds" and check["details"][0].startswith(f"{len(rows) - 1} image(s) re-run")
    assert len(rows) - 1 == json.loads((run / "metrics.json").read_text())["classification"]["n_images"]


def test_edited_metrics_json_is_caught(copies):
    run, data = copies
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["classification"]["accuracy"] = 0.99
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2))
    code, output = verify(str(run), "--data", str(data))
    assert code == 7, output
    assert verdicts(output)["run folder files"] == "DIFFERS" and "metrics.json changed: sha256" in output
    assert "the metrics.json embedded in report.pdf differs from the folder's (keys that differ: classification)" in output
    assert verdicts(output)["model weights"] == "HOLDS"
    assert "Error: 2 check(s) differ: run folder files, PDF attachments." in output


def test_edited_manifest_is_caught_by_the_pdf(copies):
    """Edit metrics.json and write its new hash into the manifest: only the PDF's copy still tells."""
    import hashlib

    run, data = copies
    (run / "metrics.json").write_text((run / "metrics.json").read_text().replace('"accuracy": ', '"accuracy":  ', 1))
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["artifacts"]["metrics.json"] = hashlib.sha256((run / "metrics.json").read_bytes()).hexdigest()
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2))
    code, output = verify(str(run), "--data", str(data))
    assert code == 7, output
    assert verdicts(output)["run folder files"] == "HOLDS"
    assert "the manifest.json embedded in report.pdf differs from the folder's (keys that differ: artifacts)" in output


def test_replaced_pdf_is_caught(copies, tmp_path):
    from octreport.report.pdf import render_pdf

    run, data = copies
    render_pdf("<html><body><p>An innocent report</p></body></html>", run / "report.pdf", tmp_path)
    code, output = verify(str(run), "--data", str(data))
    assert code == 7, output
    assert "report.pdf carries no metrics.json: not the PDF this run wrote" in output
    (run / "report.pdf").write_bytes(b"not a pdf at all")
    code, output = verify(str(run), "--data", str(data))
    assert code == 7 and "is not a readable PDF" in output
    (run / "report.pdf").unlink()
    code, output = verify(str(run), "--data", str(data))
    assert code == 7 and "report.pdf is missing, though the run wrote one" in output


def test_retrained_model_is_caught(copies):
    import keras

    run, data = copies
    model = keras.models.load_model(run / "model.keras", compile=False)
    kernel = model.layers[-1].kernel
    # What one more epoch of training does to a layer (the same shift for every class would cancel in the softmax).
    kernel.assign(kernel.numpy() + np.random.default_rng(0).normal(0, 0.05, kernel.shape))
    model.save(run / "model.keras")
    code, output = verify(str(run), "--data", str(data))
    assert code == 7, output
    found = verdicts(output)
    assert found["model file"] == "DIFFERS" and found["model weights"] == "DIFFERS"
    assert "another model (retrained?)" in output
    assert found["predictions on the images shown in the report"] == "DIFFERS" and "beyond the tolerance" in output
    assert found["data fingerprint"] == "HOLDS"


def test_one_changed_image_is_caught(copies):
    from PIL import Image

    run, data = copies
    image = shown_image(run, data)
    pixels = np.array(Image.open(image))
    pixels[:16, :16] = 255 - pixels[:16, :16]
    Image.fromarray(pixels).save(image, "JPEG")
    relative = image.relative_to(data).as_posix()
    code, output = verify(str(run), "--data", str(data))
    assert code == 7, output
    found = verdicts(output)
    assert found["data fingerprint"] == "DIFFERS" and f"1 image(s) changed: {relative}" in output
    assert found["predictions on the images shown in the report"] == "DIFFERS" and relative in output.split("predictions on")[1]
    assert found["model weights"] == "HOLDS" and found["run folder files"] == "HOLDS"


def test_one_removed_image_is_caught(copies):
    run, data = copies
    image = shown_image(run, data)
    image.unlink()
    relative = image.relative_to(data).as_posix()
    code, output = verify(str(run), "--data", str(data), "--full")
    assert code == 7, output
    assert verdicts(output)["data fingerprint"] == "DIFFERS" and f"1 image(s) removed: {relative}" in output
    assert verdicts(output)["predictions on every evaluated image"] == "DIFFERS"
    assert f"1 image(s) could not be re-run (missing or unreadable): {relative}" in output


def test_bad_input_gets_the_usual_exit_codes(audited_run, tmp_path):
    run, _ = audited_run
    code, output = verify(str(tmp_path / "no-such-run"))
    assert code == 2 and "no run" in output and "Traceback" not in output
    (tmp_path / "empty").mkdir()
    code, output = verify(str(tmp_path / "empty"))
    assert code == 2 and "not an octreport run folder" in output
    code, output = verify(str(run), "--data", str(tmp_path / "no-data"))
    assert code == 3 and "does not exist" in output
    (tmp_path / "model.keras").write_text("not a model")
    code, output = verify(str(run), "--model", str(tmp_path / "model.keras"))
    assert code == 4 and "is not a Keras model" in output


def test_a_run_without_its_model_and_data_is_checked_as_far_as_it_can_be(copies, tmp_path):
    run, data = copies
    (run / "model.keras").rename(tmp_path / "moved.keras")
    manifest = json.loads((run / "manifest.json").read_text())
    code, output = verify(str(run), "--data", str(data))
    assert code == 7 and verdicts(output)["run folder files"] == "DIFFERS" and "model.keras is missing" in output
    # Given where it went, the model itself still holds.
    code, output = verify(str(run), "--data", str(data), "--model", str(tmp_path / "moved.keras"))
    assert verdicts(output)["model weights"] == "HOLDS" and verdicts(output)["model file"] == "HOLDS"
    assert manifest["model"]["file"].endswith(f"{run.name}/model.keras")  # the published run folder, not .incomplete-


def test_a_removed_or_corrupt_manifest_is_a_difference_not_a_crash(copies):
    run, data = copies
    (run / "manifest.json").write_text('{"outcome": "passed", ')
    code, output = verify(str(run), "--data", str(data))
    assert code == 7 and "manifest.json is not valid JSON" in output and "Traceback" not in output
    assert "the manifest.json embedded in report.pdf differs from the folder's (one of them is not valid JSON)" in output
    (run / "manifest.json").unlink()
    code, output = verify(str(run), "--data", str(data))
    assert code == 7 and "manifest.json cannot be read" in output
    assert "manifest.json is missing from the folder (the PDF carries one)" in output
