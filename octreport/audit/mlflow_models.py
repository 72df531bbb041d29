"""A model named by an MLflow URI, fetched to a local Keras file.

``models:/NAME/VERSION``, ``models:/NAME@ALIAS`` and ``runs:/RUN_ID/PATH`` are resolved on the
tracking server (an alias to the version it points at now), and the model's files are downloaded
once into a cache (``$XDG_CACHE_HOME/octreport/mlflow``, else ``~/.cache/octreport/mlflow``),
keyed by the server and the resolved version, then loaded like any ``.keras`` file. The manifest
records the URI and the resolved version (:meth:`RegistryModel.to_dict`), so ``verify`` fetches
the same version again when the cached file is gone.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from octreport.audit.mlflow_tracking import (
    client_for,
    describe_failure,
    require_mlflow,
    resolved_tracking_uri,
    server_errors,
)
from octreport.errors import ConfigError, ModelError, TrackingUnavailable

MLFLOW_SCHEMES = ("models:/", "runs:/")
KERAS_SUFFIXES = (".keras", ".h5")
_VERSION = re.compile(r"^models:/([^/@]+)/(\d+)$")
_ALIAS = re.compile(r"^models:/([^/@]+)@([^/@]+)$")
_RUN = re.compile(r"^runs:/([^/]+)/(.+)$")
_MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


@dataclass(frozen=True)
class RegistryModel:
    """A model fetched from MLflow: the URI given, what it resolved to, and the local Keras file."""

    uri: str
    name: str | None
    version: str | None
    run_id: str | None
    file: Path

    @property
    def pinned_uri(self) -> str:
        """The URI of exactly this version (an alias may move on)."""
        return f"models:/{self.name}/{self.version}" if self.name and self.version else self.uri

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self.uri, "name": self.name, "version": self.version, "run_id": self.run_id,
                "pinned_uri": self.pinned_uri}


def is_mlflow_uri(value: object) -> bool:
    return str(value).startswith(MLFLOW_SCHEMES)


def fetch_model(uri: str, tracking_uri: str | None = None, cache_root: Path | None = None) -> RegistryModel:
    """Resolve ``uri`` and download its model (once) into the cache. Raises :class:`ConfigError`
    for a URI of another form, :class:`ModelError` for a model, version or alias the server does
    not have (or one without a Keras file), and :class:`TrackingUnavailable` when the server fails."""
    uri = str(uri)
    require_mlflow(f"--model {uri}")
    client = client_for(tracking_uri)
    server = resolved_tracking_uri(tracking_uri)
    try:
        name, version, run_id, source = _resolve(client, uri)
        folder = (cache_root or default_cache_root()) / hashlib.sha256(server.encode()).hexdigest()[:12]
        folder = folder / (f"models/{name}/{version}" if name else f"runs/{run_id}/{source}")
        if not folder.is_dir():
            _download(f"models:/{name}/{version}" if name else uri, folder, server)
    except server_errors() as error:
        if getattr(error, "error_code", "") in _MISSING:
            raise ModelError(f"MLflow has no model at {uri} ({' '.join(str(error).split())[:240]}).") from None
        raise TrackingUnavailable(f"could not fetch --model {uri} from the MLflow tracking server {server}: "
                                  f"{describe_failure(error)}.") from error
    return RegistryModel(uri, name, version, run_id, _keras_file(folder, uri))


def default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "octreport" / "mlflow"


def _resolve(client, uri: str) -> tuple[str | None, str | None, str | None, str]:
    """(registered name, version, run id, artifact path) of ``uri``."""
    if (found := _VERSION.match(uri)) or (found := _ALIAS.match(uri)):
        name, which = found.groups()
        if found.re is _VERSION:
            version = client.get_model_version(name, which)
        else:
            version = client.get_model_version_by_alias(name, which)
        return name, str(version.version), version.run_id, ""
    if found := _RUN.match(uri):
        return None, None, found.group(1), found.group(2).strip("/")
    raise ConfigError(f"--model {uri}: expected models:/NAME/VERSION, models:/NAME@ALIAS or runs:/RUN_ID/PATH.")


def _download(uri: str, folder: Path, server: str) -> None:
    """Download ``uri`` whole into a scratch folder beside ``folder``, then move it into place."""
    from mlflow.artifacts import download_artifacts

    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        download_artifacts(artifact_uri=uri, dst_path=str(scratch), tracking_uri=server)
        os.replace(scratch, folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _keras_file(folder: Path, uri: str) -> Path:
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in KERAS_SUFFIXES and p.is_file())
    if not found:
        raise ModelError(f"{uri} holds no Keras model file (.keras or .h5); octreport audits Keras models.")
    return found[0]
