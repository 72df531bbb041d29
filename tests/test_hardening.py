"""Hostile and careless inputs: every user mistake is refused before a run folder exists, with
one ``Error:`` line and a documented exit code; templates cannot reach files or code outside
their sandbox; symbolic links out of the data folder are not read unless asked for."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from conftest import write_learnable_kermany
from octreport.cli import main
from octreport.errors import ConfigError, ReportError

FAST = ["--epochs", "1", "--image-size", "16", "--batch-size", "8", "--images-per-class", "1",
        "--maps-per-layer", "2", "--filters-per-layer", "2", "--errors-per-cell", "0", "--format", "html",
        "--filter-views", "kernels", "--no-heatmap-checks", "--bootstrap-resamples", "100"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_learnable_kermany(tmp_path_factory.mktemp("data") / "oct", patients=4, per_patient=1)


@pytest.fixture(scope="module")
def dense_model(tmp_path_factory) -> Path:
    """A model with no convolutional layer, for the four OCT classes."""
    import keras

    inputs = keras.Input((16, 16, 1))
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(inputs))
    path = tmp_path_factory.mktemp("models") / "dense.keras"
    keras.Model(inputs, outputs).save(path)
    return path


def refused(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args)
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return result.exit_code, errors[0]


# ---------- the output side ----------


def test_out_under_a_file_or_a_virtual_file_system_is_refused_before_any_work(data, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for out in (blocker / "runs", Path("/proc/octreport-runs")):
        code, error = refused(["run", "--data", str(data), "--out", str(out), *FAST])
        assert code == 2 and f"--out '{out}' cannot be created or written" in error
    code, error = refused(["run", "--data", str(data), "--out", str(blocker / "runs"), *FAST])
    assert "a part of the path is a file" in error


def test_out_without_write_permission_is_refused(data, tmp_path, monkeypatch):
    import octreport.runfolder

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(octreport.runfolder, "open", denied, raising=False)
    code, error = refused(["run", "--data", str(data), "--out", str(tmp_path / "runs"), *FAST])
    assert code == 2 and "Permission denied" in error


def test_train_out_is_checked_before_training(data, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = CliRunner().invoke(main, ["train", "--data", str(data), "--out", str(blocker / "m.keras"), "--epochs", "1",
                                       "--image-size", "16"])
    assert result.exit_code == 2 and "cannot be created or written" in result.output
    assert "epoch 1" not in result.output  # refused before training started


def test_an_os_error_mid_run_is_a_one_line_file_system_error(data, tmp_path, monkeypatch):
    import octreport.pipeline.publish

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "runs" / "metrics.json"))

    monkeypatch.setattr(octreport.pipeline.publish, "write_text_atomic", disk_full)
    code, error = refused(["run", "--data", str(data), "--out", str(tmp_path / "runs"), *FAST])
    assert code == 8 and "No space left on device" in error
    assert not (tmp_path / "runs" / "latest").exists()
    assert [p.suffix for p in (tmp_path / "runs").iterdir()] == [".failed"]


# ---------- refused runs leave nothing behind ----------


def test_model_without_conv_layers_is_refused_without_a_run_folder(data, dense_model, tmp_path):
    code, error = refused(["report", "--model", str(dense_model), "--data", str(data), "--out", str(tmp_path / "runs")])
    assert code == 4 and "convolutional" in error
    assert not (tmp_path / "runs").exists()


def test_template_naming_a_missing_stylesheet_is_refused_before_training(data, tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "base.html").write_text("<html><style>{{ stylesheet('missing.css') }}</style>{{ report.title }}</html>")
    result = CliRunner().invoke(main, ["run", "--data", str(data), "--out", str(tmp_path / "runs"),
                                       "--templates", str(templates), *FAST])
    assert result.exit_code == 6 and "missing.css" in result.output and "before the run" in result.output
    assert "epoch 1" not in result.output
    assert not (tmp_path / "runs").exists()


def test_negative_seed_is_a_usage_error_for_every_command(data, tmp_path):
    for command in (["run", "--data", str(data)], ["train", "--data", str(data)], ["sample-data", "--out", str(tmp_path / "s")],
                    ["report", "--model", "m.keras", "--data", str(data)]):
        code, error = refused([*command, "--seed", "-1"])
        assert code == 2 and "--seed" in error
    assert not (tmp_path / "s").exists()


# ---------- every option, every invalid value ----------


# Paths that octreport reads, so they must exist (click's own ``exists`` aside); the others are written.
READ_PATHS = {"data_dir", "templates_dir", "image_paths", "config"}


def _invalid_values(command: str, option: click.Option, tmp_path: Path) -> list[str]:
    """Values of ``option``'s own type that it must refuse."""
    kind = option.type
    if option.is_flag or option.name in ("config",):
        return []
    if isinstance(kind, (click.IntRange, click.FloatRange)):
        values = ["not-a-number"]
        if kind.min is not None:
            values.append(str(kind.min - 1 if isinstance(kind, click.IntRange) else kind.min - 0.5))
        if kind.max is not None:
            values.append(str(kind.max + 1 if isinstance(kind, click.IntRange) else kind.max + 0.5))
        if isinstance(kind, click.FloatRange):
            values.append("nan")
        return values
    if isinstance(kind, click.Choice):
        return ["no-such-choice"]
    if isinstance(kind, click.Path):
        folder, file = tmp_path / "a-folder", tmp_path / "a-file.txt"
        folder.mkdir(exist_ok=True)
        file.write_text("not an image, not a model")
        read = kind.exists or option.name in READ_PATHS or (option.name == "model_path" and command != "train")
        wrong_kind = folder if not kind.dir_okay else file if not kind.file_okay or option.name == "data_dir" else None
        return [str(p) for p in (tmp_path / "no-such-path" if read else None, wrong_kind) if p is not None]
    if kind in (click.INT, click.FLOAT):
        return ["not-a-number"]
    # Free text whose meaning octreport checks itself.
    return {"image_size": ["0", "4x", "100000"], "min_sensitivity": ["CNV", "CNV=2", "NOSUCH=0.5"],
            "layer_names": ["no-such-layer"],
            "filter_views": ["no-such-view", "kernels,bogus", ","], "compare_to": ["no-such-run"]}.get(option.name, [])


