"""Compare two finished runs: metric deltas, per-class changes, confusion change, layer drift, and
what changed in their manifests (model, weights, data, configuration, versions), and whether each
change is statistically significant.

Runs are read from their folders (``metrics.json``, and ``manifest.json`` when the run has one;
older runs do not, and the comparison then says what it cannot tell). A run is named by its folder
path, by its name under ``out_root``, or by an alias: ``latest`` (what ``out_root/latest`` points
to) or ``previous`` (the finished run before it in name order, which is start-time order).
In-progress (``.incomplete-*``) and failed (``*.failed``) folders are never picked by an alias.

:func:`compare_runs` computes; :mod:`octreport.report.compare_view` shows;
:func:`regressions` lists what got worse by more than a tolerance (``--fail-on-regression TOL``),
or, in the ``significant`` mode, only what got significantly worse. Every value here comes from
the two JSON documents as they are.

Significance: when both runs evaluated the same images (the same data fingerprint, and each run's
``predictions.csv`` lists the same test images with the same classes), the runs are *paired*: each
change gets an exact McNemar test (accuracy, sensitivities) or a paired bootstrap (the rest), see
:mod:`octreport.evaluation.paired`. Otherwise each run's own intervals (``metrics.json``
``intervals``) are set side by side, and the comparison says that the test was not paired.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from octreport.audit.heatmap_drift import ACCURACY_TOLERANCE, HeatmapDrift, heatmap_drift
from octreport.audit.significance import Pairing, interval_in, pair_runs, significance_tests
from octreport.errors import ConfigError
from octreport.evaluation.bootstrap_settings import BootstrapSettings
from octreport.evaluation.intervals import Interval
from octreport.evaluation.paired import SignificanceTest
from octreport.evaluation.predictions_file import PREDICTIONS_NAME, RunPredictions, read_predictions
from octreport.evaluation.referral import ARGMAX_RULE
from octreport.formatting import delta_pct, num, pct, signed
from octreport.guarded import MAX_RUN_FILE_BYTES, SHAPE_ERRORS, expect, not_shaped, read_json
from octreport.runfolder import FAILED_SUFFIX, INCOMPLETE_PREFIX, LATEST

METRICS_NAME = "metrics.json"
MANIFEST_NAME = "manifest.json"
ALIASES = ("latest", "previous")
FRACTION, SCORE = "fraction", "score"
REGRESSION_MODES = ("any", "significant")
_EPS = 1e-12


# ---------- loading ----------


@dataclass(frozen=True, eq=False)
class LoadedRun:
    """One finished run's documents. ``manifest`` is None for a run written without one, and
    ``predictions`` for a run without ``predictions.csv`` (written by octreport since intervals came)."""

    name: str
    path: Path
    metrics: Mapping[str, Any]
    manifest: Mapping[str, Any] | None
    predictions: RunPredictions | None = None


def finished_runs(out_root: Path) -> list[Path]:
    """Run folders under ``out_root`` that finished (hold metrics.json), sorted by name (= start time)."""
    out_root = Path(out_root)
    if not out_root.is_dir():
        return []
    return sorted(
        child for child in out_root.iterdir()
        if child.is_dir() and not child.is_symlink() and not child.name.startswith(".")
        and not child.name.endswith(FAILED_SUFFIX) and (child / METRICS_NAME).is_file()
    )


def _latest(out_root: Path, runs: list[Path]) -> Path:
    link = out_root / LATEST
    if link.is_symlink() or link.is_dir():
        target = link.resolve()
        for run in runs:
            if run.resolve() == target:
                return run
    if not runs:
        raise ConfigError(f"'latest': there is no finished run under {out_root}. Run `octreport run --out {out_root}` first.")
    return runs[-1]


def resolve_run(path_or_alias: str | Path, out_root: Path) -> Path:
    """The run folder meant by a path, a run name under ``out_root``, ``latest`` or ``previous``."""
    out_root = Path(out_root)
    text = str(path_or_alias)
    if text in ALIASES:
        runs = finished_runs(out_root)
        latest = _latest(out_root, runs)
        if text == "latest":
            return latest
        earlier = [run for run in runs if run.name < latest.name]
        if not earlier:
            raise ConfigError(
                f"'previous': no finished run before {latest.name} under {out_root} "
                f"({len(runs)} finished run(s) there; failed and incomplete runs do not count)."
            )
        return earlier[-1]
    candidates = [Path(text)] + ([out_root / text] if not Path(text).is_absolute() else [])
    for candidate in candidates:
        if candidate.is_dir():
            if candidate.name.endswith(FAILED_SUFFIX) or candidate.name.startswith(INCOMPLETE_PREFIX):
                raise ConfigError(f"{candidate} is a failed or incomplete run; compare finished runs only.")
            if not (candidate / METRICS_NAME).is_file():
                raise ConfigError(f"{candidate} is not an octreport run folder: it has no {METRICS_NAME}.")
            return candidate
    raise ConfigError(
        f"no run '{text}': not a folder, nor a run name under {out_root}. "
        f"Give a run folder, or one of: {', '.join(ALIASES)}."
    )


def _read_json(path: Path) -> dict[str, Any]:
    return expect(read_json(path, str(path), ConfigError, MAX_RUN_FILE_BYTES), dict, str(path))


def load_run(path_or_alias: str | Path, out_root: Path) -> LoadedRun:
    """Resolve (see :func:`resolve_run`) and read a run's metrics.json and manifest.json."""
    folder = resolve_run(path_or_alias, out_root)
    manifest_path = folder / MANIFEST_NAME
    manifest = _read_json(manifest_path) if manifest_path.is_file() else None
    predictions_path = folder / PREDICTIONS_NAME
    predictions = read_predictions(predictions_path) if predictions_path.is_file() else None
    return LoadedRun(folder.resolve().name, folder, _read_json(folder / METRICS_NAME), manifest, predictions)


