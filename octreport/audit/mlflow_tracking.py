"""Send a finished run folder to an MLflow tracking server, as one MLflow run.

Reads the run folder (through :func:`octreport.audit.mlflow_record.read_run_folder`) and writes
nothing into it. MLflow is an optional extra (``pip install "octreport[mlflow]"``):
:func:`require_mlflow` refuses the MLflow options with a :class:`ConfigError` (exit 2) naming it,
before any work. A server that cannot be reached, refuses the credentials or times out raises
:class:`TrackingUnavailable` (exit 9) after a bounded number of retries (:data:`HTTP_LIMITS`,
each overridable by setting the variable yourself); the run folder is complete by then, and
``octreport publish RUN --mlflow`` logs it later (a run folder already logged is not logged twice;
``--mlflow-register`` then registers that run's model). A tracking URI is shown, logged and recorded
only without its ``user:password@`` (:func:`display_uri`).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from octreport.audit.manifest import MANIFEST_NAME
from octreport.audit.mlflow_record import RUN_FOLDER_TAG, TAG_PREFIX, MlflowRecord, without_credentials
from octreport.audit.pdf_attachments import with_attachment_replaced
from octreport.errors import ConfigError, TrackingUnavailable

log = logging.getLogger(__name__)

EXTRA = 'pip install "octreport[mlflow]"'
DEFAULT_EXPERIMENT = "octreport"
MODEL_ARTIFACT = "model"
CARD_ARTIFACT = "model_card.json"
PDF_NAME = "report.pdf"
HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",      # MLflow's default: 7
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",  # default 2 (7 retries of 2**n s: minutes)
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",          # seconds per request; default 120
}
"""A dead server fails within seconds: at most 3 tries a request, 10 s each."""
QUIET_CLIENT = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
"""MLflow prints the run's URL on standard output, where octreport prints the report's path for scripts."""
QUIET_PROGRESS = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
"""Under ``--quiet``: no download progress bar on standard error."""
NOISY_LOGGERS = ("mlflow", "urllib3", "alembic")
NOT_APPLICABLE = "n/a"
_BATCH = 100  # params or tags per log_batch call (the REST API's limit for params)
_METRIC_BATCH = 1000


@dataclass(frozen=True)
class TrackingSettings:
    """Where to log: ``tracking_uri`` (None: ``MLFLOW_TRACKING_URI``, else MLflow's default),
    the experiment, and the registered-model name a trained model becomes a version of."""

    tracking_uri: str | None = None
    experiment: str = DEFAULT_EXPERIMENT
    register: str | None = None


@dataclass(frozen=True)
class LoggedRun:
    """What the server now holds: the MLflow run, the model version registered (if any), and the
    registry model version the audit was tagged onto (``name/version``, if any)."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    registered_version: str | None = None
    tagged_version: str | None = None
    already_logged: bool = False
    not_registered: str | None = None
    """Why ``--mlflow-register`` registered nothing (the run trained no model), else None."""


def require_mlflow(what: str = "--mlflow") -> None:
    """Refuse ``what`` with a :class:`ConfigError` naming the extra when MLflow is not installed."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise ConfigError(f"{what} needs MLflow, which is not installed. Install the optional extra: {EXTRA}") from None


def bound_http_retries() -> None:
    """Set MLflow's HTTP retry and timeout variables to :data:`HTTP_LIMITS`, and keep its client
    off standard output (:data:`QUIET_CLIENT`), where the user has not set them."""
    for name, value in {**HTTP_LIMITS, **QUIET_CLIENT}.items():
        os.environ.setdefault(name, value)


def quiet_mlflow() -> None:
    """For ``--quiet``: no artifact progress bar (unless the user set the variable) and MLflow's and
    urllib3's loggers (MLflow's own stderr handler, retry warnings) at ERROR."""
    for name, value in QUIET_PROGRESS.items():
        os.environ.setdefault(name, value)
    try:
        import mlflow  # noqa: F401  (configures its loggers on import: set their levels after it)
    except ImportError:
        pass
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def display_uri(uri: str | None) -> str:
    """``uri`` as octreport shows, logs and records it: without ``user:password@``."""
    return without_credentials(str(uri)) if uri else ""


def client_for(tracking_uri: str | None):
    """An ``MlflowClient`` with bounded retries."""
    bound_http_retries()
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def server_errors() -> tuple[type[BaseException], ...]:
    """What talking to a tracking server raises: MLflow's own errors (its REST client wraps
    connection failures and HTTP errors in them), requests' errors, and socket errors."""
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException

    return MlflowException, RequestException, OSError