def test_every_invalid_option_value_is_refused_cleanly(data, conv_model, audited_run, tmp_path, monkeypatch):
    """Each option of each command, given a value of its type that it must refuse: exit 2, 3 or 4,
    one Error: line, no traceback, and the output root untouched. The base command lines are
    valid (checked first), so each refusal is the invalid value's doing."""
    out, elsewhere = tmp_path / "runs", tmp_path / "valid"
    monkeypatch.chdir(tmp_path)  # publish's SQLite store keeps its artifacts in ./mlruns
    base = {
        "run": ["--data", str(data), "--out", str(out), *FAST],
        "report": ["--model", str(conv_model), "--data", str(data), "--out", str(out), *FAST[4:]],
        "train": ["--data", str(data), "--out", str(out / "m.keras"), "--epochs", "1", "--image-size", "16"],
        "compare": [str(elsewhere / "previous"), str(elsewhere / "latest")],
        "history": ["--out", str(elsewhere), "--json"],
        "verify": [str(elsewhere / "latest")],
        "layers": [str(conv_model)],
        "sample-data": ["--out", str(out)],
        "audit-data": ["--data", str(data), "--out", str(out), "--format", "html"],
        "publish": ["latest", "--out", str(elsewhere), "--mlflow", "--mlflow-tracking-uri",
                    f"sqlite:///{tmp_path / 'mlflow.db'}", "--quiet"],
    }
    assert set(base) == set(main.commands), "give every command a base command line here"
    # Two valid runs in ``elsewhere`` (copies of the audited run, for compare, history and verify),
    # then every base command line once, to show that it is valid.
    run, _ = audited_run
    for name, alias in (("20260101-000000-aaaaaa", "previous"), ("20260102-000000-bbbbbb", "latest")):
        shutil.copytree(run, elsewhere / name)
        os.symlink(name, elsewhere / alias)
    for name, args in base.items():
        valid = CliRunner().invoke(main, [name, *args])
        assert valid.exit_code in (0, 5), (name, valid.output)
        if out.exists():
            shutil.rmtree(out)
    tried = 0
    for name, command in main.commands.items():
        for option in command.params:
            if not isinstance(option, click.Option):
                continue
            for value in _invalid_values(name, option, tmp_path):
                args = [name, *base[name], option.opts[-1] if option.opts[-1].startswith("--") else option.opts[0], value]
                code, error = refused(args)
                assert code in (2, 3, 4), (args[0], args[-2:], code, error)
                assert not out.exists(), (args, "left", list(out.rglob("*")))
                tried += 1
    assert tried > 60


# ---------- templates in a sandbox ----------


def test_template_cannot_reach_python_internals(tmp_path):
    from octreport.report.preview import check_templates

    marker = tmp_path / "ran"
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "base.html").write_text(
        "{{ report.title.__class__.__mro__[1].__subclasses__() }}"
        f"{{{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}}}"
    )
    with pytest.raises(ReportError, match="sandbox forbids|undefined"):
        check_templates(templates)
    (templates / "base.html").write_text(f"{{{{ lipsum.__globals__['os'].popen('touch {marker}').read() }}}}")
    with pytest.raises(ReportError):
        check_templates(templates)
    assert not marker.exists()


