"""Reading a TOML file (the configuration file, a model card) with one clear error for each way it can fail."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from octreport.errors import ConfigError
from octreport.guarded import MAX_DEPTH, check_depth, read_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    try:
        import tomli as tomllib
    except ImportError:
        tomllib = None  # type: ignore[assignment]



def read_toml(path: Path | str) -> dict[str, Any]:
    """The TOML file at ``path`` as a dict; a :class:`ConfigError` when it is missing, too large,
    malformed or nested too deep (:mod:`octreport.guarded`)."""
    path = Path(path).expanduser()
    if tomllib is None:  # pragma: no cover
        raise ConfigError(f"reading {path} needs Python 3.11 or the 'tomli' package (pip install tomli).")
    text = read_text(path, f"configuration file {path}")
    try:
        document = tomllib.loads(text)
    except RecursionError:
        raise ConfigError(f"configuration file {path} nests deeper than {MAX_DEPTH} levels: refused.") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"configuration file {path} is not valid TOML: {error}.") from None
    return check_depth(document, f"configuration file {path}")
