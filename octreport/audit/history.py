"""The history of an output root: every run's headline numbers, identity and gates, oldest first.

Reads only each run's ``metrics.json`` and ``manifest.json`` (and looks at which report files
exist), never an image or a model, and writes nothing; the manifest's per-image list (most of its
bytes, with a large data set megabytes) is skipped unparsed, so 1,000 runs take seconds whatever the
data set's size (``benchmarks/bench_history.py``). Folders are classified by name first: ``NAME.failed`` (a run that raised or was interrupted),
``.incomplete-NAME`` (still running, or killed before it could clean up) and run-named folders
without ``metrics.json`` are listed apart as :class:`ProblemRun` s, as is a run whose
``metrics.json`` cannot be read; folders that are not runs (no run name, no metrics.json) are
ignored. Each complete run becomes a :class:`HistoryEntry`, compared with the complete run before
it: ``changes`` names what differs (``model``: the weights' hash, which ignores zip timestamps;
``data``: the data fingerprint; ``config``: the effective configuration without where the run
was written and what it was compared with).

Intervals: a metric recorded as ``{"value", "low", "high"}`` (or with an ``intervals`` mapping of
``{"low", "high"}`` beside it) keeps its interval; a plain number has none.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from octreport.audit.compare import flatten
from octreport.errors import ConfigError, OctReportError
from octreport.evaluation.referral import ARGMAX_RULE, urgent_rule_text
from octreport.guarded import SHAPE_ERRORS, MAX_RUN_FILE_BYTES, check_depth, not_shaped, parse_json, read_json
from octreport.runfolder import FAILED_SUFFIX, INCOMPLETE_PREFIX, LOG_NAME

METRICS_NAME, MANIFEST_NAME = "metrics.json", "manifest.json"
REPORT_NAMES = ("report.html", "report.pdf")
RUN_NAME = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
FAILED, INCOMPLETE, UNREADABLE = "failed", "incomplete", "unreadable"
MODEL, DATA, CONFIG = "model", "data", "config"
# Keys of the effective configuration that say where a run went, not how it was made: where, how
# fast, and the DICOM PatientID salt (``report.dicom_salt``, a new random one per DICOM run unless
# given: a change on every such run, never a change of how the model was judged). A changed
# ``report.referral_threshold`` is a real change (the urgent numbers follow it) and stays.
CONFIG_IGNORED = ("report.out_root", "report.compare_to", "report.cache", "report.cache_dir", "report.dicom_salt")


@dataclass(frozen=True)
class Headline:
    """One of the numbers the history follows: ``path`` into metrics.json; ``kind`` fraction or score."""

    key: str
    label: str
    kind: str
    higher_is_better: bool = True


HEADLINES: tuple[Headline, ...] = (
    Headline("accuracy", "accuracy", "fraction"),
    Headline("urgent_sensitivity", "urgent-referral sensitivity", "fraction"),
    Headline("urgent_specificity", "urgent-referral specificity", "fraction"),
    Headline("weighted_error", "weighted error", "score", higher_is_better=False),
    Headline("macro_f1", "macro F1", "fraction"),
    Headline("dead_filter_share", "dead-filter share (worst layer)", "fraction", higher_is_better=False),
)


@dataclass(frozen=True)
class MetricPoint:
    value: float | None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class HistoryEntry:
    """One complete run. ``report``: the report file to link to, relative to the run folder (None
    when neither report.html nor report.pdf is there); hashes are None where not recorded."""

    name: str
    started_at: str | None
    report: str | None
    model_file_sha256: str | None
    weights_sha256: str | None
    data_sha256: str | None
    config_sha256: str | None
    metrics: Mapping[str, MetricPoint]
    gates_passed: bool | None
    failed_gates: tuple[str, ...]
    outcome: str | None
    changes: tuple[str, ...] = ()
    config_changes: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    urgent_rule: str | None = None
    """The rule the urgent sensitivity and specificity were counted by (metrics.json ``referral.threshold``;
    runs before schema 5 recorded none: the predicted class); None without urgent numbers."""

    @property
    def model_id(self) -> str | None:
        """What the model is: its weights' hash (the file hash when the weights were not hashed)."""
        return self.weights_sha256 or self.model_file_sha256

    def value(self, key: str) -> float | None:
        point = self.metrics.get(key)
        return None if point is None else point.value


@dataclass(frozen=True)
class ProblemRun:
    """A run that did not finish or cannot be read. ``log``: its run.log, relative to the run folder."""

    name: str
    kind: str
    reason: str
    log: str | None = None


