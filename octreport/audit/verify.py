"""``octreport verify``: is a past run still what its manifest says it was?

Checks, each giving one :class:`CheckResult` (``holds``, ``differs`` or ``not checked`` with why):

1. **run folder files**: every file the manifest hashed (``artifacts``: report.html, metrics.json,
   predictions.csv, the model the run trained) against its SHA-256;
2. **PDF attachments**: the ``metrics.json`` and ``manifest.json`` embedded in report.pdf against
   the folder's (byte for byte): the manifest cannot hash the PDF that carries it, so this is what
   catches an edited manifest or a replaced PDF;
3. **model file** and **model weights**: the model (found in the run folder or where the manifest
   says, or ``--model``) against the recorded file and weight hashes;
4. **data fingerprint**: the data folder (``--data``, else where the run read it) fingerprinted
   again and compared file by file (:mod:`octreport.audit.verify_data`);
5. **predictions**: the model re-run on the images the report shows (``full``: on every evaluated
   image listed in predictions.csv) and its probabilities compared with the recorded ones within
   ``tolerance`` (:mod:`octreport.audit.verify_rerun`).

Nothing is written. :func:`verify_run` returns a :class:`Verification`; the CLI prints it and
exits 7 when any check differs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from octreport.audit.compare import ALIASES, resolve_run
from octreport.audit.manifest import MODEL_TRAINED_HERE
from octreport.data.layout import relative_name
from octreport.hashing import sha256_file
from octreport.audit.verify_data import compare_fingerprints, current_fingerprint, describe_diff
from octreport.audit.verify_rerun import DEFAULT_TOLERANCE, ProbabilityCheck, compare_probabilities
from octreport.errors import ConfigError, DataError, ModelError, OctReportError, ReportError
from octreport.guarded import MAX_RUN_FILE_BYTES, SHAPE_ERRORS, not_shaped, read_json
from octreport.evaluation.predictions_file import PREDICTIONS_NAME, read_predictions

HOLDS, DIFFERS, NOT_CHECKED = "holds", "differs", "not checked"
METRICS_NAME, MANIFEST_NAME, PDF_NAME = "metrics.json", "manifest.json", "report.pdf"
TRAINED = MODEL_TRAINED_HERE
_SHOWN = 10


@dataclass(frozen=True)
class CheckResult:
    name: str
    verdict: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verification:
    run: Path
    checks: tuple[CheckResult, ...]

    @property
    def differing(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.verdict == DIFFERS)

    @property
    def holds(self) -> bool:
        return not self.differing

    @property
    def not_checked(self) -> tuple[CheckResult, ...]:
        """The checks that could not be made (no model found, the data folder gone, ...)."""
        return tuple(c for c in self.checks if c.verdict == NOT_CHECKED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": str(self.run),
            "holds": self.holds,
            "complete": not self.not_checked,
            "not_checked": [c.name for c in self.not_checked],
            "checks": [{"name": c.name, "verdict": c.verdict, "details": list(c.details)} for c in self.checks],
        }


# ---------- the run folder ----------


def resolve_run_folder(run: str | Path, out_root: Path) -> Path:
    """A run folder (a path, a name under ``out_root``, ``latest`` or ``previous``) that holds a
    manifest.json or a metrics.json; a :class:`ConfigError` otherwise."""
    if str(run) in ALIASES:
        return resolve_run(run, out_root)
    for candidate in [Path(run)] + ([Path(out_root) / str(run)] if not Path(run).is_absolute() else []):
        if candidate.is_dir():
            if not (candidate / MANIFEST_NAME).is_file() and not (candidate / METRICS_NAME).is_file():
                raise ConfigError(f"{candidate} is not an octreport run folder: it has neither {MANIFEST_NAME} nor {METRICS_NAME}.")
            return candidate
    raise ConfigError(f"no run '{run}': not a folder, nor a run name under {out_root}. Give a run folder, 'latest' or 'previous'.")


def _read_json(path: Path) -> tuple[Any, str | None]:
    try:
        return read_json(path, path.name, max_bytes=MAX_RUN_FILE_BYTES), None
    except OctReportError as error:
        return None, str(error)


def _external_model_files(manifest: Mapping[str, Any]) -> set[str]:
    """Artifact names that are a loaded model's files (outside the run folder, checked as the model)."""
    model = manifest.get("model") or {}
    if model.get("source") == TRAINED or not model.get("file"):
        return set()
    return {Path(model["file"]).name}


