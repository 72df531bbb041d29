"""Where the files that ship with octreport are: templates and the bundled sample data.

In a source checkout they are the top-level ``templates/`` and ``sample_data/`` folders; in an
installed wheel they are mapped into the package as ``octreport.templates`` and
``octreport.sample_data`` (see ``pyproject.toml``). These are the only functions that know that.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_CHECKOUT_ROOT = Path(__file__).resolve().parent.parent


def _shipped_folder(package: str, checkout_name: str, marker: str) -> Path:
    checkout = _CHECKOUT_ROOT / checkout_name
    if (checkout / marker).exists():
        return checkout
    try:
        installed = Path(str(resources.files(package)))
    except ModuleNotFoundError:
        installed = None
    if installed is not None and (installed / marker).exists():
        return installed
    raise FileNotFoundError(f"octreport's {checkout_name}/ folder is missing from this installation.")


def templates_dir() -> Path:
    """The folder holding the default Jinja2 templates and CSS."""
    return _shipped_folder("octreport.templates", "templates", "base.html")


def sample_data_dir() -> Path:
    """The bundled synthetic OCT data set (Kermany layout)."""
    return _shipped_folder("octreport.sample_data", "sample_data", "train")
