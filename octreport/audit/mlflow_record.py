"""What a finished run folder is, as one MLflow run: params, metrics, step metrics, tags, artifacts.

Pure: reads ``metrics.json`` and ``manifest.json`` of a complete run folder (a model run or a data
audit) and returns a frozen :class:`MlflowRecord`; imports no MLflow and writes nothing.
:mod:`octreport.audit.mlflow_tracking` sends it to a tracking server.

- params: the run's configuration as in the manifest (``config.train``, ``config.report``,
  ``config.gates``), flattened with dots (``train.epochs``), each value as JSON (strings bare);
- metrics: the headline numbers, each with ``.low`` and ``.high`` where the run computed an
  interval (``accuracy``, ``macro.f1``, ``macro_roc_auc``, ``per_class.CNV.recall``,
  ``per_class.CNV.precision``, ``referral.urgent_sensitivity``, ``referral.urgent_specificity``,
  ``referral.weighted_error``, ``calibration.ece``, ``calibration.brier``), the heat-map checks'
  scores (``heatmap.gradcam.deletion_area``, ...), the layer-health counts and the data-audit counts;
- step metrics: the training curves (``train.loss``, ``train.val_accuracy``, ...) by epoch;
- tags: ``octreport.version``, the model and data fingerprints, each gate's outcome, the run's
  exit status (``octreport.outcome``: ``passed`` or ``failed gates``; ``octreport.exit_code``: 0 or 5) and the run folder.

What is private stays in the run folder: the DICOM salt is never a param (``report.dicom_salt_set``
says whether one was set), ``manifest.json`` is uploaded as a masked copy (:func:`masked_manifest`:
the salt and any ``user:password@`` of a URL in ``command_line`` masked), and so is the copy of it
that ``report.pdf`` embeds (:mod:`octreport.audit.mlflow_tracking` uploads a PDF with the masked
one). The documents are read with :mod:`octreport.guarded` (size and depth caps); a document not
shaped as octreport writes it is a :class:`ConfigError` naming the folder, never a traceback.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from octreport.audit.manifest import MANIFEST_NAME, MODEL_TRAINED_HERE, OUTCOME_FAILED_GATES
from octreport.errors import ConfigError, GateFailed
from octreport.guarded import MAX_RUN_FILE_BYTES, SHAPE_ERRORS, expect, not_shaped, read_json

GATE_FAILED_EXIT_CODE = GateFailed.exit_code

METRICS_NAME = "metrics.json"
ARTIFACT_NAMES = ("report.pdf", "report.html", "metrics.json", "manifest.json", "predictions.csv")
TRAINED_MODEL_NAME = "model.keras"
TAG_PREFIX = "octreport."
RUN_FOLDER_TAG = "octreport.run_folder"
PARAM_VALUE_LIMIT = 6000
"""MLflow's longest parameter value; a longer one (a long --image list) is cut, whole in manifest.json."""

SALT_FIELD = "dicom_salt"
MASKED = "(set; not logged)"
_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]*@")
_NOT_A_METRIC_NAME = re.compile(r"[^A-Za-z0-9_\-. /]")
_DATA_AUDIT_COUNTS = ("leaked_patients", "exact_duplicates_across_splits", "near_duplicates_across_splits",
                      "duplicates_across_splits", "label_conflicts", "same_patient_similar_pairs", "images_without_patient")
_HEATMAP_SCORES = ("deletion_area", "insertion_area", "drop_at_10pct")


@dataclass(frozen=True)
class MlflowRecord:
    """One finished run folder as an MLflow run. ``model_file``: the model the run trained (None
    when it loaded one); ``registry_model``: the manifest's ``model.registry`` entry when the run
    audited a model from an MLflow registry (``uri``, ``name``, ``version``, ``run_id``)."""

    run_folder: Path
    run_name: str
    params: Mapping[str, str]
    metrics: Mapping[str, float]
    step_metrics: Mapping[str, tuple[float, ...]]
    tags: Mapping[str, str]
    artifacts: tuple[Path, ...]
    model_card: Mapping[str, Any] | None
    model_file: Path | None
    registry_model: Mapping[str, Any] | None
    gates_passed: bool | None
    """True or False: every gate passed or not; None: no gate ran."""
    kind: str = "report"
    """``run`` (trained here), ``report`` (a given model), ``screening`` or ``data-audit``."""
    evaluated_classes: tuple[str, ...] = ()
    all_classes: tuple[str, ...] = ()
    """The classes the metrics are about, and the model's classes (more when the data held a subset)."""
    replaced_artifacts: Mapping[str, bytes] | None = None
    """Artifacts uploaded as these bytes instead of the run folder's file (``manifest.json`` masked)."""

    @property
    def accuracy(self) -> float | None:
        return self.metrics.get("accuracy")