def resolved_tracking_uri(tracking_uri: str | None) -> str:
    """The server a client for ``tracking_uri`` talks to (``MLFLOW_TRACKING_URI`` or MLflow's default
    when None), as given: pass it through :func:`display_uri` before showing or recording it."""
    if tracking_uri:
        return tracking_uri
    import mlflow

    return str(mlflow.get_tracking_uri())


def log_record(record: MlflowRecord, settings: TrackingSettings, *, skip_if_logged: bool = False) -> LoggedRun:
    """Log ``record`` as one MLflow run (finished when everything is up), register its trained model
    when ``settings.register`` is set, and tag the registry version it audited. Raises
    :class:`TrackingUnavailable` naming the server and the reason when the server fails."""
    uri = display_uri(resolved_tracking_uri(settings.tracking_uri))
    not_registered = (f"the run folder {record.run_folder} holds no model the run trained ({record.kind}); "
                      f"--mlflow-register {settings.register} registered nothing"
                      if settings.register and record.model_file is None else None)
    try:
        client = client_for(settings.tracking_uri)  # MLflow refuses some stores here (a file store, a bad scheme)
        experiment_id = _experiment_id(client, settings.experiment)
        if skip_if_logged:
            found = _logged_run(client, experiment_id, record.run_folder)
            if found is not None:
                registered = None
                if settings.register and record.model_file is not None:
                    registered = _register_logged(client, settings.register, found)
                return LoggedRun(found.info.run_id, experiment_id, uri, registered, already_logged=True,
                                 not_registered=not_registered)
        run = client.create_run(experiment_id, run_name=record.run_name, tags=dict(record.tags))
        run_id = run.info.run_id
        _log_numbers(client, run_id, record)
        _log_artifacts(client, run_id, record)
        registered = None
        if record.model_file is not None:
            _log_keras_model(client, run_id, record.model_file)
            if settings.register:
                registered = _register(client, settings.register, run.info.artifact_uri, run_id)
        tagged = _tag_audited_version(client, record, run_id)
        client.set_terminated(run_id, "FINISHED")
    except server_errors() as error:
        raise TrackingUnavailable(f"logging to the MLflow tracking server {uri} failed: {describe_failure(error)}. "
                                  f"The run folder {record.run_folder} is complete; log it later with "
                                  f"`octreport publish {record.run_folder} --mlflow`.") from error
    log.debug("logged to MLflow run %s (experiment %s at %s)", run_id, experiment_id, uri)
    return LoggedRun(run_id, experiment_id, uri, registered, tagged, not_registered=not_registered)


def _log_artifacts(client, run_id: str, record: MlflowRecord) -> None:
    """The run folder's files, those in ``record.replaced_artifacts`` (the masked manifest) from a
    scratch folder (the run folder is never written), the PDF with the replaced files embedded in
    their place (left out, with a warning, when that cannot be done), and the model card."""
    replaced = dict(record.replaced_artifacts or {})
    with tempfile.TemporaryDirectory(prefix="octreport-mlflow-") as scratch:
        for path in record.artifacts:
            if path.name == PDF_NAME and MANIFEST_NAME in replaced:
                content = with_attachment_replaced(path, MANIFEST_NAME, replaced[MANIFEST_NAME])
                if content is None:
                    log.warning("%s is not logged to MLflow: it embeds the unmasked %s, and a copy embedding "
                                "the masked one could not be made", PDF_NAME, MANIFEST_NAME)
                    continue
                replaced[PDF_NAME] = content
            if path.name in replaced:
                path = Path(scratch) / path.name
                path.write_bytes(replaced[path.name])
            client.log_artifact(run_id, str(path))
    if record.model_card is not None:
        client.log_dict(run_id, dict(record.model_card), CARD_ARTIFACT)


def describe_failure(error: BaseException) -> str:
    """One line: what went wrong talking to the server (refused credentials, unreachable, timeout)."""
    text = without_credentials(" ".join(str(error).split()))
    lowered = text.lower()
    refused = getattr(error, "error_code", "") in ("UNAUTHENTICATED", "PERMISSION_DENIED")
    if refused or re.search(r"\b(401|403)\b", text) or any(word in lowered for word in ("unauthorized", "forbidden")):
        what = "the server refused the credentials"
    elif "timed out" in lowered or "timeout" in lowered:
        what = "the server did not answer in time"
    elif any(word in lowered for word in ("connection", "max retries", "refused", "name or service", "resolve")):
        what = "the server could not be reached"
    else:
        what = "the server answered with an error"
    return f"{what} ({type(error).__name__}: {text[:240]}{'...' if len(text) > 240 else ''})"


def _experiment_id(client, name: str) -> str:
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else client.create_experiment(name)


