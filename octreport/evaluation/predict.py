"""Stream one split through a model once and keep only what the metrics need."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from octreport.data.dicom import DICOM_SUFFIX, DicomProblem, frame_pixels
from octreport.data.files import FileDigest, FileReads, read_image_bytes
from octreport.data.image_facts import FactsCollector, ImageFacts
from octreport.data.layout import ImageItem
from octreport.data.pipeline import FACTS, image_dataset, missing_indices, read_once_dataset
from octreport.data.preprocessing import Preprocessing
from octreport.data.validation import SkippedFile
from octreport.engine.layer_health import LayerHealth, predict_with_layer_health
from octreport.engine.layers import ConvLayerInfo
from octreport.engine.top_activations import TopActivationsAccumulator
from octreport.engine.streaming import PASSED, Step, cached_runner, compiled_forward, concatenated
from octreport.progress import Progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Predictions:
    """``probabilities`` is ``(N, K)``; row i belongs to ``items[i]`` with true class ``labels[i]``."""

    items: tuple[ImageItem, ...]
    labels: np.ndarray
    probabilities: np.ndarray
    skipped: tuple[SkippedFile, ...]

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)


def predict_items(
    model: keras.Model, items: Sequence[ImageItem], preprocessing: Preprocessing, batch_size: int = 32,
    batches: Any = None,
) -> Predictions:
    """Predict every image of ``items`` in one streaming pass (memory stays at a few batches),
    the forward pass compiled once per model (:mod:`octreport.engine.streaming`). ``batches``: the
    items' ``(images, labels, indices)`` batches from elsewhere (a decode cache), instead of
    decoding the files."""
    runner = cached_runner(model, ("predict",), lambda: _forward_step(compiled_forward(model)))
    probabilities, indices = [], []
    progress = Progress(len(items))
    if batches is None:
        batches = image_dataset(items, preprocessing, batch_size, with_index=True)
    for batch in runner(batches):
        probabilities.append(batch["probabilities"])
        indices.append(batch["indices"])
        progress.advance(len(indices[-1]))
    num_classes = int(model.outputs[0].shape[-1])
    return _predictions(
        items, concatenated(probabilities, (0, num_classes), np.float64), concatenated(indices, (0,), np.int64)
    )


def _forward_step(forward) -> Step:
    """The model's prediction for a batch; ``forward`` (:func:`compiled_forward`) holds the model
    weakly, so that the cached step does not keep it alive."""
    return lambda images, valid: {"probabilities": forward(images)}


def evaluate_with_layer_health(
    model: keras.Model,
    layers: Sequence[ConvLayerInfo],
    items: Sequence[ImageItem],
    preprocessing: Preprocessing,
    batch_size: int = 32,
    top: TopActivationsAccumulator | None = None,
) -> tuple[Predictions, tuple[LayerHealth, ...]]:
    """Like :func:`predict_items`, auditing ``layers`` in the same forward pass (one model returns
    the conv outputs and the prediction), so the layer audit costs no second pass over the data.
    ``top`` (made for ``layers``) also collects each filter's strongest images in that pass; the
    images it names are positions in ``items``. Each file is read once
    (:func:`evaluate_files`, whose image facts and file hashes this leaves out)."""
    evaluated = evaluate_files(model, layers, items, preprocessing, batch_size, top)
    return evaluated.predictions, evaluated.health


@dataclass(frozen=True, eq=False)
class EvaluatedFiles:
    """What the one read of each evaluated file gave: the predictions and layer health, the image
    facts of every item (``decoded=False`` where a file could not be read or decoded) and the size
    and SHA-256 of every file read."""

    predictions: Predictions
    health: tuple[LayerHealth, ...]
    facts: ImageFacts
    digests: Mapping[Path, FileDigest]


def evaluate_files(
    model: keras.Model,
    layers: Sequence[ConvLayerInfo],
    items: Sequence[ImageItem],
    preprocessing: Preprocessing,
    batch_size: int = 32,
    top: TopActivationsAccumulator | None = None,
    on_read: Callable[[Path, bytes], None] | None = None,
) -> EvaluatedFiles:
    """:func:`evaluate_with_layer_health`, with what the same read of each file gives besides: each
    file is read once (:class:`~octreport.data.files.FileReads`), and its bytes give its SHA-256,
    the model's input and its image facts, in the one streaming pass of the compiled step.
    ``on_read(path, bytes)``: called once per file read, for anything else its bytes give (a
    DICOM file's header facts, :class:`~octreport.data.dicom_headers.DicomHeaderReads`)."""
    reads = FileReads([item.path for item in items], on_read)
    collector = FactsCollector(len(items))

    def collect(batch: dict[str, np.ndarray]) -> None:
        collector.add(batch["indices"], *(batch[PASSED + name] for name in FACTS))

    batches = read_once_dataset(items, preprocessing, reads, batch_size)
    streamed = predict_with_layer_health(model, layers, batches, progress=Progress(len(items), "evaluated and audited"),
                                         top=top, on_batch=collect)
    predictions = _predictions(items, streamed.probabilities, streamed.indices)
    return EvaluatedFiles(predictions, streamed.health, collector.facts(reads.sizes()), reads.digests())


def _predictions(items: Sequence[ImageItem], probabilities: np.ndarray, seen: np.ndarray) -> Predictions:
    skipped = tuple(SkippedFile(items[i].path, _skip_reason(items[i])) for i in missing_indices(len(items), seen))
    for file in skipped:
        log.warning("skipped %s: %s", file.path, file.reason)
    kept = tuple(items[int(i)] for i in seen)
    labels = np.array([item.label for item in kept], dtype=np.int64)
    return Predictions(kept, labels, probabilities.astype(np.float64), skipped)


def _skip_reason(item: ImageItem) -> str:
    """Why an image never came out of the stream. A DICOM file's reason is known only to its decode
    (a constant image, damaged compressed frames: the check before the run reads its header only),
    so such a file, and only such a file, is read again to name it."""
    reason = "could not be decoded" if item.frame is None else f"frame {item.frame} could not be decoded"
    if item.path.suffix.lower() != DICOM_SUFFIX:
        return reason
    try:
        frame_pixels(read_image_bytes(item.path), 1, item.frame)
    except DicomProblem as problem:
        return f"{reason}: {problem}"
    except OSError:
        pass
    return reason