def read_run_folder(run_dir: Path) -> MlflowRecord:
    """The record of the complete run folder ``run_dir``; a folder without readable ``metrics.json``
    and ``manifest.json`` (missing, too large, too deep, not JSON, not shaped as octreport writes
    them) is refused with a :class:`ConfigError` (exit 2)."""
    run_dir = Path(run_dir).resolve()
    documents = []
    for name in (METRICS_NAME, MANIFEST_NAME):
        what = f"{name} of the run folder '{run_dir}'"
        try:
            document = read_json(run_dir / name, what, ConfigError, MAX_RUN_FILE_BYTES)
        except ConfigError as error:
            raise ConfigError(f"'{run_dir}' is not a finished octreport run folder: {error}") from None
        documents.append(expect(document, dict, what))
    return record_from_documents(run_dir, *documents)


def record_from_documents(run_dir: Path, metrics: Mapping[str, Any], manifest: Mapping[str, Any]) -> MlflowRecord:
    """:func:`read_run_folder` on documents already read; :class:`ConfigError` when they are not
    shaped as octreport writes them."""
    try:
        return _record(run_dir, metrics, manifest)
    except SHAPE_ERRORS as error:
        raise ConfigError(not_shaped(error, f"the run folder '{run_dir}' (metrics.json, manifest.json)")
                          + "; it cannot be logged to MLflow.") from None


def _record(run_dir: Path, metrics: Mapping[str, Any], manifest: Mapping[str, Any]) -> MlflowRecord:
    model = _mapping(manifest.get("model"))
    trained = run_dir / TRAINED_MODEL_NAME
    gates = [_mapping(gate) for gate in _list(_mapping(metrics.get("gates")).get("results"))]
    config = _mapping(manifest.get("config"))
    masked = masked_manifest(manifest)
    evaluated, every = evaluated_classes(metrics)
    return MlflowRecord(
        run_folder=run_dir,
        run_name=run_dir.name,
        params=flatten_params(_without_salt(config)),
        metrics=headline_metrics(metrics),
        step_metrics=training_curves(metrics),
        tags=run_tags(run_dir, metrics, manifest),
        artifacts=tuple(run_dir / name for name in ARTIFACT_NAMES if (run_dir / name).is_file()),
        model_card=metrics.get("card") if isinstance(metrics.get("card"), Mapping) else None,
        model_file=trained if model.get("file") and trained.is_file() else None,
        registry_model=model.get("registry") if isinstance(model.get("registry"), Mapping) else None,
        gates_passed=all(gate.get("passed") for gate in gates) if gates else None,
        kind=run_kind(metrics, manifest),
        evaluated_classes=evaluated,
        all_classes=every,
        replaced_artifacts={MANIFEST_NAME: masked} if masked is not None else None,
    )


def run_kind(metrics: Mapping[str, Any], manifest: Mapping[str, Any]) -> str:
    """``data-audit``, ``screening``, ``run`` (the model was trained in the run) or ``report``."""
    kind = metrics.get("kind")
    if kind in ("data-audit", "screening"):
        return str(kind)
    source = _mapping(manifest.get("model")).get("source")
    return "run" if source == MODEL_TRAINED_HERE else "report"


