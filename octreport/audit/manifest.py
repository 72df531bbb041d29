"""``manifest.json``: what a run was made from, to reproduce or audit it later.

The manifest records the identity of the model (file and weight hashes), of the data (the
:class:`~octreport.data.fingerprint.DatasetFingerprint`), the full effective configuration, the
command line, seeds, package versions, the host, the times and the outcome ("passed",
"failed gates", or "error: ..."), with the gate results. :func:`build_manifest` only assembles
what it is given (:func:`octreport.document.manifest.manifest_for_run` gathers it from a
finished run, hashing the model file and weights); :func:`write_manifest` writes it atomically.

Top-level keys (:data:`MANIFEST_KEYS`)::

    manifest_version, outcome, started_at, finished_at, duration_seconds, command_line, seed,
    model {source, name, file, file_sha256, file_note, weights_sha256, [input_scale], [registry]}, class_names,
    preprocessing, data (fingerprint dict or null), config {train, report, gates}, gates [..],
    gates_passed (null when no gate was evaluated), artifacts {file name: sha256}, versions, host {hostname, platform, machine,
    python_implementation, cpu_count}, cache {folder, parts {part: "cache" or "computed"}} (null:
    the run used no weights cache)
"""

from __future__ import annotations

import json
import os
import platform
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from octreport.data.fingerprint import DatasetFingerprint
from octreport.audit.gates import GateConfig, GateResult, gates_passed
from octreport.hashing import sha256_file, sha256_weights
from octreport.provenance import package_versions


MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
OUTCOME_PASSED = "passed"
OUTCOME_FAILED_GATES = "failed gates"
MODEL_TRAINED_HERE = "trained in this run"
"""``model.source`` of a run that trained its model (``pipeline.model_stage.TRAINED``)."""
IN_MEMORY_NOTE = "in-memory model: no model file was saved, only the weights are hashed"
MANIFEST_KEYS = (
    "manifest_version", "outcome", "started_at", "finished_at", "duration_seconds", "command_line",
    "seed", "training_mode", "model", "class_names", "preprocessing", "data", "config", "gates", "gates_passed",
    "artifacts", "versions", "host", "cache",
)


@dataclass(frozen=True)
class ModelIdentity:
    """Which model a run used. ``file_sha256`` is None for an in-memory model with no file."""

    source: str
    name: str
    file: Path | None
    file_sha256: str | None
    weights_sha256: str
    input_scale: Mapping[str, Any] | None = None
    """The input convention the model was fed in, and why (absent from the manifest when None)."""
    registry: Mapping[str, Any] | None = None
    """A model fetched from MLflow: its URI, name, resolved version and run (absent when None)."""

    def to_dict(self) -> dict[str, Any]:
        entry = {
            "source": self.source,
            "name": self.name,
            "file": None if self.file is None else str(self.file),
            "file_sha256": self.file_sha256,
            "file_note": IN_MEMORY_NOTE if self.file is None else "sha256 of the file's bytes; weights_sha256 ignores zip timestamps",
            "weights_sha256": self.weights_sha256,
        }
        if self.input_scale is not None:
            entry["input_scale"] = dict(self.input_scale)
        if self.registry is not None:
            entry["registry"] = dict(self.registry)
        return entry


def identify_model(model: Any, path: Path | None, source: str) -> ModelIdentity:
    """Hash the model's file (when it has one) and its weights."""
    file_hash = None if path is None else sha256_file(path)
    return ModelIdentity(source, str(getattr(model, "name", "")), None if path is None else Path(path), file_hash, sha256_weights(model))


def outcome_for(gates: Sequence[GateResult] = (), error: BaseException | None = None) -> str:
    """``"error: <Type>: <message>"`` if the run raised, else ``"failed gates"`` or ``"passed"``."""
    if error is not None:
        return f"error: {type(error).__name__}: {error}"
    return OUTCOME_PASSED if gates_passed(gates) else OUTCOME_FAILED_GATES


def host_info() -> dict[str, Any]:
    """Where the run ran: host name, OS and CPU."""
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python_implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
    }


def _as_datetime(value: datetime | str) -> datetime:
    """An aware datetime; a naive one is taken as local time."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.astimezone()


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")


def _plain(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A JSON-shaped copy: tuples become lists and paths strings, as they will read back."""
    return None if value is None else json.loads(json.dumps(dict(value), default=str))


def build_manifest(
    *,
    model: ModelIdentity | None,
    data: DatasetFingerprint | None,
    class_names: Sequence[str],
    preprocessing: Mapping[str, Any] | None,
    train_config: Mapping[str, Any] | None,
    report_config: Mapping[str, Any] | None,
    command_line: str,
    started_at: datetime | str,
    finished_at: datetime | str,
    outcome: str,
    gates: Sequence[GateResult] = (),
    gate_config: GateConfig | None = None,
    artifacts: Mapping[str, str] | None = None,
    versions: Mapping[str, str] | None = None,
    host: Mapping[str, Any] | None = None,
    include_file_list: bool = True,
    training_mode: str | None = None,
    cache: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest as a JSON-ready dict (keys: :data:`MANIFEST_KEYS`), from what the caller has.

    ``training_mode``: :func:`training_mode_name` when the run trained its model, else None.
    ``cache``: the weights cache's folder and which parts of the run came from it, or None.

    ``model`` and ``data`` may be None when the run failed before they were known. Times are
    timezone-aware datetimes or ISO 8601 strings; ``artifacts`` maps file names of the run folder
    to their SHA-256; ``versions`` and ``host`` default to this process's (given, they make the
    function pure). ``include_file_list=False`` keeps the per-image list out of ``data``.
    """
    start, end = _as_datetime(started_at), _as_datetime(finished_at)
    train, report = _plain(train_config), _plain(report_config)
    return {
        "manifest_version": MANIFEST_VERSION,
        "outcome": outcome,
        "started_at": _iso(start),
        "finished_at": _iso(end),
        "duration_seconds": round((end - start).total_seconds(), 3),
        "command_line": command_line,
        "seed": {
            "train": None if train is None else train.get("seed"),
            "report": None if report is None else report.get("seed"),
        },
        "training_mode": training_mode,
        "model": None if model is None else model.to_dict(),
        "class_names": list(class_names),
        "preprocessing": _plain(preprocessing),
        "data": None if data is None else data.to_dict(include_files=include_file_list),
        "config": {
            "train": train,
            "report": report,
            "gates": None if gate_config is None else gate_config.to_dict(),
        },
        "gates": [g.to_dict() for g in gates],
        "gates_passed": gates_passed(gates) if gates else None,
        "artifacts": dict(artifacts or {}),
        "versions": dict(package_versions() if versions is None else versions),
        "host": dict(host_info() if host is None else host),
        "cache": _plain(cache),
    }


def training_mode_name(deterministic: bool) -> str:
    """How the model of a run was trained: bit-reproducibly, or with --fast-nondeterministic."""
    return "deterministic" if deterministic else "fast-nondeterministic"


def hash_artifacts(paths: Sequence[Path]) -> dict[str, str]:
    """``{file name: sha256}`` of the files that exist among ``paths`` (report.html, metrics.json, ...)."""
    return {Path(p).name: sha256_file(p) for p in paths if Path(p).is_file()}


def write_manifest(path: Path, manifest: Mapping[str, Any]) -> Path:
    """Write ``manifest`` as indented JSON at ``path``, atomically; return ``path``."""
    from octreport.runfolder import write_text_atomic

    path = Path(path)
    write_text_atomic(path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return path
