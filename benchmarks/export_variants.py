"""Other devices' exports of the same scans: resampled to other widths, or with a darker intensity curve.

Used by ``crossval_oct_real.py --export-variants`` (issue 13): each fold's evaluated scans are
written again as each variant below, into a temporary folder, and scored by the same model. A
recipe that is invariant to the export scores every variant within a point or two of the scans as
they are.

Variants (each a JPEG at quality 90, PIL's Lanczos resampling, the height kept at the scan's own):
- ``as is``: the files themselves;
- ``re-encoded``: the same width, saved again (the control: what re-encoding alone changes);
- ``512 px``, ``768 px``, ``1536 px``: the width resampled to that many pixels, as an export of the
  same field of view at another lateral sampling;
- ``darker``: ``255 * 0.7 * (x / 255) ** 1.3``: a darker, lower-contrast intensity curve at the
  same width.

Device-like variants (issue 26: what differs between devices beyond the export), each seeded per
scan (its index in the fold) so that every run writes the same files:
- ``wider field``: the scan shrunk to 70% of its width and set in the middle of a frame of its own
  width whose sides are speckle background (the level of the scan's top rows, the vitreous, times
  ``1 + N(0, 1)``): the same retina seen with a wider field of view;
- ``narrower field``: the central 70% of the width (a narrower field of view, saved at that width);
- ``shifted, tilted``: rotated by 4 degrees and moved down by 10% of the height, the uncovered
  corners speckle background;
- ``speckle``: multiplicative noise ``x * (1 + 0.3 N(0, 1))``;
- ``lower contrast``: ``255 * (0.15 + 0.55 x / 255)``: a raised floor and a compressed range;
- ``RGB-encoded``: the gray scan written as a 3-channel JPEG (as the other clinic's files were).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from octreport.data.layout import ImageItem

JPEG_QUALITY = 90
DARKER_GAIN, DARKER_GAMMA = 0.7, 1.3


FIELD_FACTOR = 0.7
TILT_DEGREES, SHIFT_SHARE = 4.0, 0.1
SPECKLE_SD = 0.3
CONTRAST_FLOOR, CONTRAST_GAIN = 0.15, 0.55
BACKGROUND_SHARE = 0.08  # the top rows whose level the speckle background takes


@dataclass(frozen=True)
class ExportVariant:
    name: str
    transform: Callable | None  # (PIL image, NumPy Generator) -> PIL image; None: the original files


def _gray(image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float64) / 255.0


def _image(values: np.ndarray):
    from PIL import Image

    return Image.fromarray(np.clip(np.round(255 * values), 0, 255).astype(np.uint8))


def speckle_background(values: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Speckle at the level of the scan's top rows (the vitreous above the retina), in [0, 1]."""
    level = values[: max(1, round(BACKGROUND_SHARE * values.shape[0]))].mean()
    return np.clip(level * (1 + rng.standard_normal(shape)), 0, 1)


def _resample_width(width: int):
    def transform(image, rng):
        from PIL import Image

        return image.resize((width, image.height), Image.Resampling.LANCZOS)
    return transform


def _darker(image, rng):
    return _image(DARKER_GAIN * _gray(image) ** DARKER_GAMMA)


def wider_field(image, rng):
    """The scan shrunk to ``FIELD_FACTOR`` of its width in the middle of a frame of its own width."""
    from PIL import Image

    values = _gray(image)
    height, width = values.shape
    inner = max(1, round(FIELD_FACTOR * width))
    shrunk = _gray(image.convert("L").resize((inner, height), Image.Resampling.LANCZOS))
    framed = speckle_background(values, values.shape, rng)
    left = (width - inner) // 2
    framed[:, left:left + inner] = shrunk
    return _image(framed)


def narrower_field(image, rng):
    """The central ``FIELD_FACTOR`` of the width."""
    inner = max(1, round(FIELD_FACTOR * image.width))
    left = (image.width - inner) // 2
    return image.convert("L").crop((left, 0, left + inner, image.height))


def shifted_tilted(image, rng):
    """Rotated by ``TILT_DEGREES`` and moved down by ``SHIFT_SHARE`` of the height; speckle where uncovered."""
    from PIL import Image

    gray = image.convert("L")
    values = _gray(gray)
    shift = round(SHIFT_SHARE * gray.height)
    moved = gray.rotate(TILT_DEGREES, resample=Image.Resampling.BILINEAR, translate=(0, shift), fillcolor=0)
    covered = Image.new("L", gray.size, 255).rotate(TILT_DEGREES, resample=Image.Resampling.BILINEAR,
                                                     translate=(0, shift), fillcolor=0)
    weight = np.asarray(covered, dtype=np.float64) / 255.0
    return _image(_gray(moved) + (1 - weight) * speckle_background(values, values.shape, rng))


def speckled(image, rng):
    values = _gray(image)
    return _image(values * (1 + SPECKLE_SD * rng.standard_normal(values.shape)))


def lower_contrast(image, rng):
    return _image(CONTRAST_FLOOR + CONTRAST_GAIN * _gray(image))


