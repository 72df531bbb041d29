"""What a template may read and how much work it may do: the confined loader and the limited
sandbox every page of octreport is rendered in.

The loader (:class:`ConfinedLoader`) serves only regular files whose resolved path is inside one of
the template folders: a symbolic link that leads out of the folder, an absolute name, a ``..`` name,
a device or a file over :data:`MAX_TEMPLATE_BYTES` is refused.

The environment (:class:`LimitedEnvironment`) is Jinja2's sandbox with a :class:`Budget` that no
template can exceed (:class:`RenderLimits`; the numbers are in ``docs/templates.md``):

- time: checked at every loop step, call, filter and intercepted operator;
- loop steps: every ``{% for %}`` (nested ones included) is wrapped, when the template is
  compiled, in a counter of the steps of the whole render;
- ``range``: at most ``range_size`` numbers per call;
- value size: every string or list that an operator, filter, call or ``~`` makes is measured, and
  ``*``, ``**`` and ``%`` widths are refused before they are computed when their result would be
  too big;
- output size: the page is streamed and measured as it is made.

A template that goes past a limit raises :class:`TemplateLimitExceeded`, which the renderer turns
into exit 6 like every other template failure.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import jinja2.sandbox
from jinja2 import nodes
from jinja2.visitor import NodeTransformer

MAX_TEMPLATE_BYTES = 5_000_000
"""The largest template or stylesheet file the loader reads."""

LOOP_GUARD = "_octreport_loop_guard"
CONCAT_GUARD = "_octreport_concat_guard"
_WIDE_FORMAT = re.compile(r"[%:{][^%{}a-zA-Z]*?\d{8,}")


@dataclass(frozen=True)
class RenderLimits:
    """How much one render may do. The defaults hold the largest report octreport makes (tens of
    thousands of table rows and inlined figures) with a wide margin."""

    seconds: float = 120.0
    output_chars: int = 200_000_000
    value_chars: int = 20_000_000
    loop_steps: int = 5_000_000
    range_size: int = 100_000


RENDER_LIMITS = RenderLimits()
PREVIEW_LIMITS = RenderLimits(seconds=10.0)
"""The pre-run check renders a placeholder report with one row per table: it needs far less."""


class TemplateLimitExceeded(jinja2.TemplateError):
    """A template went past one of its :class:`RenderLimits`."""


class TemplateRefused(jinja2.sandbox.SecurityError):
    """A template name or file the confined loader does not serve."""


class ConfinedLoader(jinja2.FileSystemLoader):
    """A :class:`jinja2.FileSystemLoader` that serves only regular files inside its folders."""

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        if template.startswith(("/", "\\")) or os.path.isabs(template) or ".." in re.split(r"[/\\]", template):
            raise TemplateRefused(f"the template name {template!r} is refused: templates may only name files "
                                  f"inside the template folders (no absolute path, no '..')")
        for folder in self.searchpath:
            candidate = Path(folder, *template.split("/"))
            if not os.path.lexists(candidate):
                continue
            resolved = candidate.resolve()
            if not resolved.is_relative_to(Path(folder).resolve()):
                raise TemplateRefused(f"the template {candidate} is a link to {resolved}, outside the template "
                                      f"folder {folder}: refused")
            if not resolved.is_file():
                raise TemplateRefused(f"the template {candidate} is not a regular file: refused")
            if resolved.stat().st_size > MAX_TEMPLATE_BYTES:
                raise TemplateRefused(f"the template {candidate} is larger than {MAX_TEMPLATE_BYTES:,} bytes: refused")
            return self._read(candidate, resolved)
        raise jinja2.TemplateNotFound(template)

    def _read(self, candidate: Path, resolved: Path) -> tuple[str, str, Callable[[], bool]]:
        with open(resolved, encoding=self.encoding) as handle:
            contents = handle.read(MAX_TEMPLATE_BYTES + 1)
        mtime = resolved.stat().st_mtime

        def uptodate() -> bool:
            try:
                return resolved.stat().st_mtime == mtime
            except OSError:
                return False

        return contents, os.path.normpath(candidate), uptodate


class Budget:
    """The time, loop steps and sizes one render has used, against its :class:`RenderLimits`."""

    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self.restart()

    def restart(self) -> None:
        self.deadline = time.monotonic() + self.limits.seconds
        self.steps = 0

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateLimitExceeded(f"rendering took longer than {self.limits.seconds:g} s")

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.limits.loop_steps:
            raise TemplateLimitExceeded(f"the page's loops took more than {self.limits.loop_steps:,} steps")
        self.tick()

    def check_size(self, value: Any, what: str = "a value") -> Any:
        if isinstance(value, (str, bytes, list, tuple, dict, set)) and len(value) > self.limits.value_chars:
            raise TemplateLimitExceeded(f"{what} of more than {self.limits.value_chars:,} characters or items")
        return value

    def check_output(self, size: int) -> None:
        if size > self.limits.output_chars:
            raise TemplateLimitExceeded(f"the page is larger than {self.limits.output_chars:,} characters")
        self.tick()


class _GuardLoops(NodeTransformer):
    """Wraps every loop's iterable in the loop guard and every ``~`` in the concat guard."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        node = self.generic_visit(node)
        node.iter = nodes.Call(nodes.Name(LOOP_GUARD, "load"), [node.iter], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        node = self.generic_visit(node)
        return nodes.Call(nodes.Name(CONCAT_GUARD, "load"), [node], [], None, None, lineno=node.lineno)


class LimitedEnvironment(jinja2.sandbox.SandboxedEnvironment):
    """Jinja2's sandbox under a :class:`Budget` (see the module's docstring)."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, limits: RenderLimits = RENDER_LIMITS, **options: Any) -> None:
        super().__init__(**options)
        self.budget = Budget(limits)
        self.filters = {name: self._measured(f) for name, f in self.filters.items()}
        self.globals.update({"range": self._range, LOOP_GUARD: self._loop, CONCAT_GUARD: self._concat})

    def add_filters(self, filters: dict[str, Callable[..., Any]]) -> None:
        self.filters.update({name: self._measured(f) for name, f in filters.items()})

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        # Jinja has no public hook between parsing and code generation; this is where every
        # loop of a template is put under the budget.
        tree = _GuardLoops().visit(super()._parse(source, name, filename))
        tree.set_environment(self)
        return tree

    def _measured(self, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def measured(*args: Any, **kwargs: Any) -> Any:
            self.budget.tick()
            if function.__name__ == "do_format" and args and isinstance(args[0], str):
                self._check_format(args[0])
            limit = self.budget.limits.value_chars
            if any(isinstance(a, int) and a > limit for a in (*args[1:], *kwargs.values())):
                raise TemplateLimitExceeded(f"a filter argument over {limit:,} (a width or a count)")
            return self.budget.check_size(function(*args, **kwargs), "a filter made a value")
        return measured

    def _check_format(self, text: str) -> None:
        if _WIDE_FORMAT.search(text):
            raise TemplateLimitExceeded("a format width of more than 7 digits")

    def _range(self, *args: int) -> Iterator[int]:
        numbers = range(*args)
        if len(numbers) > self.budget.limits.range_size:
            raise TemplateLimitExceeded(f"range() of {len(numbers):,} numbers (at most "
                                        f"{self.budget.limits.range_size:,})")
        return self._loop(numbers)

    def _loop(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self.budget.step()
            yield item

    def _concat(self, value: str) -> str:
        self.budget.tick()
        return self.budget.check_size(value, "a '~' made a text")

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        self.budget.tick()
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and isinstance(times, int):
                    if len(sequence) * times > self.budget.limits.value_chars:
                        raise TemplateLimitExceeded(f"a '*' would make a value of more than "
                                                    f"{self.budget.limits.value_chars:,} characters or items")
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1:
            if right * abs(left).bit_length() > 1_000_000:
                raise TemplateLimitExceeded("a '**' would make a number of more than a million bits")
        if operator == "%" and isinstance(left, str):
            self._check_format(left)
        return self.budget.check_size(super().call_binop(context, operator, left, right), f"a '{operator}' made a value")

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        __self.budget.tick()
        if isinstance(getattr(__obj, "__self__", None), str) and getattr(__obj, "__name__", "") in ("format", "format_map"):
            __self._check_format(__obj.__self__)
        result = __self.budget.check_size(super().call(__context, __obj, *args, **kwargs), "a call made a value")
        __self.budget.check_size(getattr(__obj, "__self__", None), "a call grew a value")
        return result

    def getattr(self, obj: Any, attribute: str) -> Any:
        self.budget.tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        self.budget.tick()
        return super().getitem(obj, argument)


def render_limited(template: jinja2.Template, context: dict[str, Any]) -> str:
    """``template`` rendered with ``context``, streamed and measured under its environment's budget."""
    environment = template.environment
    assert isinstance(environment, LimitedEnvironment)
    budget = environment.budget
    budget.restart()
    parts, size = [], 0
    for part in template.generate(**context):
        size += len(part)
        budget.check_output(size)
        parts.append(part)
    return "".join(parts)