def check_folder_files(run_dir: Path, manifest: Mapping[str, Any]) -> CheckResult:
    artifacts = manifest.get("artifacts")
    if not isinstance(artifacts, Mapping) or not artifacts:
        return CheckResult("run folder files", NOT_CHECKED, ("the manifest records no file hashes",))
    skipped = _external_model_files(manifest)
    held, problems = [], []
    for name, recorded in artifacts.items():
        if name in skipped:
            continue
        path = run_dir / name
        if not path.is_file():
            problems.append(f"{name} is missing (recorded sha256 {str(recorded)[:12]})")
        elif (actual := sha256_file(path)) != recorded:
            problems.append(f"{name} changed: sha256 {actual[:12]}, recorded {str(recorded)[:12]}")
        else:
            held.append(name)
    if problems:
        return CheckResult("run folder files", DIFFERS, tuple(problems) + ((f"as recorded: {', '.join(held)}",) if held else ()))
    return CheckResult("run folder files", HOLDS, (f"{len(held)} file(s) as recorded: {', '.join(held)}",))


def _json_difference(embedded: bytes, on_disk: bytes) -> str:
    """Which top-level keys differ between two JSON documents (or that one is not JSON)."""
    try:
        a, b = json.loads(embedded), json.loads(on_disk)
    except ValueError:
        return "one of them is not valid JSON"
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return "they differ"
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return f"keys that differ: {', '.join(keys)}" if keys else "same content, other bytes (formatting)"


def check_pdf_attachments(run_dir: Path, manifest: Mapping[str, Any] | None) -> CheckResult:
    from octreport.audit.pdf_attachments import read_attachments

    name = "PDF attachments"
    pdf = run_dir / PDF_NAME
    formats = ((manifest or {}).get("config") or {}).get("report", {}) or {}
    if not pdf.is_file():
        if "pdf" in (formats.get("formats") or ["pdf"]):
            return CheckResult(name, DIFFERS, (f"{PDF_NAME} is missing, though the run wrote one",))
        return CheckResult(name, NOT_CHECKED, ("the run wrote no PDF (--format html)",))
    try:
        attached = read_attachments(pdf)
    except ReportError as error:
        return CheckResult(name, DIFFERS, (str(error),))
    problems, held = [], []
    for document in (METRICS_NAME, MANIFEST_NAME):
        on_disk = run_dir / document
        if document not in attached:
            problems.append(f"{PDF_NAME} carries no {document}: not the PDF this run wrote")
        elif not on_disk.is_file():
            problems.append(f"{document} is missing from the folder (the PDF carries one)")
        elif attached[document] != on_disk.read_bytes():
            problems.append(f"the {document} embedded in {PDF_NAME} differs from the folder's ({_json_difference(attached[document], on_disk.read_bytes())})")
        else:
            held.append(document)
    if problems:
        return CheckResult(name, DIFFERS, tuple(problems))
    return CheckResult(name, HOLDS, (f"{PDF_NAME} carries {' and '.join(held)}, byte for byte the folder's",))


# ---------- the model ----------


