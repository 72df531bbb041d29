"""The run document: everything a run folder is written from, computed once and frozen.

:func:`build_run_document` takes the finished :class:`~octreport.document.results.RunResults`
and judges them once: the ``metrics.json`` document, the gates (judged on it), the manifest, the
predictions file and the comparison with an earlier run. The one publisher
(:mod:`octreport.pipeline.publish`) writes every file of the run folder from it and changes
nothing in it: what only publishing knows (how long the figures and the HTML took, the hashes of
the files it wrote) goes into new dicts beside the document's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from octreport.audit.compare import LoadedRun, RunComparison, compare_runs
from octreport.audit.gates import GateConfig, GateResult, evaluate_gates, failed_gate_messages, gates_entry
from octreport.audit.manifest import outcome_for
from octreport.audit.model_card import ModelCard
from octreport.config import TrainConfig
from octreport.data.fingerprint import DatasetFingerprint
from octreport.data.layout import item_name
from octreport.document.manifest import manifest_for_run
from octreport.document.metrics import metrics_document, timings_entry
from octreport.document.results import RunResults
from octreport.evaluation.predictions_file import RunPredictions, run_predictions
from octreport.evaluation.referral import urgent_calls
from octreport.provenance import timestamp_now


@dataclass(frozen=True, eq=False)
class RunDocument:
    """One run, complete: ``metrics`` is ``metrics.json`` and ``manifest`` is ``manifest.json`` as
    far as the computation knows them (the publisher adds the timings of publishing and the hashes
    of the files it writes, in copies); ``timings`` the seconds of each computing stage."""

    results: RunResults
    card: ModelCard
    gates: tuple[GateResult, ...]
    metrics: Mapping[str, Any]
    manifest: Mapping[str, Any]
    predictions: RunPredictions
    comparison: RunComparison | None
    timings: Mapping[str, float]

    @property
    def failed_gates(self) -> tuple[str, ...]:
        return failed_gate_messages(self.gates)


def build_run_document(
    results: RunResults,
    *,
    card: ModelCard,
    gate_config: GateConfig,
    train_config: TrainConfig,
    fingerprint: DatasetFingerprint,
    timings: Mapping[str, float],
    baseline: LoadedRun | None = None,
    model_files: tuple[Path, ...] = (),
    recorded_model_file: Path | None = None,
) -> RunDocument:
    """Judge ``results`` once: the metrics document, the gates on it, the manifest (hashing
    ``model_files``), the predictions and, with ``baseline``, the comparison with that run."""
    core = metrics_document(results, card, timings)
    gates = tuple(evaluate_gates(core, gate_config))
    metrics = {**core, "gates": gates_entry(gates)}
    manifest = manifest_for_run(
        results, finished_at=timestamp_now(), outcome=outcome_for(gates), fingerprint=fingerprint, gates=gates,
        gate_config=gate_config, train_config=train_config, artifacts=model_files, recorded_model_file=recorded_model_file,
    )
    predictions = recorded_predictions(results)
    comparison = None
    if baseline is not None:
        current = LoadedRun(name="this run", path=Path("."), metrics=metrics, manifest=manifest, predictions=predictions)
        comparison = compare_runs(baseline, current, results.report_config.bootstrap)
    return RunDocument(results, card, gates, metrics, manifest, predictions, comparison, MappingProxyType(dict(timings)))


def recorded_predictions(results: RunResults) -> RunPredictions:
    """What predictions.csv records of a run: each evaluated image's path relative to the data root,
    and, for the four OCT classes, the urgent call of the rule the report applied."""
    predictions, data, rule = results.predictions, results.data, results.referral_rule
    urgent = None if rule is None else urgent_calls(predictions.probabilities, data.class_names, rule.threshold)
    return run_predictions([item_name(item, data.root) for item in predictions.items], predictions.labels,
                           predictions.probabilities, data.class_names, urgent)


def published_metrics(document: RunDocument, publishing_timings: Mapping[str, float]) -> dict[str, Any]:
    """metrics.json as written: the document's, its timings extended by those of publishing."""
    return {**document.metrics, "timings_seconds": timings_entry({**document.timings, **publishing_timings})}
