"""Every page octreport writes, rendered to one self-contained HTML page with Jinja2 by
:func:`render_page`: the report and the data audit (their context as ``report``), a comparison and
a history (as ``page``). Each page's template extends ``layout.html`` (the ``<head>`` and the
inlined stylesheet).

Templates receive their one context object and nothing else to compute with: autoescaping is on
for ``.html``, an undefined name is an error (``StrictUndefined``), and numbers are formatted by
the filters registered in :data:`FILTERS`. Templates run in Jinja2's sandbox: a user's template
cannot reach Python internals (``__globals__``, ``__class__``, ``mro``), so a shared template
folder cannot run code; under limits of time, loop steps and size that it cannot exceed; and
read only regular files inside the template folders (:mod:`octreport.report.template_limits`).

A user's template folder (``--templates DIR``) must hold ``base.html``; any other template or the
stylesheet it does not hold (``layout.html``, ``macros.html``, ``partials/*.html``, ``report.css``)
falls back to octreport's own, so a user can override one piece at a time. A ``base.html`` of
one's own need not extend ``layout.html``.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from pathlib import Path

import jinja2
import jinja2.sandbox
from markupsafe import Markup

from octreport.errors import ReportError
from octreport.formatting import ci_bounds, ci_range, delta_pct, int_sep, level_text, num, pct, signed, with_ci
from octreport.report.template_limits import (
    RENDER_LIMITS,
    ConfinedLoader,
    LimitedEnvironment,
    RenderLimits,
    TemplateLimitExceeded,
    TemplateRefused,
    render_limited,
)
from octreport.resources import templates_dir

ENTRY_TEMPLATE = "base.html"
STYLESHEET = "report.css"
FILTERS: dict[str, Callable[..., str]] = {
    "pct": pct,
    "num": num,
    "int_sep": int_sep,
    "delta_pct": delta_pct,
    "signed": signed,
    "with_ci": with_ci,
    "ci_bounds": ci_bounds,
    "ci_range": ci_range,
    "level_text": level_text,
}


def _check_template_dir(template_dir: Path) -> None:
    if not (template_dir / ENTRY_TEMPLATE).is_file():
        what = "does not exist" if not template_dir.exists() else f"has no {ENTRY_TEMPLATE}"
        raise ReportError(
            f"template folder {template_dir} {what}. A template folder needs {ENTRY_TEMPLATE} (the page); "
            f"it may also hold layout.html, macros.html, partials/<section>.html and {STYLESHEET}, which otherwise "
            f"come from octreport's defaults. Copy {templates_dir()} to start from those."
        )


def template_folders(template_dir: Path | str | None = None) -> list[Path]:
    """Where templates are looked up, first match wins: the user's folder, then octreport's."""
    return [Path(template_dir), templates_dir()] if template_dir else [templates_dir()]


def make_environment(template_dir: Path | None = None, limits: RenderLimits = RENDER_LIMITS) -> LimitedEnvironment:
    """The Jinja2 environment for the report: the user's folder (if given) over the default one.

    Autoescaping for ``.html``, ``StrictUndefined``, the :data:`FILTERS`, and a ``stylesheet(name)``
    global that returns a file from the same folders verbatim, for inlining in ``<style>``; the
    confined loader and the render ``limits``.
    """
    if template_dir is not None:
        _check_template_dir(Path(template_dir))
    folders = template_folders(template_dir)
    env = LimitedEnvironment(
        limits,
        loader=ConfinedLoader([str(f) for f in folders], encoding="utf-8"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.add_filters(FILTERS)
    env.globals["stylesheet"] = _stylesheet_reader(env)
    return env


def _stylesheet_reader(env: jinja2.Environment) -> Callable[[str], Markup]:
    """A template global that inlines a stylesheet as-is (CSS is not parsed as Jinja)."""

    def stylesheet(name: str) -> Markup:
        assert env.loader is not None
        source, _, _ = env.loader.get_source(env, name)
        # "</style" would end the element early; CSS never needs it, so escape it if present.
        return Markup(source.replace("</", "<\\/"))

    return stylesheet


def _template_location(exc: BaseException, folders: list[str]) -> str:
    """``"partials/summary.html, line 12"`` from a Jinja syntax error, or from the traceback."""
    name, line = None, None
    if isinstance(exc, jinja2.TemplateSyntaxError):
        name, line = exc.filename or exc.name, exc.lineno
    if name is None:
        # Runtime errors: Jinja rewrites the traceback so template frames carry file and line.
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if frame.filename.endswith((".html", ".css")):
                name, line = frame.filename, frame.lineno
                break
    if name is None:
        return "an unknown template"
    for folder in folders:
        if Path(name).is_relative_to(folder):
            name = Path(name).relative_to(folder).as_posix()
            break
    return f"{name}, line {line}" if line else name


def _context_text(context: Mapping[str, object]) -> str:
    """``"The page's context (octreport.report.context.ReportContext, available as 'report')"``."""
    names = ", ".join(f"{type(value).__module__}.{type(value).__qualname__}, available as {name!r}"
                      for name, value in context.items())
    return f"The page's context ({names})"


TEMPLATE_FAILURES = (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, RecursionError, LookupError,
                     AttributeError, MemoryError, UnicodeError, OSError)
"""What a template can raise while it is loaded or rendered (a sandboxed ``{}.pop('x')`` raises
``KeyError``, an unreadable template ``OSError``); :func:`template_error` names each."""


def template_error(exc: BaseException, folders: list[str], context: Mapping[str, object] | None = None) -> ReportError:
    """The one message for a template that failed (exit 6): a missing template, a name the context
    does not have, a syntax error, something the sandbox forbids, or an error raised while
    rendering (a filter given the wrong type, a number too large, a macro calling itself without
    end); each names the template and line."""
    where = _template_location(exc, folders)
    if isinstance(exc, jinja2.TemplateNotFound):
        return ReportError(f"template {exc.name!r} was not found (needed by {where}); looked in {', '.join(folders)}")
    if isinstance(exc, jinja2.UndefinedError):
        return ReportError(f"template error in {where}: {exc.message}. {_context_text(context or {})} "
                           f"has no such field; check the name against it.")
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return ReportError(f"template syntax error in {where}: {exc.message}")
    if isinstance(exc, TemplateRefused):
        return ReportError(f"{exc} (needed by {where})" if where != "an unknown template" else str(exc))
    if isinstance(exc, TemplateLimitExceeded):
        return ReportError(f"template {where} went past a render limit: {exc}. Templates show their context; "
                           f"they do not compute (limits: docs/templates.md).")
    if isinstance(exc, jinja2.sandbox.SecurityError):
        return ReportError(f"template {where} tried something the report sandbox forbids ({exc}); "
                           f"templates may only show their context's fields.")
    return ReportError(f"template error in {where}: {type(exc).__name__}: {exc}")


def template_folders_of(env: jinja2.Environment) -> list[str]:
    """Where ``env`` looks templates up, first match wins."""
    return list(env.loader.searchpath) if isinstance(env.loader, jinja2.FileSystemLoader) else []


def render_page(entry: str, template_dir: Path | None = None, limits: RenderLimits = RENDER_LIMITS,
                **context: object) -> str:
    """One self-contained HTML page (CSS inlined; images as the context gives them): the template
    ``entry`` rendered with ``context`` as its names (``report=...`` or ``page=...``). Every page of
    octreport goes through here: the report, the data audit, a comparison, a history.

    Raises :class:`~octreport.errors.ReportError` (:func:`template_error`) when a template fails.
    """
    env = make_environment(template_dir, limits)
    try:
        return render_limited(env.get_template(entry), context)
    except TEMPLATE_FAILURES as exc:
        raise template_error(exc, template_folders_of(env), context) from exc


def render_html(context: object, template_dir: Path | None = None,
                entry: str = ENTRY_TEMPLATE, limits: RenderLimits = RENDER_LIMITS) -> str:
    """The report (or, with ``entry`` ``data_audit.html``, the data audit's page) as one HTML page:
    :func:`render_page` with the context as ``report``."""
    return render_page(entry, template_dir, limits, report=context)
