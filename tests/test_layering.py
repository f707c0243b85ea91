"""The package's layering, read from the source (``ast``, nothing imported): no import cycle
among interp's modules at import time, and the lower layers never import the upper ones
(#14 item 5).

An import inside a function is not an import-time edge; one inside ``if TYPE_CHECKING:`` is
not an import at all.  The layer rules (b, c) count every import, wherever it is.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "interp"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST, top_level: bool) -> list[ast.Import | ast.ImportFrom]:
    """The import statements under ``node``: all of them, or (``top_level``) only those run when
    the module is imported (not in a function body, not under ``if TYPE_CHECKING:``)."""
    found: list[ast.Import | ast.ImportFrom] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            found.append(child)
        elif isinstance(child, ast.If) and _is_type_checking(child):
            if not top_level:
                found += _imports(child, top_level)
        elif top_level and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        else:
            found += _imports(child, top_level)
    return found


def _targets(importer: str, stmt: ast.Import | ast.ImportFrom) -> set[str]:
    """The interp modules an import statement needs run: the named module, or for ``from pkg
    import sub`` the submodule ``pkg.sub`` when that is one."""
    if isinstance(stmt, ast.Import):
        names = [alias.name for alias in stmt.names]
    else:
        base = stmt.module or ""
        if stmt.level:
            package = importer if _is_package(importer) else importer.rpartition(".")[0]
            for _ in range(stmt.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        subs = [f"{base}.{alias.name}" for alias in stmt.names]
        # ``from pkg import sub`` loads the submodule (pkg may be mid-import: that is no cycle);
        # ``from pkg import name`` needs pkg's ``__init__`` to have run
        names = [s if s in MODULES else base for s in subs]
    out = set()
    for name in names:
        while name and name not in MODULES:  # ``import interp.x.attr`` style: the module above
            name = name.rpartition(".")[0]
        if name.startswith("interp"):
            out.add(name)
    return out


def _graph(top_level: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges: set[str] = set()
        for stmt in _imports(tree, top_level):
            edges |= _targets(name, stmt)
        edges.discard(name)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_walk_sees_the_package() -> None:
    graph = _graph(top_level=True)
    assert "interp.models.transformer" in graph
    assert "interp.config" in graph["interp.models.transformer"]


def test_no_import_cycle_at_import_time() -> None:
    cycles = _cycles(_graph(top_level=True))
    assert cycles == [], "import cycles among interp modules: " + "; ".join(
        " <-> ".join(c) for c in cycles
    )


def _crossings(lower: str, uppers: tuple[str, ...]) -> list[str]:
    graph = _graph(top_level=False)
    return sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        if _in(name, lower)
        for target in targets
        if any(_in(target, u) for u in uppers)
    )


def _imports_cli(lower: str) -> list[str]:
    out = []
    for name, path in MODULES.items():
        if not _in(name, lower):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for stmt in _imports(tree, top_level=False):
            mods = (
                [a.name for a in stmt.names]
                if isinstance(stmt, ast.Import)
                else [stmt.module or ""]
            )
            if not getattr(stmt, "level", 0) and any(_in(m, "cli") for m in mods):
                out.append(f"{name} imports {', '.join(mods)}")
    return out


@pytest.mark.parametrize(
    ("lower", "uppers"),
    [
        ("interp.models", ("interp.train", "interp.experiments")),
        ("interp.analysis", ("interp.experiments",)),
    ],
)
def test_lower_layers_never_import_upper_ones(lower: str, uppers: tuple[str, ...]) -> None:
    assert _crossings(lower, uppers) == []
    assert _imports_cli(lower) == []