@dataclass(frozen=True)
class RunHistory:
    root: Path
    entries: tuple[HistoryEntry, ...]
    problems: tuple[ProblemRun, ...]

    @property
    def failed_gate_runs(self) -> tuple[HistoryEntry, ...]:
        return tuple(e for e in self.entries if e.gates_passed is False)


# ---------- reading one run ----------


def _get(document: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(document, Mapping):
            return None
        document = document.get(key)
    return document


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _point(section: Any, key: str) -> MetricPoint:
    """A metric with its interval where one was recorded (see the module docstring)."""
    raw = _get(section, key)
    if isinstance(raw, Mapping):
        return MetricPoint(_number(raw.get("value")), _number(raw.get("low")), _number(raw.get("high")))
    interval = _get(section, "intervals", key)
    if isinstance(interval, Mapping):
        return MetricPoint(_number(raw), _number(interval.get("low")), _number(interval.get("high")))
    return MetricPoint(_number(raw))


def _dead_share(metrics: Mapping[str, Any]) -> MetricPoint:
    health = metrics.get("layer_health")
    rows = health.get("layers") if isinstance(health, Mapping) else health
    shares = [_number(r.get("dead_share")) for r in rows or [] if isinstance(r, Mapping)]
    shares = [s for s in shares if s is not None]
    return MetricPoint(max(shares) if shares else None)


def urgent_rule_of(metrics: Mapping[str, Any]) -> str | None:
    """The urgent-referral rule of a run's urgent numbers: its threshold (``referral.threshold``,
    schema 5), else the predicted class (runs before schema 5 had no other rule); None without them."""
    referral = metrics.get("referral")
    if not isinstance(referral, Mapping) or referral.get("urgent_sensitivity") is None:
        return None
    threshold = _number(referral.get("threshold"))
    if threshold is None and "threshold" not in referral:
        return f"{ARGMAX_RULE} (recorded before referral rules)"
    return urgent_rule_text(threshold)


def headline_points(metrics: Mapping[str, Any]) -> dict[str, MetricPoint]:
    classification, referral = metrics.get("classification"), metrics.get("referral")
    return {
        "accuracy": _point(classification, "accuracy"),
        "urgent_sensitivity": _point(referral, "urgent_sensitivity"),
        "urgent_specificity": _point(referral, "urgent_specificity"),
        "weighted_error": _point(referral, "weighted_error"),
        "macro_f1": _point(_get(classification, "macro"), "f1"),
        "dead_filter_share": _dead_share(metrics),
    }


def _gates(metrics: Mapping[str, Any], manifest: Mapping[str, Any] | None) -> tuple[bool | None, tuple[str, ...]]:
    """Whether every gate passed (None when none was recorded) and the failed ones' names and messages."""
    results = _get(metrics, "gates", "results")
    passed = _get(metrics, "gates", "passed")
    if not isinstance(results, list):
        results, passed = _get(manifest, "gates"), _get(manifest, "gates_passed")
    failed = tuple(
        f"{r.get('name', '?')}: {r.get('message', '')}".rstrip(": ")
        for r in results or [] if isinstance(r, Mapping) and r.get("passed") is False
    )
    if not isinstance(passed, bool):
        passed = None if not results else not failed
    return passed, failed


def _configuration(manifest: Mapping[str, Any] | None) -> dict[str, Any]:
    config = _get(manifest, "config")
    if not isinstance(config, Mapping):
        return {}
    return {k: v for k, v in flatten(config).items() if k not in CONFIG_IGNORED}


def _config_hash(config: Mapping[str, Any]) -> str | None:
    if not config:
        return None
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _read_json(path: Path) -> tuple[Any, str | None]:
    """The parsed file and None, or None and why it cannot be read (:mod:`octreport.guarded`)."""
    try:
        return read_json(path, path.name, max_bytes=MAX_RUN_FILE_BYTES), None
    except OctReportError as error:
        return None, str(error)


# The data fingerprint's per-image list, as write_manifest lays it out (indent 2, the last key of
# "data", before "config"): most of a manifest's bytes (150 per image) and nothing history needs.
# Only the manifest's head and tail are read, and the list between them is never parsed.
_FILES_START = b'\n    "files": ['
_FILES_END = b'\n    ]\n  },\n  "config": '
_EDGE_BYTES = 1 << 16


def _without_file_list(head: bytes, tail: bytes) -> Any:
    """The manifest from its ``head`` and ``tail`` with ``data.files`` as null; None when the
    layout is not octreport's (the caller then parses the whole file)."""
    start, end = head.find(_FILES_START), tail.rfind(_FILES_END)
    if start < 0 or end < 0:
        return None
    try:
        return check_depth(json.loads(head[:start] + b'\n    "files": null' + tail[end + len(b"\n    ]"):]), "manifest")
    except (ValueError, RecursionError, OctReportError):
        return None


def _read_manifest(path: Path) -> tuple[Any, str | None]:
    """Like :func:`_read_json`, without reading or parsing ``data.files`` when it is laid out as
    octreport writes it (any other layout is read and parsed whole)."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(0)
            if size > MAX_RUN_FILE_BYTES:
                return None, f"{path.name} is larger than {MAX_RUN_FILE_BYTES:,} bytes"
            if size > 2 * _EDGE_BYTES:
                head = handle.read(_EDGE_BYTES)
                handle.seek(size - _EDGE_BYTES)
                parsed = _without_file_list(head, handle.read(_EDGE_BYTES))
                if parsed is not None:
                    return parsed, None
                handle.seek(0)
            raw = handle.read()
    except OSError as error:
        return None, f"{path.name}: {error.strerror or error}"
    parsed = _without_file_list(raw, raw)
    if parsed is not None:
        return parsed, None
    try:
        return parse_json(raw, path.name), None
    except OctReportError as error:
        return None, str(error)


def read_entry(folder: Path) -> HistoryEntry | ProblemRun:
    """One complete run folder as an entry, or as a :class:`ProblemRun` when its metrics.json
    cannot be read or its metrics.json or manifest.json is not shaped as octreport writes them."""
    try:
        return _read_entry(folder)
    except SHAPE_ERRORS as error:
        return ProblemRun(folder.name, UNREADABLE, not_shaped(error, f"{METRICS_NAME} or {MANIFEST_NAME}"))


def _read_entry(folder: Path) -> HistoryEntry | ProblemRun:
    metrics, problem = _read_json(folder / METRICS_NAME)
    if problem is None and not isinstance(metrics, Mapping):
        problem = f"{METRICS_NAME} holds a {type(metrics).__name__}, not an object"
    if problem is not None:
        return ProblemRun(folder.name, UNREADABLE, problem)
    notes = []
    manifest = None
    if (folder / MANIFEST_NAME).is_file():
        manifest, manifest_problem = _read_manifest(folder / MANIFEST_NAME)
        if manifest_problem or not isinstance(manifest, Mapping):
            notes.append(f"{manifest_problem or MANIFEST_NAME + ' is not an object'}: model, data and configuration unknown")
            manifest = None
    else:
        notes.append(f"no {MANIFEST_NAME}: model, data and configuration unknown")
    config = _configuration(manifest)
    passed, failed = _gates(metrics, manifest)
    return HistoryEntry(
        name=folder.name,
        started_at=_text(metrics.get("started_at")) or _text(_get(manifest, "started_at")),
        report=next((name for name in REPORT_NAMES if (folder / name).is_file()), None),
        model_file_sha256=_text(_get(manifest, "model", "file_sha256")),
        weights_sha256=_text(_get(manifest, "model", "weights_sha256")),
        data_sha256=_text(_get(manifest, "data", "sha256")),
        config_sha256=_config_hash(config),
        metrics=headline_points(metrics),
        gates_passed=passed,
        failed_gates=failed,
        outcome=_text(_get(manifest, "outcome")),
        notes=tuple(notes),
        config=config,
        urgent_rule=urgent_rule_of(metrics),
    )


# ---------- the whole root ----------


def _stamp(name: str) -> str:
    """The run name inside a failed or incomplete folder's name (they sort by it)."""
    name = name[len(INCOMPLETE_PREFIX):] if name.startswith(INCOMPLETE_PREFIX) else name
    return name[: -len(FAILED_SUFFIX)] if name.endswith(FAILED_SUFFIX) else name


def _classify(root: Path) -> tuple[list[Path], list[ProblemRun]]:
    """Complete-run candidates (holding metrics.json) and the failed or incomplete ones, by name."""
    candidates, problems = [], []
    with os.scandir(root) as found:
        entries = sorted((e for e in found if e.is_dir(follow_symlinks=False)), key=lambda e: e.name)
    def log(folder: Path) -> str | None:
        return LOG_NAME if (folder / LOG_NAME).is_file() else None

    for entry in entries:
        name, folder = entry.name, Path(entry.path)
        if name.startswith(INCOMPLETE_PREFIX):
            problems.append(ProblemRun(name, INCOMPLETE, "still running, or stopped without cleaning up (killed)", log(folder)))
        elif name.endswith(FAILED_SUFFIX):
            problems.append(ProblemRun(name, FAILED, "the run raised an error or was interrupted; see its log", log(folder)))
        elif name.startswith("."):
            continue
        elif (folder / METRICS_NAME).exists():
            candidates.append(folder)
        elif RUN_NAME.match(name):
            problems.append(ProblemRun(name, INCOMPLETE, f"no {METRICS_NAME} in the run folder", log(folder)))
    return candidates, problems


def _with_changes(entry: HistoryEntry, before: HistoryEntry | None) -> HistoryEntry:
    if before is None:
        return entry
    changes, config_changes = [], ()
    for what, a, b in ((MODEL, before.model_id, entry.model_id), (DATA, before.data_sha256, entry.data_sha256),
                       (CONFIG, before.config_sha256, entry.config_sha256)):
        if a is not None and b is not None and a != b:
            changes.append(what)
    if CONFIG in changes:
        keys = list(before.config) + [k for k in entry.config if k not in before.config]
        config_changes = tuple(k for k in keys if before.config.get(k, None) != entry.config.get(k, None))
    notes = entry.notes
    if None not in (before.urgent_rule, entry.urgent_rule) and before.urgent_rule != entry.urgent_rule:
        notes += (f"urgent numbers by the rule {entry.urgent_rule}; the run before: {before.urgent_rule}",)
    return replace(entry, changes=tuple(changes), config_changes=config_changes, notes=notes)


def build_history(root: Path | str, last: int | None = None) -> RunHistory:
    """The history of the output root ``root``; ``last``: only the last N complete runs (and the
    failed or incomplete ones since the first of them). A :class:`ConfigError` when ``root`` is not a folder."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"output root {root} does not exist or is not a folder. Give the --out of your runs.")
    if last is not None and last < 1:
        raise ConfigError(f"--last must be at least 1, got {last}.")
    candidates, problems = _classify(root)
    entries: list[HistoryEntry] = []
    # Newest first until enough are read (one more than asked, to mark what changed at the first shown).
    for folder in reversed(candidates):
        read = read_entry(folder)
        if isinstance(read, ProblemRun):
            problems.append(read)
        else:
            entries.append(read)
        if last is not None and len(entries) > last:
            break
    entries.reverse()
    entries = [_with_changes(e, entries[i - 1] if i else None) for i, e in enumerate(entries)]
    if last is not None and len(entries) > last:
        entries = entries[-last:]
    if last is not None and entries:
        problems = [p for p in problems if _stamp(p.name) >= entries[0].name]
    return RunHistory(root, tuple(entries), tuple(sorted(problems, key=lambda p: _stamp(p.name))))


def history_to_dict(history: RunHistory, links_from: Path | None = None) -> dict[str, Any]:
    """JSON-ready: ``runs`` (oldest first) and ``problems``. Paths are relative to ``links_from``
    (default: the output root), so they stay valid when the archive moves with it."""
    base = Path(links_from) if links_from is not None else history.root

    def rel(*parts: str) -> str:
        return Path(os.path.relpath(history.root.joinpath(*parts), base)).as_posix()

    return {
        "root": str(history.root),
        "runs": [
            {
                "name": e.name,
                "folder": rel(e.name),
                "report": None if e.report is None else rel(e.name, e.report),
                "started_at": e.started_at,
                "model_file_sha256": e.model_file_sha256,
                "weights_sha256": e.weights_sha256,
                "data_sha256": e.data_sha256,
                "config_sha256": e.config_sha256,
                "metrics": {k: {"value": p.value, "low": p.low, "high": p.high} for k, p in e.metrics.items()},
                "gates_passed": e.gates_passed,
                "failed_gates": list(e.failed_gates),
                "outcome": e.outcome,
                "changes": list(e.changes),
                "config_changes": list(e.config_changes),
                "notes": list(e.notes),
                "urgent_rule": e.urgent_rule,
            }
            for e in history.entries
        ],
        "problems": [
            {"name": p.name, "kind": p.kind, "reason": p.reason, "log": None if p.log is None else rel(p.name, p.log)}
            for p in history.problems
        ],
    }


def short_hash(value: str | None, length: int = 12) -> str | None:
    return None if value is None else value[:length]

