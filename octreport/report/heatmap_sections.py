"""The report's "Heat-map checks" section: faithfulness curves (small multiples and a table) and
the randomisation sanity check, built from :class:`octreport.evaluation.heatmap_checks.HeatmapChecks`."""

from __future__ import annotations

from octreport.data.layout import shown_name
from octreport.drawing.export import encode_figure
from octreport.drawing.heatmap_figures import faithfulness_figure
from octreport.evaluation.faithfulness import METHOD_NAMES, READ_AT
from octreport.evaluation.heatmap_checks import HeatmapChecks
from octreport.report.assets import FIGURE_DPI, FigureStore
from octreport.report.image_views import FaithfulnessRow, HeatmapChecksSection, SanityImageRow, SanityStepRow
from octreport.document.results import RunResults

_BASELINE_WORDS = {
    "blur": "the image heavily blurred (a Gaussian of sigma one eighth of the image side)",
    "mean": "the image's mean value",
    "zero": "black (0)",
}


def _rows(results: RunResults, checks: HeatmapChecks) -> tuple[FaithfulnessRow, ...]:
    names, faithfulness = results.data.class_names, checks.faithfulness
    rows = [
        FaithfulnessRow(f"mean of {a.images} image(s)", "", METHOD_NAMES.get(m, m), a.deletion_area, a.insertion_area,
                        a.drop_at_read, is_mean=True)
        for m in faithfulness.methods if (a := faithfulness.average(m)) is not None
    ]
    for shown, image in zip(results.visuals.shown, faithfulness.images):
        rows += [FaithfulnessRow(shown_name(shown.item), names[image.class_index], METHOD_NAMES.get(c.method, c.method),
                                 c.deletion_area, c.insertion_area, c.drop_at()) for c in image.curves]
    return tuple(rows)


def _note(checks: HeatmapChecks) -> str:
    f = checks.faithfulness
    return (
        f"Is each map faithful to the model? For every shown image and its predicted class, the pixels are removed "
        f"hottest first in {f.steps} steps of {1 / f.steps:.0%} (deletion: solid lines; a faithful map makes the class "
        f"probability fall fast, so a small area) or put back hottest first into the baseline (insertion: dashed; a "
        f"faithful map makes it rise fast, so a large area), as Petsiuk et al. 2018 (RISE). A removed pixel becomes "
        f"{_BASELINE_WORDS[f.baseline]}. A random map (uniform noise, drawn with the seed) is the floor a map must "
        f"beat. Areas are over the share of pixels 0 to 1; the drop at {READ_AT:.0%} is the class probability minus "
        f"its value with the top {READ_AT:.0%} removed. {f.forward_images} perturbed images went through the model "
        f"in {f.forward_calls} batched forward passes."
    )


def _sanity_note(checks: HeatmapChecks) -> str:
    return (
        "Do the maps depend on what the model learned (Adebayo et al. 2018)? On a copy of the model (the model itself "
        f"is not changed), the weights of the top {checks.settings.randomised_layers} layers are re-initialised one "
        "after another from the output down, each step keeping the earlier ones random, and the Grad-CAM maps of the "
        "same images for the same classes are computed again. Spearman's rank correlation and SSIM compare each with "
        "the trained model's map: near 1, the map did not change. A mean rank correlation after the last step of "
        f"{checks.settings.threshold:.2f} or more is flagged as \"not explained by what the model learned\"."
    )


def heatmap_checks_section(results: RunResults, store: FigureStore) -> HeatmapChecksSection | None:
    checks = results.heatmap_checks
    if checks is None:
        return None
    names = results.data.class_names
    shown = results.visuals.shown
    titles = [f"{shown_name(s.item)[:22]} ({names[i.class_index]})" for s, i in zip(shown, checks.faithfulness.images)]
    figure = store.add(
        encode_figure(faithfulness_figure(checks.faithfulness, titles), FIGURE_DPI),
        "heatmap-faithfulness",
        "Deletion and insertion curves of the shown images",
        "The predicted class's probability as the hottest pixels of each map are removed (solid: deletion) or put "
        "back (dashed: insertion); first panel: the means.",
    )
    sanity = checks.sanity
    steps, images = (), ()
    if sanity is not None:
        steps = tuple(SanityStepRow(k + 1, s.layer, s.mean_spearman, s.mean_ssim) for k, s in enumerate(sanity.steps))
        final = sanity.final
        images = tuple(
            SanityImageRow(shown_name(s.item), names[i.class_index], _finite(rho), _finite(sim), bool(flag))
            for s, i, rho, sim, flag in zip(shown, checks.faithfulness.images, final.spearman, final.ssim,
                                            sanity.flagged_images)
        )
    return HeatmapChecksSection(
        note=_note(checks),
        reading=checks.faithfulness.reading,
        figure=figure,
        rows=_rows(results, checks),
        sanity_note=_sanity_note(checks),
        sanity_reading=sanity.reading if sanity is not None else checks.sanity_note,
        sanity_flagged=bool(sanity is not None and sanity.flagged),
        sanity_steps=steps,
        sanity_images=images,
    )


def _finite(value: float) -> float | None:
    return None if value != value else float(value)
