"""Deep networks in a readable report: which conv layers are drawn by default (the first, and the
last of each resolution), --layers all, every layer still listed and audited; and no PDF page that
ends with a heading whose content starts on the next."""

from __future__ import annotations

import json
from dataclasses import replace

import keras
import pytest

from conftest import write_kermany
from octreport.engine.layer_selection import (
    DEFAULT_MAX_DRAWN,
    choose_drawn_layers,
    representative_layers,
    spatial_size,
)
from octreport.engine.layers import discover_conv_layers
from octreport.errors import ConfigError
from report_samples import pages_ending_with_a_heading

RESNET50_STAGE_ENDS = ["conv1_conv", "conv2_block3_3_conv", "conv3_block4_3_conv", "conv4_block6_3_conv",
                       "conv5_block3_3_conv"]
DENSENET121_STAGE_ENDS = ["conv1_conv", "pool2_conv", "pool3_conv", "pool4_conv", "conv5_block16_2_conv"]


@pytest.fixture(scope="module")
def resnet50() -> keras.Model:
    return keras.applications.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3))


def test_resnet50_default_is_the_first_layer_and_each_stage_end(resnet50):
    layers = discover_conv_layers(resnet50)
    selection = choose_drawn_layers(layers)
    assert [info.path for info in selection.drawn] == RESNET50_STAGE_ENDS
    assert (selection.rule, selection.total) == ("default", 53)
    # Each drawn layer after the first is the last of its resolution; together they cover every resolution.
    sizes = [spatial_size(info) for info in layers]
    for info in selection.drawn[1:]:
        assert max(i for i, size in enumerate(sizes) if size == spatial_size(info)) == layers.index(info)
    assert {spatial_size(info) for info in selection.drawn} == set(sizes)
    assert "5 of the 53 convolutional layers are drawn" in selection.reason and "--layers all" in selection.reason


def test_densenet121_default_and_layers_all():
    model = keras.applications.DenseNet121(weights=None, include_top=False, input_shape=(32, 32, 3))
    layers = discover_conv_layers(model)
    assert len(layers) == 120
    assert [info.path for info in choose_drawn_layers(layers).drawn] == DENSENET121_STAGE_ENDS
    every = choose_drawn_layers(layers, ("all",))
    assert (len(every.drawn), every.rule) == (120, "all")
    named = choose_drawn_layers(layers, ("pool3_conv", "conv1_conv"))
    assert [info.path for info in named.drawn] == ["conv1_conv", "pool3_conv"] and named.rule == "named"
    with pytest.raises(ConfigError, match="Unknown convolutional layer"):
        choose_drawn_layers(layers, ("no_such_layer",))


def test_small_models_are_drawn_whole_and_many_stages_are_thinned_to_the_maximum(resnet50):
    layers = discover_conv_layers(resnet50)
    assert choose_drawn_layers(layers[:DEFAULT_MAX_DRAWN]).drawn == layers[:DEFAULT_MAX_DRAWN]
    # 20 layers of 20 resolutions: at most 12 drawn, the first and the last among them.
    shrinking = tuple(replace(info, output_shape=(40 - i, 40 - i, info.filters)) for i, info in enumerate(layers[:20]))
    picked = representative_layers(shrinking)
    assert len(picked) == DEFAULT_MAX_DRAWN
    assert picked[0] is shrinking[0] and picked[-1] is shrinking[-1]
    assert list(picked) == sorted(picked, key=shrinking.index)


def test_resnet50_report_lists_and_audits_every_layer_draws_the_stage_ends_and_keeps_headings_with_content(
        resnet50, tmp_path):
    import octreport

    inputs = keras.Input((32, 32, 3))
    features = keras.layers.GlobalAveragePooling2D()(resnet50(inputs))
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(features), name="resnet_oct")
    data = write_kermany(tmp_path / "data", patients=4, per_patient=1)
    outcome = octreport.make_report(model, data, tmp_path / "runs", images_per_class=1, errors_per_cell=0,
                                    bootstrap_resamples=100, maps_per_layer=8, filters_per_layer=8,
                                    heatmap_checks=False, filter_views=("kernels",))  # what is asserted; the rest is slow on ResNet50
    metrics = json.loads(outcome.metrics_path.read_text())
    drawn = [f"resnet50/{name}" for name in RESNET50_STAGE_ENDS]
    assert len(metrics["conv_layers"]) == 53 and len(metrics["layer_health"]) == 53
    assert metrics["drawn_layers"]["drawn"] == drawn and metrics["drawn_layers"]["rule"] == "default"
    assert [f["layer"] for f in metrics["filters"]] == drawn
    assert all(set(image["channels_shown"]) == set(drawn) for image in metrics["shown_images"])
    html = outcome.html_path.read_text()
    assert html.count('<td class="drawn">✓</td>') == 5 and html.count('<td class="drawn"></td>') == 48
    assert "5 of the 53 convolutional layers are drawn" in html
    assert pages_ending_with_a_heading(outcome.pdf_path, html) == []


def test_no_page_of_a_default_trained_report_ends_with_a_heading(audited_run):
    run, _ = audited_run
    html = (run / "report.html").read_text()
    assert pages_ending_with_a_heading(run / "report.pdf", html) == []