def find_model(run_dir: Path, manifest: Mapping[str, Any], given: Path | None,
               tracking_uri: str | None = None) -> tuple[Path | None, str]:
    """The model file to check and how it was found; None (with why) when there is none. A model
    fetched from MLflow whose cached copy is gone is fetched again from ``tracking_uri`` when given,
    else from the server the manifest records, else from ``MLFLOW_TRACKING_URI``; a fetch that fails
    (MLflow not installed, the server down, the version gone) is None with the reason."""
    if given is not None:
        if not Path(given).is_file():
            raise ModelError(f"model file {given} does not exist. Give the path of a .keras or .h5 file with --model.")
        return Path(given), "given with --model"
    model = manifest.get("model") or {}
    recorded = model.get("file")
    if not recorded:
        return None, "an in-memory model: no file was recorded; give --model to check a file's weights"
    if model.get("source") == TRAINED and (run_dir / Path(recorded).name).is_file():
        return run_dir / Path(recorded).name, "in the run folder"
    if Path(recorded).is_file():
        return Path(recorded), "where the manifest says"
    registry = model.get("registry") or {}
    if registry.get("pinned_uri"):  # a model fetched from MLflow whose cached copy is gone: fetch it again
        recorded_server = registry.get("tracking_uri")
        return _fetch_again(str(registry["pinned_uri"]),
                            tracking_uri or (recorded_server if isinstance(recorded_server, str) else None) or None)
    return None, f"the model file is not where the manifest says ({recorded}); give --model"


def _fetch_again(pinned_uri: str, server: str | None) -> tuple[Path | None, str]:
    from octreport.audit.mlflow_models import fetch_model
    from octreport.audit.mlflow_record import without_credentials

    where = f" at {without_credentials(server)}" if server else ""
    try:
        return fetch_model(pinned_uri, server).file, f"fetched again from MLflow ({pinned_uri}{where})"
    except OctReportError as error:
        return None, f"the model could not be fetched again from MLflow ({pinned_uri}{where}): {error}"


def check_model_file(path: Path, manifest: Mapping[str, Any]) -> CheckResult:
    recorded = (manifest.get("model") or {}).get("file_sha256")
    if recorded is None:
        return CheckResult("model file", NOT_CHECKED, ("the run recorded no file hash (an in-memory model)",))
    actual = sha256_file(path)
    if actual != recorded:
        return CheckResult("model file", DIFFERS, (f"{path}: sha256 {actual[:12]}, recorded {recorded[:12]}",))
    return CheckResult("model file", HOLDS, (f"{path}: sha256 {actual[:12]} as recorded",))


def check_weights(actual: str, manifest: Mapping[str, Any]) -> CheckResult:
    recorded = (manifest.get("model") or {}).get("weights_sha256")
    if recorded is None:
        return CheckResult("model weights", NOT_CHECKED, ("the run recorded no weights hash",))
    if actual != recorded:
        return CheckResult("model weights", DIFFERS, (f"weights sha256 {actual[:12]}, recorded {recorded[:12]}: another model (retrained?)",))
    return CheckResult("model weights", HOLDS, (f"weights sha256 {actual[:12]} as recorded",))


# ---------- the data ----------


def find_data(manifest: Mapping[str, Any], given: Path | None) -> tuple[Path | None, str]:
    if given is not None:
        if not Path(given).is_dir():
            raise DataError(f"data folder {given} does not exist or is not a folder.")
        return Path(given), "given with --data"
    root = (manifest.get("data") or {}).get("root")
    if root and Path(root).is_dir():
        return Path(root), "where the run read it"
    return None, f"the data folder is not where the run read it ({root}); give --data"


def check_data(data_dir: Path, manifest: Mapping[str, Any]) -> CheckResult:
    recorded = manifest.get("data")
    if not isinstance(recorded, Mapping) or not recorded.get("sha256"):
        return CheckResult("data fingerprint", NOT_CHECKED, ("the manifest records no data fingerprint",))
    diff = compare_fingerprints(recorded, current_fingerprint(data_dir, manifest))
    return CheckResult("data fingerprint", HOLDS if diff.same else DIFFERS, (str(data_dir), *describe_diff(diff, _SHOWN)))


# ---------- predictions ----------


