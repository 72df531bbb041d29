"""The house: every import of the package points down its floors (lazy imports included), and no
module imports itself around a cycle. The floor list lives here, in one place; docs/architecture.md
explains it. A move that is right moves the list with it."""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "octreport"

# Bottom up. A unit is a top-level module (``errors``) or a subpackage (``data``); an import may
# only reach a unit of a lower floor, or its own unit.
FLOORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("_version", "errors", "progress", "logsetup", "resources", "formatting", "runfolder",
                    "provenance", "hashing", "guarded", "csvcells", "tomlfile", "cache")),
    ("data", ("data",)),
    ("engine", ("engine",)),
    ("evaluation", ("evaluation",)),
    ("config", ("config",)),
    ("models", ("models",)),
    ("drawing", ("drawing",)),
    ("audit", ("audit",)),
    ("document", ("document",)),
    ("report", ("report",)),
    ("pipeline", ("pipeline",)),
    ("interface", ("cli_options", "cli", "api", "__main__", "__init__")),
)
FLOOR_OF = {unit: level for level, (_, units) in enumerate(FLOORS) for unit in units}
# Foundation modules may import each other (they are tiny), and so may the interface modules;
# the cycle check still applies.
SAME_FLOOR_ALLOWED = {"foundation", "interface"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _unit(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def import_edges() -> list[tuple[str, str, int]]:
    """(importing module, imported module, line) for every import of ours, wherever it stands."""
    modules = _modules()
    edges = []
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target.startswith("octreport"):
                    edges.append((name, target, node.lineno))
    return sorted(set(edges))


def test_every_unit_of_the_package_has_a_floor():
    units = {_unit(name) for name in _modules()}
    assert units - set(FLOOR_OF) == set(), "give each new module or folder a floor in FLOORS"


def test_imports_point_down_the_floors():
    upward = []
    for source, target, line in import_edges():
        a, b = _unit(source), _unit(target)
        if a == b:
            continue
        fa, fb = FLOOR_OF[a], FLOOR_OF[b]
        if fb > fa or (fb == fa and FLOORS[fa][0] not in SAME_FLOOR_ALLOWED):
            upward.append(f"{source}:{line} imports {target} ({FLOORS[fa][0]} -> {FLOORS[fb][0]})")
    assert upward == []


def test_no_module_imports_itself_through_a_cycle():
    graph = defaultdict(set)
    for source, target, _ in import_edges():
        if not target.startswith(source + "."):  # a package importing its own submodule is no cycle
            graph[source].add(target)
    index, low, on_stack, stack, cycles, counter = {}, {}, set(), [], [], [0]

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    assert cycles == []


def test_no_module_is_imported_by_name_at_run_time():
    """An import the ast cannot see (``importlib.import_module("octreport...")``, ``__import__``)
    would slip past the floors; there is none."""
    hidden = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called in ("import_module", "__import__"):
                    hidden.append(f"{name}:{node.lineno}")
    assert hidden == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The floors test is not vacuous: a data module importing the report is caught."""
    fake = tmp_path / "octreport"
    (fake / "data").mkdir(parents=True)
    (fake / "report").mkdir()
    for path in (fake / "__init__.py", fake / "data" / "__init__.py", fake / "report" / "__init__.py",
                 fake / "report" / "build.py"):
        path.write_text("")
    (fake / "data" / "layout.py").write_text("def f():\n    from octreport.report.build import x\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert ("octreport.data.layout", "octreport.report.build", 2) in import_edges()
    try:
        test_imports_point_down_the_floors()
    except AssertionError as error:
        assert "octreport.data.layout:2 imports octreport.report.build (data -> report)" in str(error)
    else:
        raise AssertionError("an upward import went unnoticed")
