"""The manifest of a run that got as far as :class:`~octreport.document.results.RunResults`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from octreport.audit.gates import GateConfig, GateResult
from octreport.cache import weights_cache_folder
from octreport.audit.manifest import build_manifest, hash_artifacts, identify_model, training_mode_name
from octreport.config import TrainConfig
from octreport.data.fingerprint import DatasetFingerprint
from octreport.document.results import RunResults


def manifest_for_run(
    results: RunResults,
    *,
    finished_at: datetime | str,
    outcome: str,
    fingerprint: DatasetFingerprint | None,
    gates: Sequence[GateResult] = (),
    gate_config: GateConfig | None = None,
    train_config: TrainConfig | None = None,
    artifacts: Sequence[Path] = (),
    include_file_list: bool = True,
    recorded_model_file: Path | None = None,
) -> dict[str, Any]:
    """:func:`build_manifest` for a run that got as far as :class:`~octreport.document.results.RunResults`.

    ``train_config``: the configuration the pipeline ran with; pass it for a loaded model too, as
    its seed and fractions made the data splits (``results.train_config`` is None then).
    ``artifacts``: run-folder files to hash (those that exist). ``recorded_model_file``: where the
    model file is recorded to be, when that is not where it was hashed (a model trained in the run
    is hashed in the unfinished run folder and recorded where the published run keeps it).
    """
    effective_train = train_config or results.train_config
    trained = results.train_config
    identity = identify_model(results.model, results.model_path, results.model_source)
    choice = results.input_scale
    identity = replace(identity, file=recorded_model_file or identity.file,
                       input_scale=None if choice is None else choice.to_dict(), registry=results.model_registry)
    return build_manifest(
        training_mode=None if trained is None else training_mode_name(trained.deterministic),
        model=identity,
        data=fingerprint,
        class_names=results.data.class_names,
        preprocessing=results.preprocessing.to_dict(),
        train_config=None if effective_train is None else effective_train.to_dict(),
        report_config=results.report_config.to_dict(),
        command_line=results.command_line,
        started_at=results.started_at,
        finished_at=finished_at,
        outcome=outcome,
        gates=gates,
        gate_config=gate_config,
        artifacts=hash_artifacts(artifacts),
        include_file_list=include_file_list,
        cache=cache_record(results),
    )


def cache_record(results: RunResults) -> dict[str, Any] | None:
    """The weights cache's folder and, per part it can hold (the maximised inputs of each drawn
    layer, ``maximisation LAYER PATH``), whether the run read it from there or computed it; None
    when the run used no cache."""
    config = results.report_config
    if not config.cache:
        return None
    parts = {f"maximisation {f.grid.layer.path}": f.maximised.source
             for f in results.visuals.filters if f.maximised is not None}
    return {"folder": str(weights_cache_folder(config.cache_dir)), "parts": parts}
