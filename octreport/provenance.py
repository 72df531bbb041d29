"""Versions of everything that shapes a report, for the appendix and metrics.json."""

from __future__ import annotations

import platform
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