# ---------- results ----------


@dataclass(frozen=True)
class MetricDelta:
    """One number in both runs. ``kind``: ``fraction`` (shown as %) or ``score``.

    ``key`` names the statistic (:mod:`octreport.evaluation.bootstrap` keys) when it can be tested;
    ``test`` says whether the change is significant; ``ci_a``/``ci_b`` are the runs' own intervals
    as their metrics.json records them (None when it does not).
    """

    name: str
    a: float | None
    b: float | None
    kind: str = FRACTION
    higher_is_better: bool = True
    key: str | None = None
    test: SignificanceTest | None = None
    ci_a: Interval | None = None
    ci_b: Interval | None = None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a


@dataclass(frozen=True)
class ClassChange:
    name: str
    support_a: int | None
    support_b: int | None
    metrics: tuple[MetricDelta, ...]  # precision, recall, F1, ROC AUC

    def metric(self, name: str) -> MetricDelta:
        return next(m for m in self.metrics if m.name == name)


@dataclass(frozen=True)
class ConfusionChange:
    """``delta[i][j]`` = count B − count A (rows: true class, columns: predicted), in ``class_names`` order.

    None (with ``note`` saying why) when the two runs' classes differ.
    """

    class_names: tuple[str, ...]
    delta: tuple[tuple[int, ...], ...] | None
    note: str


@dataclass(frozen=True)
class LayerDrift:
    """Filter L2-norm statistics (min, median, max) of one layer in both runs; dead-filter share when audited."""

    layer: str
    norms: tuple[MetricDelta, ...]
    dead_share: MetricDelta | None


@dataclass(frozen=True)
class Change:
    """A value that differs between the runs. ``a``/``b`` are :data:`ABSENT` when one run lacks it."""

    key: str
    a: Any
    b: Any

    @property
    def a_text(self) -> str:
        return _display(self.a)

    @property
    def b_text(self) -> str:
        return _display(self.b)


