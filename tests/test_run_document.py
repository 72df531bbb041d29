"""A run is computed once and published once: the publisher writes the run document as it is and
changes nothing in it; what only publishing knows (timings, the files' hashes) goes into copies."""

from __future__ import annotations

import json

import octreport.pipeline.run as run_module
from conftest import write_learnable_kermany


def test_the_publisher_writes_the_document_and_leaves_it_as_it_was(tmp_path, monkeypatch):
    import keras

    from octreport.api import make_report

    seen = {}
    publish = run_module.publish_run

    def watched(document, folder, config, timings):
        seen["before"] = json.dumps({"metrics": document.metrics, "manifest": document.manifest}, sort_keys=True)
        files = publish(document, folder, config, timings)
        seen["after"] = json.dumps({"metrics": document.metrics, "manifest": document.manifest}, sort_keys=True)
        seen["document"] = document
        return files

    monkeypatch.setattr(run_module, "publish_run", watched)
    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Conv2D(2, 3, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x)))
    outcome = make_report(model, write_learnable_kermany(tmp_path / "data", patients=2), tmp_path / "runs",
                          formats=("html",), images_per_class=1, maps_per_layer=2, filters_per_layer=2,
                          errors_per_cell=0, filter_views=("kernels",), heatmap_checks=False, bootstrap_resamples=100)

    assert seen["before"] == seen["after"], "publishing changed the run document"
    document = seen["document"]
    written = json.loads(outcome.metrics_path.read_text(encoding="utf-8"))
    manifest = json.loads(outcome.manifest_path.read_text(encoding="utf-8"))
    # The files are the document, plus what publishing alone knows.
    assert {k: v for k, v in written.items() if k != "timings_seconds"} == \
        {k: v for k, v in json.loads(json.dumps(document.metrics)).items() if k != "timings_seconds"}
    assert set(written["timings_seconds"]) == set(document.timings) | {"figures", "html"}
    assert {k: v for k, v in manifest.items() if k != "artifacts"} == \
        {k: v for k, v in json.loads(json.dumps(document.manifest)).items() if k != "artifacts"}
    assert set(manifest["artifacts"]) == {"report.html", "metrics.json", "predictions.csv"}
    assert document.manifest["artifacts"] == {}  # an in-memory model has no file to hash
