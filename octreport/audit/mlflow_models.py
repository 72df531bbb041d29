"""A model named by an MLflow URI, fetched to a local Keras file.

``models:/NAME/VERSION``, ``models:/NAME@ALIAS`` and ``runs:/RUN_ID/PATH`` are resolved on the
tracking server (an alias to the version it points at now), and the model's files are downloaded
once into ``mlflow/`` of octreport's cache folder (``--cache-dir``, else
:func:`octreport.cache.default_cache_dir`: ``$OCTREPORT_CACHE_DIR``, ``$XDG_CACHE_HOME/octreport``,
``~/.cache/octreport``), keyed by the server and the resolved version, then loaded like any
``.keras`` file. The manifest records the URI, the resolved version and the server (without
credentials; :meth:`RegistryModel.to_dict`), so ``verify`` fetches the same version again from the
same server when the cached file is gone.

Two processes fetching the same version at once each download into a scratch folder of their own;
the first to finish moves it into place and the other uses that one. A cache folder that cannot be
written is a :class:`ConfigError` naming it (exit 2), never a failed server.
"""

from __future__ import annotations

import errno
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
    display_uri,
    require_mlflow,
    resolved_tracking_uri,
    server_errors,
)
from octreport.cache import weights_cache_folder
from octreport.errors import ConfigError, ModelError, TrackingUnavailable

CACHE_SUBFOLDER = "mlflow"

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
    tracking_uri: str | None = None
    """The server it was fetched from, without credentials (:func:`display_uri`)."""

    @property
    def pinned_uri(self) -> str:
        """The URI of exactly this version (an alias may move on)."""
        return f"models:/{self.name}/{self.version}" if self.name and self.version else self.uri

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self.uri, "name": self.name, "version": self.version, "run_id": self.run_id,
                "pinned_uri": self.pinned_uri, "tracking_uri": self.tracking_uri}


def is_mlflow_uri(value: object) -> bool:
    return str(value).startswith(MLFLOW_SCHEMES)


def fetch_model(uri: str, tracking_uri: str | None = None, cache_dir: str | Path | None = None) -> RegistryModel:
    """Resolve ``uri`` and download its model (once) into the cache (``cache_dir``: ``--cache-dir``,
    None: :func:`octreport.cache.default_cache_dir`). Raises :class:`ConfigError` for a URI of
    another form or a cache folder that cannot be written, :class:`ModelError` for a model, version
    or alias the server does not have (or one without a Keras file), and
    :class:`TrackingUnavailable` when the server fails."""
    uri = str(uri)
    require_mlflow(f"--model {uri}")
    server = resolved_tracking_uri(tracking_uri)
    shown = display_uri(server)
    try:
        client = client_for(tracking_uri)  # MLflow refuses some stores here (a file store, a bad scheme)
        name, version, run_id, source = _resolve(client, uri)
    except server_errors() as error:
        raise _server_error(error, uri, shown) from None
    folder = cache_root(cache_dir) / hashlib.sha256(shown.encode()).hexdigest()[:12]
    folder = folder / (f"models/{name}/{version}" if name else f"runs/{run_id}/{source}")
    if not folder.is_dir():
        _download(f"models:/{name}/{version}" if name else uri, folder, server, shown)
    return RegistryModel(uri, name, version, run_id, _keras_file(folder, uri), shown)


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """``mlflow/`` of octreport's cache folder (:func:`octreport.cache.weights_cache_folder`)."""
    return weights_cache_folder(cache_dir) / CACHE_SUBFOLDER


def _server_error(error: BaseException, uri: str, server: str) -> Exception:
    if getattr(error, "error_code", "") in _MISSING:
        return ModelError(f"MLflow has no model at {uri} ({describe_failure(error)}).")
    return TrackingUnavailable(f"could not fetch --model {uri} from the MLflow tracking server {server}: "
                               f"{describe_failure(error)}.")


def _cache_error(error: OSError, folder: Path) -> ConfigError:
    return ConfigError(f"the MLflow model cache folder {folder} cannot be written "
                       f"({error.strerror or error}). Give a writable one with --cache-dir or OCTREPORT_CACHE_DIR.")


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


def _download(uri: str, folder: Path, server: str, shown: str) -> None:
    """Download ``uri`` whole into a scratch folder beside ``folder``, then move it into place;
    when another process put it there first, that one is kept."""
    from mlflow.artifacts import download_artifacts

    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    except OSError as error:
        raise _cache_error(error, folder.parent) from None
    try:
        try:
            download_artifacts(artifact_uri=uri, dst_path=str(scratch), tracking_uri=server)
        except server_errors() as error:
            if isinstance(error, OSError) and error.errno in _LOCAL_ERRNOS:
                raise _cache_error(error, folder.parent) from None  # the disk, not the server
            raise _server_error(error, uri, shown) from None
        try:
            os.replace(scratch, folder)
        except OSError as error:
            if not (error.errno in (errno.ENOTEMPTY, errno.EEXIST) and folder.is_dir()):
                raise _cache_error(error, folder.parent) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


_LOCAL_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT)
"""Errors of writing the download into the cache folder (a socket error is none of these)."""


def _keras_file(folder: Path, uri: str) -> Path:
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in KERAS_SUFFIXES and p.is_file())
    if not found:
        raise ModelError(f"{uri} holds no Keras model file (.keras or .h5); octreport audits Keras models.")
    return found[0]
