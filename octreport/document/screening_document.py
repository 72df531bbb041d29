"""The document of a screening run (unlabelled scans): what the model would do with them, the
data shift against its training scans and the data audit, judged once by the shift and data
gates, with the metrics.json, predictions.csv and manifest.json it is published as.

No accuracy and no per-class metric: the scans have no labels, and the document says so
(``metrics.json``: ``"kind": "screening"``, ``screening.labels`` null)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import keras

from octreport.audit.gates import GateConfig, GateResult, data_gates, failed_gate_messages, gates_entry, shift_gate
from octreport.audit.manifest import build_manifest, identify_model, outcome_for
from octreport.config import ReportConfig, TrainConfig
from octreport.data.acquisition_profile import ShiftReport
from octreport.data.data_audit import DataAudit
from octreport.data.dataset import PreparedData
from octreport.data.fingerprint import DatasetFingerprint
from octreport.data.layout import item_name
from octreport.data.preprocessing import Preprocessing
from octreport.engine.visuals import Visuals
from octreport.evaluation.predict import Predictions
from octreport.evaluation.predictions_file import RunPredictions, run_predictions
from octreport.evaluation.screening import Screening
from octreport.provenance import timestamp_now

SCREENING_SCHEMA = 1


@dataclass(frozen=True, eq=False)
class ScreeningResults:
    """What a screening run computed, built once."""

    data: PreparedData
    model: keras.Model
    model_source: str
    model_path: Path | None
    class_names: tuple[str, ...]
    preprocessing: Preprocessing
    predictions: Predictions
    screening: Screening
    shift: ShiftReport
    audit: DataAudit
    visuals: Visuals
    report_config: ReportConfig
    command_line: str
    started_at: str
    model_registry: Mapping[str, Any] | None = None
    """The MLflow registry entry of a ``models:/`` model (manifest ``model.registry``), as for a labelled run."""

    @property
    def skipped(self):
        return self.data.skipped + self.predictions.skipped


@dataclass(frozen=True, eq=False)
class ScreeningDocument:
    results: ScreeningResults
    gates: tuple[GateResult, ...]
    metrics: Mapping[str, Any]
    manifest: Mapping[str, Any]
    predictions: RunPredictions

    @property
    def failed_gates(self) -> tuple[str, ...]:
        return failed_gate_messages(self.gates)


def build_screening_document(results: ScreeningResults, fingerprint: DatasetFingerprint, *, gate_config: GateConfig,
                             train_config: TrainConfig) -> ScreeningDocument:
    data = results.data
    core = {
        "schema_version": SCREENING_SCHEMA, "kind": "screening", "started_at": results.started_at,
        "model": {"source": results.model_source, "class_names": list(results.class_names),
                  "preprocessing": results.preprocessing.to_dict()},
        "data": {"root": str(data.root), "layout": data.layout, "split_note": data.split_note,
                 "evaluated": {"split": "all", "images": len(results.predictions.items), "why": data.split_note},
                 "skipped_files": [s.to_dict() for s in results.skipped],
                 "ignored_files": [str(p) for p in data.ignored_files]},
        "screening": results.screening.to_dict(),
        "data_shift": results.shift.to_dict(),
        "data_audit": results.audit.to_dict(),
    }
    gates = tuple(data_gates(core, gate_config)) + ((shift_gate(core),) if gate_config.fail_on_shift else ())
    metrics = {**core, "gates": gates_entry(gates)}
    identity = replace(identify_model(results.model, results.model_path, results.model_source),
                       registry=results.model_registry)
    manifest = build_manifest(
        model=identity, class_names=results.class_names, preprocessing=results.preprocessing.to_dict(),
        data=fingerprint, train_config=train_config.to_dict(), report_config=results.report_config.to_dict(),
        command_line=results.command_line, started_at=results.started_at, finished_at=timestamp_now(),
        outcome=outcome_for(gates), gates=gates, gate_config=gate_config,
    )
    predictions = results.predictions
    record = run_predictions([item_name(item, data.root) for item in predictions.items],
                             [-1] * len(predictions.items), predictions.probabilities, results.class_names)
    return ScreeningDocument(results, gates, metrics, manifest, record)