def _describe(check: ProbabilityCheck, what: str) -> CheckResult:
    name = f"predictions on {what}"
    details = [f"{check.compared} image(s) re-run; largest difference {check.max_difference:.2g} "
               f"(tolerance {check.tolerance:g}, absolute, per class probability)"]
    if check.missing:
        details.append(f"{len(check.missing)} image(s) could not be re-run (missing or unreadable): "
                       + ", ".join(check.missing[:_SHOWN]))
    if check.worst:
        details.append(f"{len(check.worst)} image(s) beyond the tolerance, {check.predicted_changed} with another predicted class: "
                       + ", ".join(f"{p} ({d:.3g})" for p, d in check.worst[:_SHOWN]))
    return CheckResult(name, HOLDS if check.holds else DIFFERS, tuple(details))


def _shown_images(metrics: Mapping[str, Any], data_dir: Path, recorded_root: str | None) -> tuple[list[str], list[Path], list[list[float]]] | str:
    """The report's shown images, mapped into ``data_dir``, with their recorded probabilities."""
    class_names = (metrics.get("classification") or {}).get("class_names") or (metrics.get("data") or {}).get("class_names")
    shown = metrics.get("shown_images")
    if not isinstance(shown, list) or not shown or not class_names:
        return "metrics.json records no shown images"
    names, paths, probabilities = [], [], []
    for image in shown:
        original = Path(image["path"])
        relative = relative_name(original, Path(recorded_root)) if recorded_root else original.as_posix()
        paths.append(data_dir / relative if not Path(relative).is_absolute() else original)
        names.append(relative)
        probabilities.append([float(image["probabilities"][c]) for c in class_names])
    return names, paths, probabilities


def check_predictions(model: Any, run_dir: Path, manifest: Mapping[str, Any], metrics: Mapping[str, Any] | None,
                      data_dir: Path, full: bool, tolerance: float) -> CheckResult:
    from octreport.audit.verify_rerun import rerun

    preprocessing = manifest.get("preprocessing") or {}
    batch_size = int((((manifest.get("config") or {}).get("report")) or {}).get("batch_size", 32))
    if full:
        what = "every evaluated image"
        if not (run_dir / PREDICTIONS_NAME).is_file():
            return CheckResult(f"predictions on {what}", NOT_CHECKED,
                               (f"the run has no {PREDICTIONS_NAME} (runs before per-image probabilities were recorded)",))
        try:
            recorded = read_predictions(run_dir / PREDICTIONS_NAME)
        except DataError as error:
            return CheckResult(f"predictions on {what}", DIFFERS, (str(error),))
        names, expected = list(recorded.paths), recorded.probabilities
        paths = [data_dir / p if not Path(p).is_absolute() else Path(p) for p in names]
    else:
        what = "the images shown in the report"
        if metrics is None:
            return CheckResult(f"predictions on {what}", NOT_CHECKED, ("metrics.json cannot be read",))
        found = _shown_images(metrics, data_dir, (manifest.get("data") or {}).get("root"))
        if isinstance(found, str):
            return CheckResult(f"predictions on {what}", NOT_CHECKED, (found,))
        names, paths, expected = found
    return _describe(compare_probabilities(names, expected, rerun(model, paths, preprocessing, batch_size), tolerance), what)


# ---------- all of it ----------


