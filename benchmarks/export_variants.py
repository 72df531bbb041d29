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


@dataclass(frozen=True)
class ExportVariant:
    name: str
    transform: Callable | None  # PIL image -> PIL image; None: the original files


def _resample_width(width: int):
    def transform(image):
        from PIL import Image

        return image.resize((width, image.height), Image.Resampling.LANCZOS)
    return transform


def _darker(image):
    values = np.asarray(image, dtype=np.float64) / 255.0
    from PIL import Image

    return Image.fromarray(np.clip(np.round(255 * DARKER_GAIN * values ** DARKER_GAMMA), 0, 255).astype(np.uint8))


VARIANTS: tuple[ExportVariant, ...] = (
    ExportVariant("as is", None),
    ExportVariant("re-encoded", lambda image: image),
    ExportVariant("512 px", _resample_width(512)),
    ExportVariant("768 px", _resample_width(768)),
    ExportVariant("1536 px", _resample_width(1536)),
    ExportVariant("darker", _darker),
)


def write_variant(items: Sequence[ImageItem], root: Path, variant: ExportVariant, folder: Path) -> tuple[ImageItem, ...]:
    """``items`` written as ``variant`` under ``folder`` (same relative paths), as new items."""
    from PIL import Image

    written = []
    for item in items:
        target = folder / item.path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(item.path) as image:
            variant.transform(image.convert("L") if image.mode not in ("L", "RGB") else image).save(
                target.with_suffix(".jpeg"), "JPEG", quality=JPEG_QUALITY)
        written.append(ImageItem(target.with_suffix(".jpeg"), item.label))
    return tuple(written)


def score_variants(model, items: Sequence[ImageItem], root: Path, preprocessing, batch_size: int,
                   class_names: Sequence[str]) -> dict[str, dict]:
    """Accuracy, per-class sensitivity, urgent-referral sensitivity/specificity and the labels and
    predictions of ``items`` in every variant, by ``model``."""
    from octreport.evaluation.metrics import compute_classification_metrics
    from octreport.evaluation.predict import predict_items
    from octreport.evaluation.referral import compute_referral_metrics

    scores = {}
    with tempfile.TemporaryDirectory(prefix="octreport-export-variants-") as scratch:
        for variant in VARIANTS:
            variant_items = items if variant.transform is None else write_variant(
                items, root, variant, Path(scratch) / variant.name.replace(" ", "-"))
            predictions = predict_items(model, variant_items, preprocessing, batch_size)
            metrics = compute_classification_metrics(predictions.labels, predictions.probabilities, class_names)
            referral = compute_referral_metrics(predictions.labels, predictions.probabilities, class_names)
            scores[variant.name] = {
                "accuracy": metrics.accuracy,
                "sensitivity": {row.name: row.recall for row in metrics.per_class},
                "referral": referral.to_dict() if referral else None,
                "labels": predictions.labels.tolist(),
                "predicted": predictions.predicted.tolist(),
            }
    return scores


def variants_table(results: Sequence[dict]) -> str:
    """Markdown: per variant, accuracy per fold, pooled over folds, and the change from ``as is``."""
    names = [v.name for v in VARIANTS]
    pooled = {}
    for name in names:
        labels = np.concatenate([r["export_variants"][name]["labels"] for r in results])
        predicted = np.concatenate([r["export_variants"][name]["predicted"] for r in results])
        pooled[name] = (float((labels == predicted).mean()), len(labels))
    header = "| export | " + " | ".join(f"fold {r['fold'] + 1}" for r in results) + " | pooled | change |"
    lines = [header, "|" + "---|" * (len(results) + 3)]
    for name in names:
        cells = [f"{r['export_variants'][name]['accuracy']:.1%}" for r in results]
        accuracy, n = pooled[name]
        change = 100 * (accuracy - pooled["as is"][0])
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {accuracy:.1%} of {n} | {change:+.1f} |")
    return "\n".join(lines)
