"""When a run was made and with what: the time stamps of runs, and the versions of everything
that shapes a report (the appendix, metrics.json, manifest.json)."""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from importlib import metadata

from octreport._version import __version__

PACKAGES = ("tensorflow", "keras", "numpy", "matplotlib", "jinja2", "weasyprint", "click", "pillow")


def package_versions() -> dict[str, str]:
    versions = {"octreport": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def timestamp_now() -> str:
    """Now, as the runs record it: local time with its UTC offset, to the second (ISO 8601)."""
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
