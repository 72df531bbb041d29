"""Reading files that may be hostile: a run folder's JSON, a model card, a configuration, a
``--patients``, ``--groups`` or ``--sentinels`` file.

One small reader for all of them: a size cap checked before reading, JSON (and TOML) parsed with
deep nesting refused (Python's parsers end in ``RecursionError`` near depth 1,000, and code that
walks a document recurses too), and type checks for what a caller expects. Every failure is the
caller's own error class (``ConfigError`` for a user's file, ``DataError`` for a data file, ...)
with a message that names the file, never a traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from octreport.errors import ConfigError, OctReportError

MAX_RUN_FILE_BYTES = 256 * 2**20
"""The largest run-folder JSON read (a manifest lists about 150 bytes per image: 1.7 million images)."""
MAX_USER_FILE_BYTES = 64 * 2**20
"""The largest user file read (a card, a configuration, a patients, groups or sentinels file)."""
MAX_DEPTH = 64
"""The deepest nesting of a JSON or TOML document read (octreport's own files nest at most 8 deep)."""

ErrorClass = type[OctReportError]

SHAPE_ERRORS = (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError, RecursionError)
"""What code reading a parsed document raises when it is not shaped as expected (a number where a
list should be); the one place each reader turns them into its own error is its entry point."""


def not_shaped(error: BaseException, what: str) -> str:
    """``"metrics.json is not shaped as octreport writes it (TypeError: ...)"``."""
    return f"{what} is not shaped as octreport writes it ({type(error).__name__}: {error})"


def read_bytes(path: Path | str, what: str, error: ErrorClass = ConfigError, max_bytes: int = MAX_USER_FILE_BYTES) -> bytes:
    """The bytes of ``path``; ``error`` when it cannot be read or is larger than ``max_bytes``.
    ``what`` names the file in every message (``"model card file card.json"``)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            raw = handle.read(max_bytes + 1) if size <= max_bytes else b""
    except FileNotFoundError:
        raise error(f"{what} cannot be read: it does not exist.") from None
    except OSError as problem:
        raise error(f"{what} cannot be read: {problem.strerror or problem}.") from None
    if size > max_bytes or len(raw) > max_bytes:
        raise error(f"{what} is larger than {max_bytes:,} bytes: refused.")
    return raw


def read_text(path: Path | str, what: str, error: ErrorClass = ConfigError, max_bytes: int = MAX_USER_FILE_BYTES,
              encoding: str = "utf-8") -> str:
    """:func:`read_bytes` decoded; ``error`` when it is not text in ``encoding``."""
    raw = read_bytes(path, what, error, max_bytes)
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as problem:
        raise error(f"{what} is not {encoding} text ({problem.reason} at byte {problem.start}).") from None


def check_depth(value: Any, what: str, error: ErrorClass = ConfigError, max_depth: int = MAX_DEPTH) -> Any:
    """``value`` itself; ``error`` when its lists and objects nest deeper than ``max_depth``."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list, tuple)):
            if depth > max_depth:
                raise error(f"{what} nests deeper than {max_depth} levels: refused.")
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return value


def parse_json(raw: bytes | str, what: str, error: ErrorClass = ConfigError) -> Any:
    """The JSON document in ``raw``; ``error`` when it is not JSON or nests too deep."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise error(f"{what} nests deeper than {MAX_DEPTH} levels: refused.") from None
    except ValueError as problem:
        raise error(f"{what} is not valid JSON ({problem}).") from None
    return check_depth(value, what, error)


def read_json(path: Path | str, what: str, error: ErrorClass = ConfigError, max_bytes: int = MAX_USER_FILE_BYTES) -> Any:
    """The JSON file at ``path``, read with :func:`read_bytes` and parsed with :func:`parse_json`."""
    return parse_json(read_bytes(path, what, error, max_bytes), what, error)


def expect(value: Any, kind: type | tuple[type, ...], what: str, error: ErrorClass = ConfigError) -> Any:
    """``value`` when it is a ``kind``; otherwise ``error`` saying what it is instead."""
    if isinstance(value, kind) and not (isinstance(value, bool) and bool not in _kinds(kind)):
        return value
    expected = " or ".join(_KIND_NAMES.get(k, k.__name__) for k in _kinds(kind))
    found = _KIND_NAMES.get(type(value), type(value).__name__)
    raise error(f"{what} holds {found}, expected {expected}.")


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


_KIND_NAMES = {dict: "an object", list: "a list", str: "a text", int: "a whole number", float: "a number",
               bool: "true or false", type(None): "null"}
