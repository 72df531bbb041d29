"""The weights cache: a second report of the same model reads its activation maximisation from the
cache and shows the same; a damaged or foreign entry is computed again with a warning; --no-cache
computes and stores nothing; the manifest says which parts came from the cache."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import write_class_folders
from octreport.cache import ArrayCache, default_cache_dir
from octreport.cli import main
from octreport.engine.layers import discover_conv_layers
from octreport.engine.maximisation import METHOD_VERSION, MaximisationSettings
from octreport.engine.receptive_field import receptive_fields
from octreport.engine.weights_cache import cached_maximisation, model_fingerprint
from test_maximisation import detector_model

SETTINGS = MaximisationSettings(steps=4, jitter=0, scale=0.0)
SHAPE = (12, 12, 1)


def maximise(model, cache):
    layer = discover_conv_layers(model)[0]
    field = receptive_fields(model, [layer])[0]
    return cached_maximisation(model, layer, np.arange(2), field, SETTINGS, SHAPE, cache, model_fingerprint(model))


def entries(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.npz"))


def test_the_tests_never_use_the_user_cache(weights_cache, monkeypatch):
    assert default_cache_dir() == weights_cache
    monkeypatch.delenv("OCTREPORT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/srv/cache")
    assert default_cache_dir() == Path("/srv/cache/octreport")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "octreport"


def test_second_call_reads_the_cache_and_gives_the_same_arrays(tmp_path):
    model, cache = detector_model(), ArrayCache(tmp_path / "cache")
    first = maximise(model, cache)
    assert first.source == "computed" and len(entries(tmp_path / "cache")) == 1
    again = maximise(model, cache)
    assert again.source == "cache"
    np.testing.assert_array_equal(again.images, first.images)
    np.testing.assert_array_equal(again.activation, first.activation)
    np.testing.assert_array_equal(again.start_activation, first.start_activation)
    np.testing.assert_array_equal(again.channels, first.channels)
    assert again.caption == first.caption and again.images.dtype == np.float32


def test_other_weights_are_another_entry(tmp_path):
    model, cache = detector_model(), ArrayCache(tmp_path / "cache")
    maximise(model, cache)
    conv = discover_conv_layers(model)[0].layer
    conv.bias.assign([0.5, 0.0])
    assert maximise(model, cache).source == "computed"
    assert len(entries(tmp_path / "cache")) == 2


def test_a_damaged_entry_is_computed_again_with_a_warning_and_replaced(tmp_path, caplog):
    model, cache = detector_model(), ArrayCache(tmp_path / "cache")
    first = maximise(model, cache)
    entry = entries(tmp_path / "cache")[0]
    entry.write_bytes(entry.read_bytes()[:200])  # truncated, as by a full disk
    with caplog.at_level(logging.WARNING, logger="octreport.cache"):
        again = maximise(model, cache)
    assert again.source == "computed" and "cannot be used: unreadable" in caplog.text
    np.testing.assert_array_equal(again.images, first.images)
    assert maximise(model, cache).source == "cache"  # written over with a sound entry


def test_tampered_arrays_and_foreign_entries_are_not_trusted(tmp_path, caplog):
    model, cache = detector_model(), ArrayCache(tmp_path / "cache")
    first = maximise(model, cache)
    entry = entries(tmp_path / "cache")[0]
    with np.load(entry) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays["images"] = arrays["images"] + 0.25  # the checksum in the metadata no longer matches
    np.savez(entry, **arrays)
    with caplog.at_level(logging.WARNING, logger="octreport.cache"):
        assert maximise(model, cache).source == "computed"
    assert "do not match their checksum" in caplog.text

    # An entry of another model copied under this model's key: its metadata names another key.
    other = detector_model()
    discover_conv_layers(other)[0].layer.bias.assign([0.25, 0.25])
    maximise(other, cache)
    foreign = next(p for p in entries(tmp_path / "cache") if p != entry)
    shutil.copy(foreign, entry)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="octreport.cache"):
        again = maximise(model, cache)
    assert again.source == "computed" and "belongs to another key" in caplog.text
    np.testing.assert_array_equal(again.images, first.images)


def test_an_entry_of_the_wrong_shape_is_refused(tmp_path, caplog):
    model, cache = detector_model(), ArrayCache(tmp_path / "cache")
    first = maximise(model, cache)
    layer = discover_conv_layers(model)[0]
    field = receptive_fields(model, [layer])[0]
    fields = {"model": model_fingerprint(model), "method": METHOD_VERSION, "layer": 0, "kind": layer.kind, "channels": [0, 1],
              "settings": SETTINGS.__dict__, "input_shape": list(SHAPE),
              "field": [field.size, field.jump, field.start]}
    assert cache.path("maximisation", fields) == entries(tmp_path / "cache")[0]  # the key the engine uses
    cache.store("maximisation", fields, {"channels": np.arange(2), "images": first.images[:, :2],
                                         "activation": first.activation, "start_activation": first.start_activation,
                                         "caption": np.frombuffer(b"x", np.uint8)})
    with caplog.at_level(logging.WARNING, logger="octreport.cache"):
        assert maximise(model, cache).source == "computed"
    assert "'images' has shape (2, 2, 3, 1), expected (2, 3, 3, 1)" in caplog.text


def test_an_unwritable_cache_is_a_warning_not_a_failure(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="octreport.cache"):
        result = maximise(detector_model(), ArrayCache(blocker / "cache"))
    assert result.source == "computed" and "could not write the cache entry" in caplog.text


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return write_class_folders(tmp_path_factory.mktemp("cached") / "data", patients=2, per_patient=1, size=(16, 16))


REPORT = ["--format", "html", "--images-per-class", "1", "--maps-per-layer", "2", "--filters-per-layer", "2",
          "--errors-per-cell", "0", "--filter-views", "kernels,maximisation", "--no-heatmap-checks",
          "--bootstrap-resamples", "100"]


def report(conv_model, data, out, *options) -> tuple[dict, dict]:
    result = CliRunner().invoke(main, ["report", "--model", str(conv_model), "--data", str(data), "--out", str(out),
                                       *REPORT, *options])
    assert result.exit_code in (0, 5), result.output  # 5: an untrained model fails the chance gate; the report is complete
    run = out / "latest"
    return json.loads((run / "metrics.json").read_text()), json.loads((run / "manifest.json").read_text())


def maximisation_entries(metrics: dict) -> list:
    return [layer["maximisation"] for layer in metrics["filters"]]


def test_a_second_report_of_the_same_model_reads_the_cache_and_says_so(conv_model, tiny_folder, tmp_path):
    cache = tmp_path / "cache"
    first_metrics, first = report(conv_model, tiny_folder, tmp_path / "a", "--cache-dir", str(cache))
    second_metrics, second = report(conv_model, tiny_folder, tmp_path / "b", "--cache-dir", str(cache))
    [layer] = [entry["layer"] for entry in first_metrics["filters"]]  # its name depends on the models built before
    assert first["cache"] == {"folder": str(cache), "parts": {f"maximisation {layer}": "computed"}}
    assert second["cache"] == {"folder": str(cache), "parts": {f"maximisation {layer}": "cache"}}
    assert maximisation_entries(second_metrics) == maximisation_entries(first_metrics)
    assert all(entry is not None for entry in maximisation_entries(first_metrics))
    html = (tmp_path / "b" / "latest" / "report.html").read_text()
    assert "Activation maximisation of" in html

    third_metrics, third = report(conv_model, tiny_folder, tmp_path / "c", "--cache-dir", str(cache), "--no-cache")
    assert third["cache"] is None
    assert maximisation_entries(third_metrics) == maximisation_entries(first_metrics)


def test_no_cache_writes_nothing_and_an_unwritable_cache_dir_is_refused(conv_model, tiny_folder, tmp_path, weights_cache):
    report(conv_model, tiny_folder, tmp_path / "a", "--no-cache")
    assert entries(weights_cache) == []
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(main, ["report", "--model", str(conv_model), "--data", str(tiny_folder),
                                       "--out", str(tmp_path / "b"), "--cache-dir", str(blocker / "cache"), *REPORT])
    assert result.exit_code == 2
    assert "Error: --cache-dir" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_each_kind_keeps_its_most_recently_used_entries(tmp_path, monkeypatch):
    import os

    import octreport.cache

    monkeypatch.setattr(octreport.cache, "MAX_ENTRIES", 2)
    cache, check = ArrayCache(tmp_path / "cache"), lambda arrays: ""
    for n in range(3):
        cache.store("kind", {"n": n}, {"value": np.array([n])})
        os.utime(cache.path("kind", {"n": n}), (1000 + n, 1000 + n))
    assert cache.load("kind", {"n": 0}, check) is None  # pruned when the third was written
    assert cache.load("kind", {"n": 1}, check)["value"].tolist() == [1]  # read: used now
    cache.store("kind", {"n": 3}, {"value": np.array([3])})
    assert [cache.load("kind", {"n": n}, check) is not None for n in range(4)] == [False, True, False, True]