def verify_run(
    run: str | Path,
    out_root: Path = Path("octreport-runs"),
    data_dir: Path | None = None,
    model_path: Path | None = None,
    full: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
    progress: Callable[[str], None] = lambda message: None,
    tracking_uri: str | None = None,
) -> Verification:
    """Every check on the run ``run``; ``progress`` is told which check starts (they can take minutes).

    Raises :class:`ConfigError` (not a run folder, bad tolerance), :class:`DataError` (``data_dir``
    does not exist) or :class:`ModelError` (``model_path`` cannot be loaded); a run folder that was
    tampered with is never an exception, it is a check that differs. ``tracking_uri``: the MLflow
    server a registry model is fetched again from (default: the one the manifest records).
    """
    if not (0 <= tolerance < 1):
        raise ConfigError(f"the tolerance must be between 0 and 1, got {tolerance}.")
    run_dir = resolve_run_folder(run, out_root)
    manifest, problem = _read_json(run_dir / MANIFEST_NAME)
    if problem or not isinstance(manifest, Mapping):
        reason = problem or f"{MANIFEST_NAME} is not a JSON object"
        checks = [CheckResult("manifest", DIFFERS, (f"{reason}: nothing to check the run against",))]
        return Verification(run_dir, tuple(checks + [check_pdf_attachments(run_dir, None)]))
    metrics, metrics_problem = _read_json(run_dir / METRICS_NAME)
    metrics = metrics if isinstance(metrics, Mapping) and not metrics_problem else None

    progress("run folder files and PDF attachments")
    try:
        checks = [check_folder_files(run_dir, manifest), check_pdf_attachments(run_dir, manifest)]
        checks += _model_and_data_checks(run_dir, manifest, metrics, data_dir, model_path, full, tolerance, progress,
                                         tracking_uri)
    except SHAPE_ERRORS as error:
        checks = [CheckResult("manifest", DIFFERS, (f"{not_shaped(error, MANIFEST_NAME)}: nothing to check the run against",))]
    return Verification(run_dir, tuple(checks))


def _model_and_data_checks(run_dir, manifest, metrics, data_dir, model_path, full, tolerance, progress,
                           tracking_uri=None) -> list[CheckResult]:
    checks = []
    found_model, how = find_model(run_dir, manifest, model_path, tracking_uri)
    model = None
    if found_model is None:
        checks.append(CheckResult("model file", NOT_CHECKED, (how,)))
    else:
        from octreport.audit.verify_rerun import load_model_for_verify

        progress(f"model {found_model}")
        file_check = check_model_file(found_model, manifest)
        checks.append(CheckResult(file_check.name, file_check.verdict, (*file_check.details, f"found {how}")))
        try:
            model, weights = load_model_for_verify(found_model)
            checks.append(check_weights(weights, manifest))
        except ModelError as error:
            if model_path is not None:
                raise
            checks.append(CheckResult("model weights", DIFFERS, (f"the model file cannot be loaded: {error}",)))
    found_data, how = find_data(manifest, data_dir)
    if found_data is None:
        checks.append(CheckResult("data fingerprint", NOT_CHECKED, (how,)))
    else:
        progress(f"data fingerprint of {found_data}")
        checks.append(check_data(found_data, manifest))
    what = "every evaluated image" if full else "the images shown in the report"
    if model is None or found_data is None:
        lacking = "the model" if model is None else "the data folder"
        checks.append(CheckResult(f"predictions on {what}", NOT_CHECKED, (f"needs {lacking}",)))
    else:
        progress(f"re-running the model on {what}")
        checks.append(check_predictions(model, run_dir, manifest, metrics, found_data, full, tolerance))
    return checks


def format_verification(v: Verification) -> str:
    """One block per check for the terminal, the verdict first; the first line names the checks
    that could not be made, so a partial check never reads like a full one."""
    missing = [c.name for c in v.not_checked]
    lines = [f"verify {v.run}" + (f": NOT CHECKED: {', '.join(missing)}" if missing else ": every check made")]
    width = max(len(c.verdict) for c in v.checks)
    for check in v.checks:
        lines.append(f"  {check.verdict.upper():<{width}}  {check.name}")
        lines += [f"  {'':<{width}}    {detail}" for detail in check.details]
    verdict = "all checks hold" if v.holds else f"{len(v.differing)} check(s) differ: {', '.join(c.name for c in v.differing)}"
    not_checked = [c.name for c in v.checks if c.verdict == NOT_CHECKED]
    lines.append(f"verdict: {verdict}" + (f" (not checked: {', '.join(not_checked)})" if not_checked else ""))
    return "\n".join(lines) + "\n"
