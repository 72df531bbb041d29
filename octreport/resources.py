"""Where the files that ship with octreport are: templates and the bundled sample data.

In a source checkout they are the top-level ``templates/`` and ``sample_data/`` folders; in an
installed wheel they are mapped into the package as ``octreport/templates`` and
``octreport/sample_data`` (see ``pyproject.toml``). These are the only functions that know that.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _shipped_folder(name: str, marker: str) -> Path:
    for candidate in (_PACKAGE_DIR.parent / name, _PACKAGE_DIR / name):  # checkout, then wheel
        if (candidate / marker).exists():
            return candidate
    raise FileNotFoundError(f"octreport's {name}/ folder is missing from this installation; reinstall octreport.")


def templates_dir() -> Path:
    """The folder holding the default Jinja2 templates and CSS."""
    return _shipped_folder("templates", "base.html")


def sample_data_dir() -> Path:
    """The bundled synthetic OCT data set (Kermany layout)."""
    return _shipped_folder("sample_data", "train")