@dataclass(frozen=True)
class IdentityCheck:
    """A hash in both manifests; ``same`` is None when either run does not record it."""

    what: str
    a: str | None
    b: str | None

    @property
    def same(self) -> bool | None:
        return None if self.a is None or self.b is None else self.a == self.b

    @property
    def verdict(self) -> str:
        return {None: "unknown (not recorded)", True: "same", False: "changed"}[self.same]


@dataclass(frozen=True)
class RunSummary:
    name: str
    path: str
    started_at: str | None
    outcome: str | None


@dataclass(frozen=True)
class RunComparison:
    """Run B against run A: every ``delta`` is B − A."""

    a: RunSummary
    b: RunSummary
    metrics: tuple[MetricDelta, ...]
    referral: tuple[MetricDelta, ...]
    per_class: tuple[ClassChange, ...]
    classes_only_in_a: tuple[str, ...]
    classes_only_in_b: tuple[str, ...]
    confusion: ConfusionChange
    layers: tuple[LayerDrift, ...]
    layers_only_in_a: tuple[str, ...]
    layers_only_in_b: tuple[str, ...]
    identity: tuple[IdentityCheck, ...]
    config_changes: tuple[Change, ...]
    version_changes: tuple[Change, ...]
    notes: tuple[str, ...]
    pairing: Pairing | None = None
    heatmap_drift: HeatmapDrift | None = None
    """The Grad-CAM maps of the images both runs showed, compared; None when neither run recorded maps."""


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


ABSENT: Any = _Absent()


def _display(value: Any) -> str:
    if value is ABSENT:
        return "(absent)"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


# ---------- comparing ----------


def _get(document: Mapping[str, Any] | None, *keys: str) -> Any:
    for key in keys:
        if not isinstance(document, Mapping):
            return None
        document = document.get(key)
    return document


