"""Heat maps you can check: deletion/insertion curves, the randomisation sanity check, and the
similarity measures they use. The model of the Grad-CAM tests (a bright 6x6 square or none)
decides by the square alone, so a faithful map of it must point there."""

from __future__ import annotations

import numpy as np
import pytest

from octreport.engine.gradcam import grad_cam
from octreport.engine.randomisation import cascading_randomisation, weighted_layers
from octreport.errors import ConfigError
from octreport.evaluation.faithfulness import baseline_image, faithfulness_curves, removal_ranks
from octreport.evaluation.heatmap_checks import (
    HeatmapCheckSettings,
    compute_heatmap_checks,
    gradcam_saliency,
    model_forward,
    sanity_check,
)
from octreport.evaluation.heatmap_similarity import downsample, ranks, spearman, ssim

# ---------- similarity measures, by hand ----------


def test_rank_correlation_and_ssim_by_hand():
    np.testing.assert_array_equal(ranks(np.array([3.0, 1.0, 3.0, 2.0])), [3.5, 1.0, 3.5, 2.0])
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])) == pytest.approx(0.5)
    a = np.random.default_rng(0).random((12, 12))
    assert spearman(a, a ** 3) == pytest.approx(1.0)  # only the order counts
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert np.isnan(spearman(a, np.zeros_like(a)))  # a constant map has no order
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, np.random.default_rng(1).random((12, 12))) < 0.2
    assert ssim(a, np.clip(a + 0.05, 0, 1)) > 0.9
    blocks = downsample(np.arange(64, dtype=float).reshape(8, 8), side=4)
    np.testing.assert_allclose(blocks[0], [4.5, 6.5, 8.5, 10.5])  # 2 x 2 block means
    assert downsample(np.ones((150, 150))).shape == (15, 15)  # blocks of 10 px: at most 16 x 16


def test_baselines_and_removal_order():
    image = np.zeros((16, 16, 1), np.float32)
    image[4:8, 4:8] = 1.0
    blurred = baseline_image(image, "blur")
    assert blurred.shape == image.shape and blurred[4:8, 4:8].mean() < 0.5  # the square is erased ...
    assert blurred.sum() == pytest.approx(image.sum(), rel=1e-5)  # ... its brightness spread around it
    np.testing.assert_allclose(baseline_image(image, "mean"), image.mean())
    assert not baseline_image(image, "zero").any()
    with pytest.raises(ConfigError, match="baseline"):
        baseline_image(image, "noise")
    heat = np.zeros((4, 4))
    heat[1, 2], heat[3, 3] = 1.0, 0.5
    place = removal_ranks(heat, np.random.default_rng(0))
    assert place[1, 2] == 0 and place[3, 3] == 1 and sorted(place.ravel()) == list(range(16))


# ---------- a model that decides by the square ----------


def test_deleting_the_gradcam_region_first_drops_the_score_far_faster_than_a_random_map(square_model):
    model, images, _ = square_model
    classes = np.ones(len(images), np.int64)
    cams = grad_cam(model, images, classes).heatmaps
    calls = []

    def forward(batch):
        calls.append(len(batch))
        return model_forward(model)(batch)

    result = faithfulness_curves(forward, images, {"gradcam": cams}, classes, steps=10, baseline="blur", batch_size=64)
    cam, rand = result.average("gradcam"), result.average("random")
    assert result.methods == ("gradcam", "random") and result.steps == 10
    # Every perturbed image went through the model in full batches: 2 shared + 2 x 9 per map and image.
    assert result.forward_images == len(images) * (2 + 2 * 2 * 9)
    assert calls == [64] * len(calls) == [64] * result.forward_calls  # the last batch padded: one traced shape
    assert sum(calls) - 64 < result.forward_images <= sum(calls)
    assert cam.deletion_area < rand.deletion_area - 0.3, (cam.deletion_area, rand.deletion_area)
    assert cam.insertion_area > rand.insertion_area + 0.2, (cam.insertion_area, rand.insertion_area)
    assert cam.drop_at_read > 0.5 > 0.2 > rand.drop_at_read
    for image in result.images:  # the curves start at the image and end at the baseline
        curves = image.of("gradcam")
        assert curves.deletion[0] == curves.insertion[-1] and curves.deletion[-1] == curves.insertion[0]
    assert "drops the predicted class's probability by" in result.reading
    # The same curves one image at a time: batching changes nothing.
    single = faithfulness_curves(model_forward(model), images[:2], {"gradcam": cams[:2]}, classes[:2], batch_size=1)
    batched = faithfulness_curves(model_forward(model), images[:2], {"gradcam": cams[:2]}, classes[:2], batch_size=64)
    for a, b in zip(single.images, batched.images):
        for ca, cb in zip(a.curves, b.curves):
            np.testing.assert_allclose(ca.deletion, cb.deletion, atol=1e-5)
            np.testing.assert_allclose(ca.insertion, cb.insertion, atol=1e-5)