def rgb_encoded(image, rng):
    return image.convert("L").convert("RGB")


VARIANTS: tuple[ExportVariant, ...] = (
    ExportVariant("as is", None),
    ExportVariant("re-encoded", lambda image, rng: image),
    ExportVariant("512 px", _resample_width(512)),
    ExportVariant("768 px", _resample_width(768)),
    ExportVariant("1536 px", _resample_width(1536)),
    ExportVariant("darker", _darker),
    ExportVariant("wider field", wider_field),
    ExportVariant("narrower field", narrower_field),
    ExportVariant("shifted, tilted", shifted_tilted),
    ExportVariant("speckle", speckled),
    ExportVariant("lower contrast", lower_contrast),
    ExportVariant("RGB-encoded", rgb_encoded),
)


def write_variant(items: Sequence[ImageItem], root: Path, variant: ExportVariant, folder: Path) -> tuple[ImageItem, ...]:
    """``items`` written as ``variant`` under ``folder`` (same relative paths), as new items."""
    from PIL import Image

    written = []
    for index, item in enumerate(items):
        target = folder / item.path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(item.path) as image:
            variant.transform(image.convert("L") if image.mode not in ("L", "RGB") else image,
                              np.random.default_rng(index)).save(target.with_suffix(".jpeg"), "JPEG", quality=JPEG_QUALITY)
        written.append(ImageItem(target.with_suffix(".jpeg"), item.label))
    return tuple(written)


def score_variants(model, items: Sequence[ImageItem], root: Path, preprocessing, batch_size: int,
                   class_names: Sequence[str], threshold: float | None = None) -> dict[str, dict]:
    """Accuracy, per-class sensitivity, urgent-referral sensitivity/specificity (``referral``: the
    predicted class; ``rule_referral``: the model's rule, ``P(CNV) + P(DME) >= threshold``, or the
    same as ``referral`` when None) and the labels, predictions and urgent scores of ``items`` in
    every variant, by ``model``."""
    from octreport.evaluation.metrics import compute_classification_metrics
    from octreport.evaluation.predict import predict_items
    from octreport.evaluation.referral import compute_referral_metrics

    urgent = [class_names.index(name) for name in ("CNV", "DME") if name in class_names]
    scores = {}
    with tempfile.TemporaryDirectory(prefix="octreport-export-variants-") as scratch:
        for variant in VARIANTS:
            variant_items = items if variant.transform is None else write_variant(
                items, root, variant, Path(scratch) / variant.name.replace(" ", "-"))
            predictions = predict_items(model, variant_items, preprocessing, batch_size)
            metrics = compute_classification_metrics(predictions.labels, predictions.probabilities, class_names)
            referral = compute_referral_metrics(predictions.labels, predictions.probabilities, class_names)
            ruled = compute_referral_metrics(predictions.labels, predictions.probabilities, class_names, threshold)
            scores[variant.name] = {
                "accuracy": metrics.accuracy,
                "sensitivity": {row.name: row.recall for row in metrics.per_class},
                "referral": referral.to_dict() if referral else None,
                "rule_referral": ruled.to_dict() if ruled else None,
                "labels": predictions.labels.tolist(),
                "predicted": predictions.predicted.tolist(),
                "urgent_scores": predictions.probabilities[:, urgent].sum(axis=1).tolist(),
            }
    return scores


def _pooled_urgent(results: Sequence[dict], name: str, key: str) -> str:
    """Urgent sensitivity / specificity pooled over the folds, from the counts of ``key``."""
    counts = [r["export_variants"][name].get(key) for r in results]
    if any(c is None for c in counts):
        return "-"
    tp, fn, tn, fp = (sum(c[k] for c in counts) for k in ("true_positive", "false_negative", "true_negative", "false_positive"))
    return f"{tp / max(1, tp + fn):.1%} / {tn / max(1, tn + fp):.1%}"


def variants_table(results: Sequence[dict]) -> str:
    """Markdown: per variant, accuracy per fold, pooled over folds, the change from ``as is``, and
    the pooled urgent sensitivity / specificity by the predicted class and by each fold's referral rule."""
    names = [v.name for v in VARIANTS]
    pooled = {}
    for name in names:
        labels = np.concatenate([r["export_variants"][name]["labels"] for r in results])
        predicted = np.concatenate([r["export_variants"][name]["predicted"] for r in results])
        pooled[name] = (float((labels == predicted).mean()), len(labels))
    header = ("| export | " + " | ".join(f"fold {r['fold'] + 1}" for r in results)
              + " | pooled | change | urgent sens / spec (argmax) | urgent sens / spec (rule) |")
    lines = [header, "|" + "---|" * (len(results) + 5)]
    for name in names:
        cells = [f"{r['export_variants'][name]['accuracy']:.1%}" for r in results]
        accuracy, n = pooled[name]
        change = 100 * (accuracy - pooled["as is"][0])
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {accuracy:.1%} of {n} | {change:+.1f} | "
                     f"{_pooled_urgent(results, name, 'referral')} | {_pooled_urgent(results, name, 'rule_referral')} |")
    return "\n".join(lines)
