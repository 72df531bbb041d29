"""Run folders written by hand for the tests that read them (compare, history, gates, heat-map
drift): a metrics.json and a manifest.json shaped as the pipeline writes them, and the folder;
and confident predictions whose mistakes a test chooses (compare, paired tests).

A document carries the parts every reader expects and, beyond them, only the sections a test
gives: a test that checks what happens when a section is absent gets a document without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from conftest import OCT_CLASSES

OCT = list(OCT_CLASSES)
STARTED_AT = "2026-01-01T10:00:00+00:00"


def confident(y: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Confident probabilities over the four classes (0.85 and 0.05) that put each image in its true
    class ``y`` where ``right``, else in the next class."""
    p = np.full((y.size, 4), 0.05)
    p[np.arange(y.size), np.where(right, y, (y + 1) % 4)] = 0.85
    return p


def referral_section(urgent_sensitivity: float = 0.96, weighted_error: float = 0.12, *,
                     specificity: float | None = 0.9, roc_auc: float | None = 0.95) -> dict:
    """metrics.json's ``referral``: the urgent-referral sensitivity and the Kermany weighted error."""
    section = {"urgent_sensitivity": urgent_sensitivity, "weighted_error": weighted_error}
    if specificity is not None:
        section["urgent_specificity"] = specificity
    if roc_auc is not None:
        section["urgent_roc_auc"] = roc_auc
    return section


def metrics_document(accuracy: float = 0.9, *, class_names: Sequence[str] = OCT, chance: float = 0.25,
                     macro_f1: float = 0.79, recalls: Sequence[float | None] | None = None,
                     confusion: Sequence[Sequence[int]] | None = None, referral: dict | None = None,
                     health: list | dict | None = None, gates: list[dict] | None = None,
                     norms: dict[str, tuple[float, float, float]] | None = None, epochs: int | None = None,
                     keras_version: str = "3.15.1", started_at: str = STARTED_AT, **sections: Any) -> dict:
    """A metrics.json: ``classification`` always (with ``per_class`` when ``recalls`` are given, and
    its support and confusion matrix when ``confusion`` is); ``referral``, ``layer_health``, the
    ``gates`` results, the filters' norms (``norms``: ``{layer: (min, median, max)}``) and the
    configuration a run of ``epochs`` records only when given; ``sections`` added as they are."""
    classification: dict[str, Any] = {
        "class_names": list(class_names), "accuracy": accuracy, "chance_level": chance,
        "macro": {"precision": 0.8, "recall": accuracy, "f1": macro_f1},
        "weighted": {"precision": 0.8, "recall": accuracy, "f1": macro_f1},
        "macro_roc_auc": 0.9,
    }
    if recalls is not None:
        rows = confusion if confusion is not None else [None] * len(recalls)
        classification["per_class"] = [
            {"name": name, "precision": 0.8, "recall": recall, "f1": 0.7, "roc_auc": 0.9,
             **({"support": sum(row)} if row is not None else {})}
            for name, recall, row in zip(class_names, recalls, rows)
        ]
    if confusion is not None:
        classification["confusion_matrix"] = [list(row) for row in confusion]
    document: dict[str, Any] = {"schema_version": 1, "started_at": started_at, "classification": classification}
    if referral is not None:
        document["referral"] = referral
    if health is not None:
        document["layer_health"] = health
    if gates is not None:
        document["gates"] = {"passed": all(g["passed"] for g in gates), "results": gates}
    if norms is not None:
        document["filters"] = [{"layer": layer, "l2_norm": {"min": lo, "median": mid, "max": hi}}
                               for layer, (lo, mid, hi) in norms.items()]
    if epochs is not None:
        document.update({
            "train_config": {"epochs": epochs, "seed": 0, "preprocessing": {"height": 48}},
            "report_config": {"images_per_class": 2},
            "command_line": f"octreport run --epochs {epochs}",
            "versions": {"octreport": "0.1.0", "keras": keras_version},
        })
    document.update(sections)
    return document


def gate_result(name: str, value: float, threshold: float, passed: bool, message: str) -> dict:
    return {"name": name, "threshold": threshold, "value": value, "passed": passed, "message": message}


def manifest_document(weights: str = "w1", data: str = "d1", *, epochs: int = 3, height: int = 48,
                      keras_version: str = "3.15.1", out_root: str = "/srv/runs") -> dict:
    """A manifest.json: the model (its file's hash is ``weights`` reversed), the data fingerprint,
    the configuration and the versions. ``out_root`` is where the run was written, which is not a
    change of configuration."""
    return {
        "manifest_version": 1, "outcome": "passed", "started_at": STARTED_AT,
        "command_line": f"octreport run --epochs {epochs}",
        "model": {"source": "trained in this run", "name": "m", "file": "model.keras", "file_sha256": weights[::-1],
                  "weights_sha256": weights},
        "data": {"sha256": data, "root": "/data", "n_files": 10},
        "config": {"train": {"epochs": epochs, "seed": 0, "preprocessing": {"height": height}},
                   "report": {"images_per_class": 2, "out_root": out_root, "compare_to": None},
                   "gates": {"min_accuracy": None}},
        "versions": {"octreport": "0.1.0", "keras": keras_version},
        "gates": [], "gates_passed": None, "artifacts": {},
    }


def write_run(root: Path, name: str, metrics: dict | str | None, manifest: dict | None = None,
              report: str | None = "report.html") -> Path:
    """``root/name`` with the documents given (``metrics`` as text is written as it is: a corrupt
    file) and an empty report file (none when ``report`` is None)."""
    folder = root / name
    folder.mkdir(parents=True)
    if metrics is not None:
        (folder / "metrics.json").write_text(metrics if isinstance(metrics, str) else json.dumps(metrics, indent=2),
                                             encoding="utf-8")
    if manifest is not None:
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    if report:
        (folder / report).write_text("<html></html>", encoding="utf-8")
    return folder