def test_pdf_embeds_only_files_of_the_run_and_template_folders(tmp_path):
    from pypdf import PdfReader

    from octreport.report.pdf import render_pdf

    outside, run, templates = tmp_path / "outside", tmp_path / "run", tmp_path / "templates"
    for folder in (outside, run, templates):
        folder.mkdir()
    (outside / "secret.css").write_text('body::before { content: "LEAKEDSECRET"; }')
    (templates / "style.css").write_text('body::after { content: "TEMPLATESTYLE"; }')
    (run / "own.css").write_text('h1::after { content: "RUNSTYLE"; }')
    (templates / "sneaky.css").symlink_to(outside / "secret.css")
    html = (f'<link rel="stylesheet" href="{(outside / "secret.css").as_uri()}">'
            f'<link rel="stylesheet" href="{(templates / "sneaky.css").as_uri()}">'
            f'<link rel="stylesheet" href="{(templates / "style.css").as_uri()}">'
            f'<link rel="stylesheet" href="../outside/secret.css">'
            '<link rel="stylesheet" href="own.css"><h1>Report</h1><p>body</p>')
    render_pdf(html, run / "report.pdf", base_url=run, readable_folders=[templates])
    text = "".join(page.extract_text() for page in PdfReader(run / "report.pdf").pages)
    assert "TEMPLATESTYLE" in text and "RUNSTYLE" in text
    assert "LEAKEDSECRET" not in text


# ---------- symbolic links in the data folder ----------


def test_symlinks_out_of_the_data_folder_are_skipped_and_listed(tmp_path):
    from octreport.data.fingerprint import fingerprint_prepared_data
    from octreport.data.dataset import prepare_data

    data = write_learnable_kermany(tmp_path / "data", patients=4, per_patient=1)
    elsewhere = write_learnable_kermany(tmp_path / "elsewhere", patients=4, per_patient=1)
    os.symlink(elsewhere / "train" / "CNV" / "CNV-1000-1.jpeg", data / "train" / "CNV" / "CNV-7777-1.jpeg")
    inside_link = data / "test" / "DME" / "DME-8888-1.jpeg"
    os.symlink(data / "test" / "DME" / "DME-1150-1.jpeg", inside_link)  # stays inside: read as usual

    prepared = prepare_data(data)
    names = {item.path.name for split in (prepared.train, prepared.val, prepared.test) for item in split}
    assert "CNV-7777-1.jpeg" not in names and "DME-8888-1.jpeg" in names
    assert [p.name for p in prepared.outside_links] == ["CNV-7777-1.jpeg"]
    skipped = fingerprint_prepared_data(prepared).to_dict()["skipped"]
    assert any("CNV-7777-1.jpeg" in s["path"] and "symbolic link" in s["reason"] for s in skipped)

    followed = prepare_data(data, follow_symlinks=True)
    assert "CNV-7777-1.jpeg" in {item.path.name for split in (followed.train, followed.val) for item in split}
    assert followed.outside_links == ()


def test_class_folder_linked_from_elsewhere_is_not_read(tmp_path):
    from octreport.data.layout import scan_dataset
    from octreport.errors import DataError

    data = write_learnable_kermany(tmp_path / "data", patients=2, per_patient=1)
    elsewhere = write_learnable_kermany(tmp_path / "elsewhere", classes=("EXTRA",), patients=2, per_patient=1)
    for split in ("train", "test"):
        os.symlink(elsewhere / split / "EXTRA", data / split / "EXTRA")
    scanned = scan_dataset(data)
    assert scanned.class_names == ("CNV", "DME", "DRUSEN", "NORMAL")
    assert sorted(p.name for p in scanned.outside_links) == ["EXTRA", "EXTRA"]
    assert "EXTRA" in scan_dataset(data, follow_symlinks=True).class_names
    with pytest.raises(DataError):
        scan_dataset(tmp_path / "nothing")


def test_config_refuses_a_seed_out_of_range():
    from octreport.config import ReportConfig, TrainConfig

    for seed in (-1, 2**32, 1.5, True):
        with pytest.raises(ConfigError, match="seed"):
            TrainConfig(seed=seed)
        with pytest.raises(ConfigError, match="seed"):
            ReportConfig(seed=seed)


def test_a_file_system_without_symbolic_links_still_publishes_the_run(tmp_path, monkeypatch, caplog):
    from octreport import runfolder

    def no_links(*args, **kwargs):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(runfolder.os, "symlink", no_links)
    with runfolder.run_folder(tmp_path / "runs") as folder:
        (folder.work / "report.html").write_text("done")
    assert (folder.final / "report.html").read_text() == "done"
    assert not (tmp_path / "runs" / "latest").exists()
    assert "could not point" in caplog.text
