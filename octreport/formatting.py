"""How numbers read in the report, the comparison and the terminal: one definition of each format.

Every function takes a number or None (a missing or undefined value, shown as an en dash) and
returns text. They are the report's Jinja filters too (:data:`octreport.report.render.FILTERS`), so
a Jinja ``Undefined`` is accepted where it must raise (``StrictUndefined``) and name the field.
"""

from __future__ import annotations

import math
from typing import Any

import jinja2

MISSING = "\u2013"  # en dash: an undefined metric, or one the paper does not give
MINUS = "\u2212"


def _number(value: object, filter_name: str) -> float | None:
    """``value`` as a float, None for None and NaN; a clear error for anything else."""
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises here, naming the missing field
        return None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"filter {filter_name!r} expects a number or None, got {type(value).__name__} {value!r}")
    number = float(value)
    return None if math.isnan(number) else number


def pct(value: float | None, digits: int = 1) -> str:
    """A fraction as a percentage: ``0.966`` -> ``"96.6%"``; None or NaN -> ``"–"``."""
    number = _number(value, "pct")
    return MISSING if number is None else f"{100 * number:.{digits}f}%"


def num(value: float | None, digits: int = 3) -> str:
    """Fixed decimals: ``0.91234`` -> ``"0.912"``; None or NaN -> ``"–"``."""
    number = _number(value, "num")
    return MISSING if number is None else f"{number:.{digits}f}"


def int_sep(value: int | None) -> str:
    """An integer with thousands separators: ``12345`` -> ``"12,345"``; None -> ``"–"``."""
    number = _number(value, "int_sep")
    if number is None:
        return MISSING
    if not number.is_integer():
        raise TypeError(f"filter 'int_sep' expects a whole number, got {value!r}")
    return f"{int(number):,}"


def delta_pct(value: float | None, reference: float | None, digits: int = 1) -> str:
    """``value - reference`` in percentage points with its sign: ``(0.95, 0.978)`` -> ``"−2.8 pp"``.

    ``"–"`` when either is missing. Used for "ours beside the published figure".
    """
    ours, ref = _number(value, "delta_pct"), _number(reference, "delta_pct")
    if ours is None or ref is None:
        return MISSING
    points = round(100 * (ours - ref), digits)
    if points == 0:
        return f"{0:.{digits}f} pp"
    sign = "+" if points > 0 else MINUS
    return f"{sign}{abs(points):.{digits}f} pp"


def signed(value: float | None, digits: int = 3) -> str:
    """A difference with its sign: ``0.0123`` -> ``"+0.012"``, ``-2`` (digits 0) -> ``"−2"``; None -> ``"–"``.

    """
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises here, naming the missing field
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"filter 'signed' expects a number or None, got {type(value).__name__} {value!r}")
    rounded = round(float(value), digits)
    if rounded == 0:
        return f"{0:.{digits}f}"
    return f"{'+' if rounded > 0 else MINUS}{abs(rounded):.{digits}f}"


def level_text(level: float) -> str:
    """A confidence level as a percentage: ``0.95`` -> ``"95%"``, ``0.975`` -> ``"97.5%"``."""
    return f"{100 * float(level):g}%"


def _bounds(interval: Any, digits: int, fraction: bool) -> str | None:
    """``"88.0–95.4"`` (or ``"0.982–0.997"``) from an interval's low and high, None when unknown."""
    if isinstance(interval, jinja2.Undefined):
        str(interval)
    if interval is None or getattr(interval, "low", None) is None or getattr(interval, "high", None) is None:
        return None
    scale = 100.0 if fraction else 1.0
    return f"{scale * interval.low:.{digits}f}\u2013{scale * interval.high:.{digits}f}"


def ci_bounds(interval: Any, kind: str = "fraction", digits: int | None = None) -> str:
    """``"95% CI 88.0–95.4"`` for a fraction (bounds in percent), ``"95% CI 0.982–0.997"`` for a
    score; ``""`` when the interval is unknown."""
    fraction = kind == "fraction"
    bounds = _bounds(interval, (1 if fraction else 3) if digits is None else digits, fraction)
    return "" if bounds is None else f"{level_text(interval.level)} CI {bounds}"


def ci_range(interval: Any, kind: str = "fraction", digits: int | None = None) -> str:
    """Only the bounds, ``"88.0–95.4"``, for a table whose caption states the level; ``""`` when unknown."""
    fraction = kind == "fraction"
    return _bounds(interval, (1 if fraction else 3) if digits is None else digits, fraction) or ""


def with_ci(interval: Any, kind: str = "fraction", digits: int | None = None) -> str:
    """``"92.5% (95% CI 88.0–95.4)"``; the value alone when its interval is unknown; ``"–"`` when
    there is no value. ``kind``: ``fraction`` (shown as %) or ``score``."""
    if isinstance(interval, jinja2.Undefined):
        str(interval)
    value = None if interval is None else interval.value
    fraction = kind == "fraction"
    text = pct(value, 1 if digits is None else digits) if fraction else num(value, 3 if digits is None else digits)
    bounds = ci_bounds(interval, kind, digits)
    return text if value is None or not bounds else f"{text} ({bounds})"
