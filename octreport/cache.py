"""A folder of results that depend only on a model's weights, kept between runs.

A cron job that audits the same model on each day's new scans would otherwise repeat the same
activation maximisation every day. Each entry is one ``.npz`` file of named arrays, found by a key:
the SHA-256 of its *fields* (what it is, the model's fingerprint, every setting that shapes it,
octreport's version), written as canonical JSON. The entry also holds, in its ``__meta__`` array,
the format, the kind, the key, the fields and the SHA-256 of its arrays
(:func:`octreport.hashing.sha256_arrays`), so an entry is used only when all of them match and the
caller's own check of the arrays (shapes, dtypes) passes. A damaged or foreign entry is recomputed
with a warning and written over; it is never trusted.

Where: ``--cache-dir``, else ``$OCTREPORT_CACHE_DIR``, else ``$XDG_CACHE_HOME/octreport``, else
``~/.cache/octreport``; entries lie in ``<root>/v1/<kind>/<key>.npz``. Writes go through
:func:`octreport.runfolder.write_bytes_atomic` (a temporary file renamed into place), so two runs
sharing the folder each see a whole entry or none; the same key always holds the same result, so
the last writer wins harmlessly. A cache that cannot be written is a warning, never a failed run.

Size: each kind keeps its :data:`MAX_ENTRIES` most recently used entries (reading an entry marks
it used), so a job that trains a new model every night does not fill the disk.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from octreport._version import __version__
from octreport.guarded import parse_json
from octreport.hashing import sha256_arrays
from octreport.runfolder import write_bytes_atomic

log = logging.getLogger(__name__)

CACHE_ENV = "OCTREPORT_CACHE_DIR"
FORMAT = 1
META = "__meta__"
FROM_CACHE, COMPUTED = "cache", "computed"
MAX_ENTRIES = 512  # per kind; the least recently used go first

Check = Callable[[Mapping[str, np.ndarray]], str]
"""Says what is wrong with an entry's arrays ("" when they fit what the caller expects)."""


def default_cache_dir() -> Path:
    """``$OCTREPORT_CACHE_DIR``, else ``$XDG_CACHE_HOME/octreport``, else ``~/.cache/octreport``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "octreport"


def weights_cache_folder(cache_dir: str | Path | None) -> Path:
    """``cache_dir`` (``--cache-dir``) when given, else :func:`default_cache_dir`."""
    return Path(cache_dir).expanduser() if cache_dir else default_cache_dir()


def entry_key(kind: str, fields: Mapping[str, object]) -> str:
    """Hex SHA-256 of the canonical JSON of the entry's kind, fields, format and octreport version."""
    text = json.dumps({"kind": kind, "fields": fields, "format": FORMAT, "octreport": __version__},
                      sort_keys=True, separators=(",", ":"), default=str)
    return sha256_arrays([np.frombuffer(text.encode("utf-8"), np.uint8)])


@dataclass(frozen=True)
class ArrayCache:
    """The cache folder ``root`` (see the module docstring)."""

    root: Path

    def path(self, kind: str, fields: Mapping[str, object]) -> Path:
        return self.root / f"v{FORMAT}" / kind / f"{entry_key(kind, fields)}.npz"

    def load(self, kind: str, fields: Mapping[str, object], check: Check) -> dict[str, np.ndarray] | None:
        """The entry's arrays, or None when there is none or it cannot be trusted (with a warning)."""
        path = self.path(kind, fields)
        if not path.is_file():
            return None
        try:
            arrays = _read(path)
            problem = _problem(arrays, kind, entry_key(kind, fields)) or check(arrays)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
            problem = f"unreadable ({type(error).__name__}: {error})"
        if problem:
            log.warning("cache entry %s cannot be used: %s; computing it again", path, problem)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # used now: the last to be pruned
        return arrays

    def store(self, kind: str, fields: Mapping[str, object], arrays: Mapping[str, np.ndarray]) -> None:
        """Write the entry atomically; a cache that cannot be written is a warning."""
        path = self.path(kind, fields)
        key = entry_key(kind, fields)
        meta = {"format": FORMAT, "kind": kind, "key": key, "fields": fields, "checksum": _checksum(arrays)}
        buffer = io.BytesIO()
        np.savez(buffer, **{name: np.asarray(a) for name, a in arrays.items()},
                 **{META: np.frombuffer(json.dumps(meta, default=str).encode("utf-8"), np.uint8)})
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(path, buffer.getvalue())
        except OSError as error:
            log.warning("could not write the cache entry %s (%s); the run goes on without it",
                        path, error.strerror or type(error).__name__)
            return
        _prune(path.parent, MAX_ENTRIES)


def _prune(folder: Path, keep: int) -> None:
    """Remove all but the ``keep`` most recently used entries of ``folder`` (another run may be
    removing them too: what is already gone is skipped)."""
    used = []
    for entry in folder.glob("*.npz"):
        with contextlib.suppress(OSError):
            used.append((entry.stat().st_mtime, entry.name))
    for _, name in sorted(used, reverse=True)[keep:]:
        with contextlib.suppress(OSError):
            (folder / name).unlink()


def _read(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as entry:
        return {name: entry[name] for name in entry.files}


def _checksum(arrays: Mapping[str, np.ndarray]) -> str:
    names = sorted(n for n in arrays if n != META)
    return sha256_arrays([np.frombuffer(",".join(names).encode("utf-8"), np.uint8)] + [arrays[n] for n in names])


def _problem(arrays: Mapping[str, np.ndarray], kind: str, key: str) -> str:
    """What makes ``arrays`` not the entry ``key`` of ``kind`` ("" when nothing)."""
    if META not in arrays:
        return "no metadata"
    meta = parse_json(bytes(arrays[META]), "its metadata", ValueError)  # a damaged entry: recomputed
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("kind") != kind:
        return "another format or kind"
    if meta.get("key") != key:
        return "it belongs to another key"
    if meta.get("checksum") != _checksum(arrays):
        return "its arrays do not match their checksum"
    return ""
