"""Run folders: each run writes into a hidden temporary folder, moved into place only when complete.

``OUT_ROOT/20261126-101500-3fa2c1/`` holds one finished run; ``OUT_ROOT/latest`` is a symbolic
link to the newest finished run. A run that raises or is interrupted is renamed
``OUT_ROOT/<name>.failed`` (its log kept) and ``latest`` is left where it was.

Every file of a run is written atomically (:func:`atomic_path`): to a temporary file in the same
folder, then renamed over the target, so a failure never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from octreport.errors import ConfigError

log = logging.getLogger(__name__)

LATEST = "latest"
LOG_NAME = "run.log"
FAILED_SUFFIX = ".failed"
INCOMPLETE_PREFIX = ".incomplete-"


def new_run_name(now: float | None = None) -> str:
    """Sorts by start time; the random suffix keeps two runs started in the same second apart."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"{stamp}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class RunFolder:
    """``work``: where the run writes; ``final``: where it lands when complete."""

    work: Path
    final: Path

    def published(self, path: Path) -> Path:
        """Where a file written under ``work`` will be once the run is complete."""
        return self.final / path.relative_to(self.work)


def prepare_output_folder(folder: Path, what: str = "--out") -> Path:
    """Create ``folder`` (and its parents) and prove it can be written, by writing and removing a
    small temporary file, before any work starts. Raises :class:`ConfigError` (exit 2) with a
    one-line message naming the folder and the reason (a parent that is a file, no permission,
    a read-only or virtual file system such as /proc)."""
    folder = Path(folder).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".octreport-write-probe-{secrets.token_hex(4)}"
        with open(probe, "wb") as handle:
            handle.write(b"octreport")
        probe.unlink()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        if error.errno in (errno.ENOTDIR, errno.EEXIST):
            reason = "a part of the path is a file, not a folder"
        where = f" ({error.filename})" if error.filename and Path(error.filename) != folder else ""
        raise ConfigError(
            f"{what} '{folder}' cannot be created or written: {reason}{where}. "
            f"Choose a folder you can write to (it is created if it does not exist)."
        ) from None
    return folder


@contextmanager
def run_folder(out_root: Path) -> Iterator[RunFolder]:
    """Yield a fresh temporary folder; publish it as ``out_root/<name>`` when the block succeeds."""
    out_root.mkdir(parents=True, exist_ok=True)
    name = new_run_name()
    folder = RunFolder(out_root / f"{INCOMPLETE_PREFIX}{name}", out_root / name)
    folder.work.mkdir()
    handler = _attach_log(folder.work / LOG_NAME)
    try:
        yield folder
    except BaseException:
        failed = out_root / f"{name}{FAILED_SUFFIX}"
        log.error("run failed; its folder and log are kept as %s", failed)
        _detach_log(handler)
        os.replace(folder.work, failed)
        raise
    _detach_log(handler)
    os.replace(folder.work, folder.final)
    point_latest(out_root, name)


def point_latest(out_root: Path, name: str) -> None:
    """Atomically make ``out_root/latest`` a relative link to ``name``. On a file system without
    symbolic links (some network shares, FAT) the run stays published and only the link is missing."""
    temporary = out_root / f".latest-{secrets.token_hex(4)}"
    try:
        os.symlink(name, temporary)
        os.replace(temporary, out_root / LATEST)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        log.warning("could not point %s at %s (%s); the run itself is complete", out_root / LATEST, name,
                    error.strerror or error)


def _attach_log(path: Path) -> logging.Handler:
    """Copy octreport's log into the run folder, at INFO whatever the terminal shows."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    package_logger = logging.getLogger("octreport")
    package_logger.addHandler(handler)
    if package_logger.getEffectiveLevel() > logging.INFO:
        package_logger.setLevel(logging.INFO)
    return handler


def _detach_log(handler: logging.Handler) -> None:
    logging.getLogger("octreport").removeHandler(handler)
    handler.close()


def _read_umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it; read once, at import
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on failure it goes.

    Whatever the body writes to the yielded path appears at ``path`` all at once (``os.replace``
    is atomic within one file system) or not at all.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
