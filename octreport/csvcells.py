"""CSV cells a spreadsheet cannot run: the one rule for every CSV octreport writes.

OWASP's rule for CSV injection: a cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return is a formula to Excel, LibreOffice and Google Sheets (``=HYPERLINK(...)``,
``@SUM(...)``); prefixed with ``'`` it is shown as text. A cell that is a plain number (``-0.5``,
``1e-05``) stays as it is, so numbers stay numbers. A cell that begins with ``'`` itself gets one
more, so :func:`from_csv_cell` gives every cell back exactly.
"""

from __future__ import annotations

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def csv_cell(value: object) -> str:
    """``value`` as a CSV cell a spreadsheet shows as text, never runs (see the module's docstring)."""
    text = str(value)
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def from_csv_cell(text: str) -> str:
    """What :func:`csv_cell` was given, from what it wrote."""
    return text[1:] if text.startswith("'") else text