def _headline(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[MetricDelta, ...]:
    rows = (
        ("accuracy", ("accuracy",), FRACTION), ("chance level", ("chance_level",), FRACTION),
        ("macro precision", ("macro", "precision"), FRACTION), ("macro recall", ("macro", "recall"), FRACTION),
        ("macro F1", ("macro", "f1"), SCORE), ("weighted F1", ("weighted", "f1"), SCORE),
        ("macro ROC AUC", ("macro_roc_auc",), SCORE),
    )
    ca, cb = a.get("classification"), b.get("classification")
    return tuple(
        MetricDelta(name, _get(ca, *keys), _get(cb, *keys), kind, key=None if name == "chance level" else ".".join(keys))
        for name, keys, kind in rows
    )


def _rule_notes(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """A note when the runs' urgent-referral rules differ: their urgent numbers are each run's own rule's."""
    rule_a, rule_b = (_get(m, "referral", "rule", "rule") or ARGMAX_RULE for m in (a, b))
    if a.get("referral") is None or b.get("referral") is None or rule_a == rule_b:
        return []
    return [f"the urgent-referral rules differ: A calls urgent when {rule_a}, B when {rule_b}; the urgent "
            "sensitivity and specificity are each run's under its own rule"]


def _referral(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[MetricDelta, ...]:
    ra, rb = a.get("referral"), b.get("referral")
    if ra is None and rb is None:
        return ()
    rows = (
        ("urgent sensitivity", "urgent_sensitivity", FRACTION, True),
        ("urgent specificity", "urgent_specificity", FRACTION, True),
        ("urgent ROC AUC", "urgent_roc_auc", SCORE, True),
        ("weighted error", "weighted_error", SCORE, False),
    )
    return tuple(MetricDelta(name, _get(ra, key), _get(rb, key), kind, better, key=f"referral.{key}")
                 for name, key, kind, better in rows)


def _per_class(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[tuple[ClassChange, ...], tuple[str, ...], tuple[str, ...]]:
    rows_a = {r["name"]: r for r in _get(a, "classification", "per_class") or []}
    rows_b = {r["name"]: r for r in _get(b, "classification", "per_class") or []}
    changes = []
    for name in [n for n in rows_a if n in rows_b]:
        ra, rb = rows_a[name], rows_b[name]
        metrics = tuple(
            MetricDelta(label, ra.get(key), rb.get(key), kind, key=f"per_class.{name}.{key}")
            for label, key, kind in (("precision", "precision", FRACTION), ("recall", "recall", FRACTION),
                                     ("F1", "f1", SCORE), ("ROC AUC", "roc_auc", SCORE))
        )
        changes.append(ClassChange(name, ra.get("support"), rb.get("support"), metrics))
    only_a = tuple(n for n in rows_a if n not in rows_b)
    only_b = tuple(n for n in rows_b if n not in rows_a)
    return tuple(changes), only_a, only_b


def _confusion(a: Mapping[str, Any], b: Mapping[str, Any]) -> ConfusionChange:
    names_a = tuple(_get(a, "classification", "class_names") or ())
    names_b = tuple(_get(b, "classification", "class_names") or ())
    matrix_a = _get(a, "classification", "confusion_matrix")
    matrix_b = _get(b, "classification", "confusion_matrix")
    if matrix_a is None or matrix_b is None:
        return ConfusionChange(names_a, None, "a confusion matrix is missing from one run's metrics.json")
    if sorted(names_a) != sorted(names_b):
        return ConfusionChange(
            names_a, None, f"the classes differ (A: {', '.join(names_a)}; B: {', '.join(names_b)}), so the matrices cannot be subtracted"
        )
    order = [names_b.index(n) for n in names_a]  # B's rows and columns in A's class order
    delta = tuple(
        tuple(int(matrix_b[order[i]][order[j]]) - int(matrix_a[i][j]) for j in range(len(names_a)))
        for i in range(len(names_a))
    )
    return ConfusionChange(names_a, delta, "count in B minus count in A; rows: true class, columns: predicted class")


def _layer_stats(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per conv layer: filter L2 norms and dead-filter share. The layer audit covers every layer (in
    forward order) and records the norms too, so a layer the report did not draw (a deep network's
    default selection) still has them; the drawn layers' ``filters`` entries are used where present."""
    stats: dict[str, dict[str, Any]] = {}
    health = document.get("layer_health")
    for row in (health.get("layers") if isinstance(health, Mapping) else health) or []:
        entry = stats.setdefault(row["layer"], {})
        entry["dead_share"] = row.get("dead_share")
        if "norm_min" in row:
            entry["l2_norm"] = {"min": row.get("norm_min"), "median": row.get("norm_median"), "max": row.get("norm_max")}
    for row in document.get("filters") or []:
        stats.setdefault(row["layer"], {})["l2_norm"] = row.get("l2_norm") or {}
    return stats


def _layers(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[tuple[LayerDrift, ...], tuple[str, ...], tuple[str, ...]]:
    sa, sb = _layer_stats(a), _layer_stats(b)
    drifts = []
    for layer in [name for name in sa if name in sb]:
        na, nb = sa[layer].get("l2_norm", {}), sb[layer].get("l2_norm", {})
        norms = tuple(MetricDelta(f"L2 {stat}", na.get(stat), nb.get(stat), SCORE) for stat in ("min", "median", "max"))
        dead = None
        if "dead_share" in sa[layer] or "dead_share" in sb[layer]:
            dead = MetricDelta("dead-filter share", sa[layer].get("dead_share"), sb[layer].get("dead_share"), FRACTION, False)
        drifts.append(LayerDrift(layer, norms, dead))
    return tuple(drifts), tuple(n for n in sa if n not in sb), tuple(n for n in sb if n not in sa)


def flatten(document: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level with dotted keys: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``. Lists stay whole."""
    flat: dict[str, Any] = {}
    for key, value in document.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, dotted))
        else:
            flat[dotted] = value
    return flat


def _differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[Change, ...]:
    fa, fb = flatten(a), flatten(b)
    keys = list(fa) + [k for k in fb if k not in fa]
    return tuple(
        Change(key, fa.get(key, ABSENT), fb.get(key, ABSENT))
        for key in keys if fa.get(key, ABSENT) != fb.get(key, ABSENT)
    )


def _configuration(run: LoadedRun) -> dict[str, Any]:
    """The effective configuration: the manifest's, else what metrics.json records."""
    if run.manifest is not None and isinstance(run.manifest.get("config"), Mapping):
        config = dict(run.manifest["config"])
    else:
        config = {"train": run.metrics.get("train_config"), "report": run.metrics.get("report_config")}
    command = (run.manifest or {}).get("command_line", run.metrics.get("command_line"))
    return {**config, "command_line": command}


def _identity(a: LoadedRun, b: LoadedRun) -> tuple[IdentityCheck, ...]:
    rows = (("model file", ("model", "file_sha256")), ("model weights", ("model", "weights_sha256")),
            ("data fingerprint", ("data", "sha256")))
    return tuple(IdentityCheck(what, _get(a.manifest, *keys), _get(b.manifest, *keys)) for what, keys in rows)


def _summary(run: LoadedRun) -> RunSummary:
    return RunSummary(run.name, str(run.path), run.metrics.get("started_at"), _get(run.manifest, "outcome"))


def compare_runs(a: LoadedRun, b: LoadedRun, settings: BootstrapSettings = BootstrapSettings()) -> RunComparison:
    """Run B against run A (B − A everywhere), each change with its significance test; a
    :class:`ConfigError` when a run's files are not shaped as octreport writes them."""
    try:
        return _compare_runs(a, b, settings)
    except SHAPE_ERRORS as error:
        raise ConfigError(not_shaped(error, f"run {a.name} or {b.name}: {METRICS_NAME} or {MANIFEST_NAME}") + ".") from None


def _compare_runs(a: LoadedRun, b: LoadedRun, settings: BootstrapSettings) -> RunComparison:
    per_class, only_a, only_b = _per_class(a.metrics, b.metrics)
    layers, layers_a, layers_b = _layers(a.metrics, b.metrics)
    notes = [f"run {label} ({run.name}) has no {MANIFEST_NAME}: model, weights and data identity unknown"
             for label, run in (("A", a), ("B", b)) if run.manifest is None]
    notes += _rule_notes(a.metrics, b.metrics)
    versions_a = (a.manifest or {}).get("versions") or a.metrics.get("versions") or {}
    versions_b = (b.manifest or {}).get("versions") or b.metrics.get("versions") or {}
    pairing, aligned = pair_runs(a.predictions, b.predictions, a.manifest, b.manifest, settings)
    headline, referral = _headline(a.metrics, b.metrics), _referral(a.metrics, b.metrics)
    rows = headline + referral + tuple(m for change in per_class for m in change.metrics)
    tests = significance_tests([m.key for m in rows if m.key], a.metrics, b.metrics, aligned, settings)

    def tested(metric: MetricDelta) -> MetricDelta:
        if metric.key is None:
            return metric
        return replace(metric, test=tests.get(metric.key), ci_a=interval_in(a.metrics, metric.key),
                       ci_b=interval_in(b.metrics, metric.key))

    metrics = tuple(map(tested, headline))
    identity = _identity(a, b)
    return RunComparison(
        a=_summary(a), b=_summary(b),
        metrics=metrics, referral=tuple(map(tested, referral)),
        per_class=tuple(replace(c, metrics=tuple(map(tested, c.metrics))) for c in per_class),
        classes_only_in_a=only_a, classes_only_in_b=only_b,
        confusion=_confusion(a.metrics, b.metrics),
        layers=layers, layers_only_in_a=layers_a, layers_only_in_b=layers_b,
        identity=identity,
        config_changes=_differences(_configuration(a), _configuration(b)),
        version_changes=_differences(versions_a, versions_b),
        notes=tuple(notes),
        pairing=pairing,
        heatmap_drift=heatmap_drift(a.metrics, b.metrics, model_changed=_model_changed(identity),
                                    accuracy_changed=_accuracy_changed(metrics)),
    )


def _model_changed(identity: tuple[IdentityCheck, ...]) -> bool | None:
    """Whether the weights differ (the model file's hash when the weights' is not recorded)."""
    by_what = {check.what: check.same for check in identity}
    same = by_what.get("model weights")
    same = by_what.get("model file") if same is None else same
    return None if same is None else not same


def _accuracy_changed(metrics: tuple[MetricDelta, ...]) -> bool | None:
    """Significantly, when tested; else by more than a point."""
    accuracy = next((m for m in metrics if m.name == "accuracy"), None)
    if accuracy is None or accuracy.delta is None:
        return None
    if accuracy.test is not None and accuracy.test.significant is not None:
        return bool(accuracy.test.significant)
    return abs(accuracy.delta) > ACCURACY_TOLERANCE


# ---------- regressions ----------


def _fell(metric: MetricDelta | None, tolerance: float) -> bool:
    return metric is not None and metric.delta is not None and -metric.delta > tolerance + _EPS


def _counts(metric: MetricDelta, mode: str) -> bool:
    """In ``significant`` mode only a significant change (or one that could not be tested) counts."""
    return mode == "any" or metric.test is None or metric.test.significant is not False


def _significance_note(metric: MetricDelta, mode: str) -> str:
    if mode == "any" or metric.test is None:
        return "" if mode == "any" else "; not tested, so counted"
    if metric.test.significant is None:
        return f"; {metric.test.verdict}, so counted"
    return f"; {metric.test.verdict}, {metric.test.method}"


def regressions(comparison: RunComparison, tolerance: float, mode: str = "any") -> list[str]:
    """What got worse by more than ``tolerance`` (absolute, e.g. 0.02 = 2 points) from A to B.

    Checked: accuracy, macro F1, every class's recall, urgent sensitivity (falling) and the
    weighted error (rising). Values missing from either run are not compared. ``mode``: ``any``
    counts every such drop; ``significant`` only those whose test finds them significant (a drop
    that could not be tested still counts: an unattended check must not pass for want of a test).
    """

    if not (tolerance >= 0):
        raise ConfigError(f"regression tolerance must be 0 or more, got {tolerance}.")
    if mode not in REGRESSION_MODES:
        raise ConfigError(f"regression mode must be one of {', '.join(REGRESSION_MODES)}, got '{mode}'.")
    by_name = {m.name: m for m in comparison.metrics + comparison.referral}
    checked = [by_name.get("accuracy"), by_name.get("macro F1"), by_name.get("urgent sensitivity")]
    checked += [replace(c.metric("recall"), name=f"recall of {c.name}") for c in comparison.per_class]
    found = [
        f"{m.name} fell from {_value_text(m.a, m.kind)} to {_value_text(m.b, m.kind)} ({signed_change_text(m)}; "
        f"tolerance {_tolerance_text(tolerance, m.kind)}{_significance_note(m, mode)})"
        for m in checked if _fell(m, tolerance) and _counts(m, mode)
    ]
    error = by_name.get("weighted error")
    if error is not None and error.delta is not None and error.delta > tolerance + _EPS and _counts(error, mode):
        found.append(f"weighted error rose from {num(error.a)} to {num(error.b)} ({signed_change_text(error)}; "
                     f"tolerance {tolerance:g}{_significance_note(error, mode)})")
    return found


def _value_text(value: float | None, kind: str) -> str:
    return pct(value) if kind == FRACTION else num(value)


def _tolerance_text(tolerance: float, kind: str) -> str:
    return f"{100 * tolerance:.1f} pp" if kind == FRACTION else f"{tolerance:g}"


def signed_change_text(metric: MetricDelta) -> str:
    """A change as text: percentage points for fractions, a signed number for scores."""
    return delta_pct(metric.b, metric.a) if metric.kind == FRACTION else signed(metric.delta)
