"""Check a user's template folder before a run starts, so a broken template costs seconds, not a
training run.

Every template of the folder is compiled (a syntax error in any file is found, used or not), and
the page is rendered to HTML against a placeholder :class:`~octreport.report.context.ReportContext`
in which every field holds a value of its declared type: one row in every table, one image in
every section, every optional section present. The placeholder is made from the dataclasses'
type hints, so it follows the context as fields are added. A comparison with an earlier run is
the one section it leaves out (that object comes from two real runs); its template is still
compiled.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any


from octreport.errors import ReportError
from octreport.report.context import ReportContext
from octreport.report.render import (
    TEMPLATE_FAILURES,
    make_environment,
    render_html,
    template_error,
    template_folders_of,
)
from octreport.report.template_limits import PREVIEW_LIMITS
from octreport.report.views import FigureRef

# A 1x1 grey PNG: every figure of the placeholder report.
_PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNoAAAAggCB"
    "d81ytgAAAABJRU5ErkJggg=="
)
_PLACEHOLDER_FIGURE = FigureRef(_PIXEL, "placeholder", "placeholder figure", 1, 1)


def placeholder(kind: Any) -> Any:
    """A value of type ``kind``: a dataclass with every field filled, one-element tuples,
    ``0.5`` for floats, ``1`` for ints, ``"placeholder"`` for text; for ``X | None`` a value of X
    (None only where X cannot be made, such as a type known only by name)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        for option in options:
            value = placeholder(option)
            if value is not None:
                return value
        return None
    if origin is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return (placeholder(args[0]),)
        return tuple(placeholder(arg) for arg in args)
    if origin in (dict, Mapping) or kind in (dict, Mapping):
        return {}
    if kind is FigureRef:
        return _PLACEHOLDER_FIGURE
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        return _placeholder_dataclass(kind)
    return {str: "placeholder", int: 1, float: 0.5, bool: True}.get(kind)


class _MadeElsewhere:
    """Stands for the types the context names only for type checkers (the run comparison)."""


def _placeholder_dataclass(kind: type) -> Any:
    # Each view's hints are read in its own module; the comparison is stood in for (see above).
    hints = typing.get_type_hints(kind, None, {"RunComparison": _MadeElsewhere})
    values = {}
    for field in dataclasses.fields(kind):
        if not field.init:
            continue
        if field.default_factory is not dataclasses.MISSING and typing.get_origin(hints[field.name]) is not tuple:
            continue  # mappings such as the section titles keep their real defaults
        values[field.name] = placeholder(hints.get(field.name, str))
    return kind(**values)


def placeholder_context() -> ReportContext:
    """A report context in which every section has something to show."""
    return placeholder(ReportContext)


def check_templates(template_dir: Path) -> None:
    """Compile every template of ``template_dir`` and render the page with a placeholder context;
    a :class:`~octreport.errors.ReportError` names the template and line of the first problem."""
    env = make_environment(template_dir, PREVIEW_LIMITS)
    for name in env.list_templates(filter_func=lambda name: name.endswith(".html")):
        try:
            env.get_template(name)
        except TEMPLATE_FAILURES as exc:
            raise template_error(exc, template_folders_of(env)) from exc
    try:
        render_html(placeholder_context(), template_dir, limits=PREVIEW_LIMITS)
    except ReportError as error:
        raise ReportError(f"{error} (found when checking --templates {template_dir} before the run)") from error