def evaluated_classes(metrics: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the classes the metrics are about, all the model's classes): a data folder holding some of
    the model's classes (``data.class_folders`` null for the others) is evaluated on those alone."""
    data = _mapping(metrics.get("data"))
    every = tuple(str(name) for name in _list(data.get("class_names")))
    folders = data.get("class_folders")
    if isinstance(folders, Mapping) and folders:
        return tuple(str(name) for name, folder in folders.items() if folder), every
    return every, every


def masked_manifest(manifest: Mapping[str, Any]) -> bytes | None:
    """``manifest`` as JSON with the DICOM salt (``config.report.dicom_salt`` and a ``--dicom-salt``
    in ``command_line``) masked and any ``user:password@`` of a URL in ``command_line`` removed;
    None when there is nothing to mask (the run folder's file is uploaded as it is)."""
    config = _mapping(manifest.get("config"))
    report = _mapping(config.get("report"))
    command_line = manifest.get("command_line")
    masked_line = masked_command_line(command_line) if isinstance(command_line, str) else command_line
    if not report.get(SALT_FIELD) and masked_line == command_line:
        return None
    copy = dict(manifest)
    if report.get(SALT_FIELD):
        copy["config"] = {**config, "report": {**report, SALT_FIELD: MASKED}}
    copy["command_line"] = masked_line
    return (json.dumps(copy, indent=2) + "\n").encode("utf-8")


def masked_command_line(command_line: str) -> str:
    """``command_line`` with the value of ``--dicom-salt`` masked and credentials taken out of URLs."""
    try:
        words = shlex.split(command_line)
    except ValueError:
        return without_credentials(re.sub(r"(--dicom-salt[= ])\S+", r"\1***", command_line))
    for index, word in enumerate(words):
        if word.startswith("--dicom-salt="):
            words[index] = "--dicom-salt=***"
        elif index and words[index - 1] == "--dicom-salt":
            words[index] = "***"
    return without_credentials(shlex.join(words))


def without_credentials(text: str) -> str:
    """``text`` with the ``user:password@`` of every URL in it taken out
    (``https://me:secret@mlflow.example.org`` -> ``https://mlflow.example.org``)."""
    return _CREDENTIALS.sub(r"\1", text)


def _without_salt(config: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration with ``report.dicom_salt`` replaced by ``report.dicom_salt_set`` (true or false)."""
    report = config.get("report")
    if not isinstance(report, Mapping) or SALT_FIELD not in report:
        return dict(config)
    kept = {key: value for key, value in report.items() if key != SALT_FIELD}
    return {**config, "report": {**kept, f"{SALT_FIELD}_set": bool(report[SALT_FIELD])}}


def _mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is an object, an empty one for a missing or null entry; else a TypeError
    (a shape error: :func:`record_from_documents` names the folder)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"an object was expected, found {type(value).__name__}")
    return value


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"a list was expected, found {type(value).__name__}")
    return value


def flatten_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"train": {"epochs": 15}}`` -> ``{"train.epochs": "15"}``; strings bare, other values as JSON,
    each cut to :data:`PARAM_VALUE_LIMIT` characters."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_params(value, f"{name}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            flat[name] = text if len(text) <= PARAM_VALUE_LIMIT else text[:PARAM_VALUE_LIMIT - 3] + "..."
    return flat


def headline_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The headline numbers of ``metrics.json`` with their interval bounds (see the module's docstring)."""
    found: dict[str, float] = {}
    classification = metrics.get("classification") or {}
    _put(found, "accuracy", classification.get("accuracy"))
    _put(found, "macro.f1", (classification.get("macro") or {}).get("f1"))
    _put(found, "macro_roc_auc", classification.get("macro_roc_auc"))
    _put(found, "n_images", classification.get("n_images"))
    for row in classification.get("per_class") or []:
        for what in ("recall", "precision"):
            _put(found, f"per_class.{row['name']}.{what}", row.get(what))
    referral = metrics.get("referral") or {}
    for what in ("urgent_sensitivity", "urgent_specificity", "weighted_error", "urgent_roc_auc"):
        _put(found, f"referral.{what}", referral.get(what))
    for name, interval in _intervals(metrics.get("intervals") or {}):
        _put(found, name, interval.get("value"))
        _put(found, f"{name}.low", interval.get("low"))
        _put(found, f"{name}.high", interval.get("high"))
    calibration = metrics.get("calibration") or {}
    for what in ("ece", "brier"):
        _put(found, f"calibration.{what}", calibration.get(what))
    found.update(_heatmap_scores(metrics.get("heatmap_checks") or {}))
    found.update(_layer_health_counts(metrics.get("layer_health") or []))
    audit = metrics.get("data_audit") or {}
    for what in _DATA_AUDIT_COUNTS:
        _put(found, f"data_audit.{what}", audit.get(what))
    if audit:
        _put(found, "data_audit.flagged_shortcuts", len(audit.get("flagged_shortcuts") or []))
    return found


def training_curves(metrics: Mapping[str, Any]) -> dict[str, tuple[float, ...]]:
    """``train.<curve>`` -> its value at each epoch (empty when the run did not train)."""
    history = ((metrics.get("training") or {}).get("history")) or {}
    return {metric_name(f"train.{name}"): tuple(float(v) for v in values)
            for name, values in history.items() if values and all(_is_number(v) for v in values)}


def run_tags(run_dir: Path, metrics: Mapping[str, Any], manifest: Mapping[str, Any]) -> dict[str, str]:
    """Version, fingerprints, each gate's outcome, the exit status and the run folder."""
    model = manifest.get("model") or {}
    data = manifest.get("data") or {}
    tags = {
        f"{TAG_PREFIX}version": str((manifest.get("versions") or {}).get("octreport", "")),
        f"{TAG_PREFIX}kind": run_kind(metrics, manifest),
        f"{TAG_PREFIX}outcome": str(manifest.get("outcome", "")),
        f"{TAG_PREFIX}exit_code": str(GATE_FAILED_EXIT_CODE if manifest.get("outcome") == OUTCOME_FAILED_GATES else 0),
        RUN_FOLDER_TAG: str(run_dir),
        f"{TAG_PREFIX}data_sha256": str(data.get("sha256") or ""),
        f"{TAG_PREFIX}model_file_sha256": str(model.get("file_sha256") or ""),
        f"{TAG_PREFIX}model_weights_sha256": str(model.get("weights_sha256") or ""),
        f"{TAG_PREFIX}model_source": str(model.get("source") or ""),
    }
    for gate in (metrics.get("gates") or {}).get("results") or []:
        tags[metric_name(f"{TAG_PREFIX}gate.{gate['name']}")] = "passed" if gate.get("passed") else "failed"
    registry = model.get("registry") or {}
    if registry:
        tags[f"{TAG_PREFIX}model_uri"] = without_credentials(str(registry.get("uri", "")))
        tags[f"{TAG_PREFIX}model_version"] = str(registry.get("version") or "")
    return {name: value for name, value in tags.items() if value}


def metric_name(name: str) -> str:
    """``name`` with every character MLflow refuses in a key (it takes letters, digits and ``_-. /``) as ``_``."""
    return _NOT_A_METRIC_NAME.sub("_", name)


def _intervals(node: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(dotted path, interval) for every ``{value, low, high}`` entry under ``node``."""
    for key, value in node.items():
        if not isinstance(value, Mapping):
            continue
        if {"value", "low", "high"} <= set(value):
            yield f"{prefix}{key}", value
        else:
            yield from _intervals(value, f"{prefix}{key}.")


def _heatmap_scores(checks: Mapping[str, Any]) -> dict[str, float]:
    found: dict[str, float] = {}
    for method, scores in ((checks.get("faithfulness") or {}).get("mean") or {}).items():
        for what in _HEATMAP_SCORES:
            _put(found, f"heatmap.{method}.{what}", (scores or {}).get(what))
    sanity = checks.get("sanity") or {}
    if "flagged" in sanity:
        _put(found, "heatmap.sanity.flagged", int(bool(sanity["flagged"])))
    for step in sanity.get("steps") or []:
        _put(found, f"heatmap.sanity.{step.get('layer')}.mean_spearman", step.get("mean_spearman"))
    return found


def _layer_health_counts(rows: list[Mapping[str, Any]]) -> dict[str, float]:
    if not rows:
        return {}
    found = {
        "layer_health.layers": float(len(rows)),
        "layer_health.flagged_layers": float(sum(bool(row.get("flagged")) for row in rows)),
        "layer_health.dead_filters": float(sum(row.get("dead_filters") or 0 for row in rows)),
    }
    for row in rows:
        _put(found, f"layer_health.{row.get('layer')}.dead_share", row.get("dead_share"))
    return found


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _put(found: dict[str, float], name: str, value: Any) -> None:
    """Record ``value`` under ``name`` when it is a finite number (None, NaN and infinities are left out)."""
    if isinstance(value, bool):
        value = int(value)
    if _is_number(value):
        found[metric_name(name)] = float(value)