def _logged_run(client, experiment_id: str, run_folder: Path):
    """The finished MLflow run already holding ``run_folder``, or None."""
    folder = str(run_folder).replace("'", "\\'")
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{RUN_FOLDER_TAG}` = '{folder}'", max_results=10)
    finished = [run for run in runs if run.info.status == "FINISHED"]
    return finished[0] if finished else None


def _log_numbers(client, run_id: str, record: MlflowRecord) -> None:
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    for chunk in _chunks([Param(k, v) for k, v in record.params.items()], _BATCH):
        client.log_batch(run_id, params=chunk)
    metrics = [Metric(k, v, now, 0) for k, v in record.metrics.items()]
    metrics += [Metric(k, v, now, step) for k, values in record.step_metrics.items() for step, v in enumerate(values)]
    for chunk in _chunks(metrics, _METRIC_BATCH):
        client.log_batch(run_id, metrics=chunk)


def _log_keras_model(client, run_id: str, model_file: Path) -> None:
    """The trained model as an MLflow model (Keras flavour) under ``model/``, with octreport's
    sidecar beside the Keras file so that auditing it later keeps its preprocessing and classes."""
    from octreport.logsetup import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras
    import mlflow.keras

    from octreport.models.metadata import sidecar_path

    model = keras.models.load_model(model_file, compile=False, safe_mode=True)
    requirements = [f"keras=={keras.__version__}", f"tensorflow=={_version('tensorflow')}"]
    with tempfile.TemporaryDirectory(prefix="octreport-mlflow-") as scratch:
        target = Path(scratch) / MODEL_ARTIFACT
        mlflow.keras.save_model(model, str(target), pip_requirements=requirements, signature=_signature(model))
        kept = next(target.rglob("*.keras"))
        if sidecar_path(model_file).is_file():
            shutil.copy(sidecar_path(model_file), sidecar_path(kept))
        client.log_artifacts(run_id, str(target), MODEL_ARTIFACT)


def _signature(model):
    """Images in (batch, height, width, channels), class probabilities out, both float32."""
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    def spec(shape) -> Schema:
        return Schema([TensorSpec(np.dtype("float32"), (-1, *(int(d) for d in tuple(shape)[1:])))])

    return ModelSignature(inputs=spec(model.inputs[0].shape), outputs=spec(model.outputs[0].shape))


def _register(client, name: str, artifact_uri: str, run_id: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
    except MlflowException as error:
        if getattr(error, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(name, f"{artifact_uri}/{MODEL_ARTIFACT}", run_id=run_id)
    log.info("registered the trained model as %s version %s", name, version.version)
    return str(version.version)


def _register_logged(client, name: str, run) -> str:
    """Register the model of the already logged ``run`` as a version of ``name``; the version that
    already holds it when there is one (a second ``publish --mlflow-register`` adds nothing)."""
    run_id = run.info.run_id
    for version in client.search_model_versions(f"name = '{_quoted(name)}' and run_id = '{run_id}'"):
        return str(version.version)
    return _register(client, name, run.info.artifact_uri, run_id)


def _quoted(text: str) -> str:
    return text.replace("'", "\\'")


def _tag_audited_version(client, record: MlflowRecord, run_id: str) -> str | None:
    """Tag the registry version this run audited with its accuracy, gates and audit run."""
    registry = record.registry_model or {}
    if not registry.get("name") or not registry.get("version"):
        return None
    name, version = str(registry["name"]), str(registry["version"])
    for key, value in audit_tags(record, run_id).items():
        client.set_model_version_tag(name, version, key, value)
    return f"{name}/{version}"


def audit_tags(record: MlflowRecord, run_id: str) -> dict[str, str]:
    """The tags an audit leaves on the model version it judged: every one on every audit, so that
    none is left over from an earlier audit (``n/a`` where this audit has no value; ``gates``:
    ``passed``, ``failed`` or ``none`` when no gate ran)."""
    gates = "none" if record.gates_passed is None else "passed" if record.gates_passed else "failed"
    low = record.metrics.get("accuracy.low")
    subset = bool(record.all_classes) and set(record.evaluated_classes) != set(record.all_classes)
    return {
        f"{TAG_PREFIX}audit_run_id": run_id,
        f"{TAG_PREFIX}audit_run_folder": str(record.run_folder),
        f"{TAG_PREFIX}kind": record.kind,
        f"{TAG_PREFIX}gates": gates,
        f"{TAG_PREFIX}accuracy": NOT_APPLICABLE if record.accuracy is None else f"{record.accuracy:.4f}",
        f"{TAG_PREFIX}accuracy_low": NOT_APPLICABLE if low is None else f"{low:.4f}",
        f"{TAG_PREFIX}evaluated_classes": ",".join(record.evaluated_classes) or NOT_APPLICABLE,
        f"{TAG_PREFIX}class_subset": (f"yes: {len(record.evaluated_classes)} of the model's "
                                      f"{len(record.all_classes)} classes" if subset else "no"),
    }


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)