def edge_map(model, images, classes):
    """A 'saliency' that never asks the model: the image's gradient magnitude."""
    gy, gx = np.gradient(images[..., 0], axis=(1, 2))
    return np.hypot(gx, gy)


def test_randomising_the_weights_changes_gradcam_but_not_an_edge_map(square_model):
    model, images, _ = square_model
    before = [w.copy() for w in model.get_weights()]
    classes = np.ones(len(images), np.int64)
    trained = grad_cam(model, images, classes).heatmaps
    randomised = cascading_randomisation(model, images, classes, gradcam_saliency(), layers=3, seed=0)
    assert randomised.layers == ("head", "conv_b", "conv_a")  # top down
    check = sanity_check(trained, randomised)
    assert check.final.mean_spearman < 0.5 and not check.flagged, [s.mean_spearman for s in check.steps]
    assert "Passed the randomisation check" in check.reading
    edges = edge_map(model, images, classes)
    flagged = sanity_check(edges, cascading_randomisation(model, images, classes, edge_map, layers=2))
    assert flagged.flagged and flagged.flagged_images.all()
    assert flagged.final.mean_spearman == pytest.approx(1.0) and flagged.final.mean_ssim == pytest.approx(1.0)
    assert "Not explained by what the model learned" in flagged.reading
    for kept, now in zip(before, model.get_weights()):  # the user's model is never modified
        np.testing.assert_array_equal(kept, now)
    assert [path for path, _ in weighted_layers(model)] == ["conv_a", "conv_b", "head"]


def test_the_report_computation_puts_both_checks_together(square_model):
    model, images, _ = square_model
    classes = np.ones(len(images), np.int64)
    cams = grad_cam(model, images, classes).heatmaps
    occlusion = [cams[0] * 0.5, *([None] * (len(images) - 1))]  # one image with an occlusion map
    checks = compute_heatmap_checks(model, images, classes, cams, occlusion, HeatmapCheckSettings(steps=4))
    assert checks.faithfulness.methods == ("gradcam", "occlusion", "random")
    assert checks.faithfulness.average("occlusion").images == 1
    assert len(checks.sanity.steps) == 3
    document = checks.to_dict()
    assert document["faithfulness"]["steps"] == 4 and document["faithfulness"]["fractions"] == [0, 0.25, 0.5, 0.75, 1]
    assert set(document["faithfulness"]["mean"]) == {"gradcam", "occlusion", "random"}
    assert len(document["sanity"]["steps"][0]["spearman"]) == len(images)


def test_wrong_inputs_are_refused():
    forward = lambda batch: np.ones((len(batch), 2))  # noqa: E731
    images = np.zeros((2, 8, 8, 1), np.float32)
    maps = {"gradcam": [np.zeros((8, 8))] * 2}
    with pytest.raises(ConfigError, match="2 steps"):
        faithfulness_curves(forward, images, maps, [0, 1], steps=1)
    with pytest.raises(ConfigError, match="shape"):
        faithfulness_curves(forward, images, {"gradcam": [np.zeros((4, 4))] * 2}, [0, 1])
    with pytest.raises(ConfigError, match="no class 5"):
        faithfulness_curves(forward, images, maps, [0, 5])
    with pytest.raises(ConfigError, match="heat-map steps"):
        HeatmapCheckSettings(steps=101)


def test_faithfulness_figure_has_the_means_then_a_panel_per_image():
    from octreport.drawing.heatmap_figures import faithfulness_figure

    def forward(batch):
        brightness = batch.mean(axis=(1, 2, 3))
        return np.stack([brightness, 1 - brightness], axis=1)

    x = np.random.default_rng(0).random((5, 8, 8, 1)).astype(np.float32)
    result = faithfulness_curves(forward, x, {"gradcam": list(x[..., 0])}, np.zeros(5, np.int64), steps=4)
    figure = faithfulness_figure(result, [f"scan {k}" for k in range(5)])
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title(loc="left") for ax in visible] == ["mean of 5 image(s)", *(f"scan {k}" for k in range(5))]
    assert all(len(ax.lines) == 4 for ax in visible)  # deletion and insertion, for Grad-CAM and the random map
    np.testing.assert_allclose(visible[0].lines[0].get_ydata(), result.average("gradcam").deletion)
    np.testing.assert_allclose(visible[3].lines[1].get_ydata(), result.images[2].of("gradcam").insertion)
