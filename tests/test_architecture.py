"""The module map has one-way arrows: ``etl`` never imports ``cohort``, and no module of
either package imports itself back through others (an import cycle).

Imports are read from the source with ``ast`` (nothing is imported), including those inside
functions and under ``if TYPE_CHECKING:`` -- a cycle hidden in a function body or a type hint
is still two modules that cannot be understood one without the other. ``from pkg import name``
is an arrow to the submodule ``pkg.name`` when that is a module, else to ``pkg`` itself; the
implicit import of a package's ``__init__`` when one of its submodules is imported is not an
arrow (a package listing its submodules is not a cycle).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("etl", "cohort")
# the one allowed direction between the packages: lower never imports higher
LAYERS = {"etl": 0, "cohort": 1}


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of ``PACKAGES`` by dotted name (a package by its ``__init__.py``)."""
    out: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _known(name: str, known: dict[str, Path]) -> str | None:
    """``name`` or its nearest enclosing module among ``known``; None outside the packages."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` that module ``name`` (at ``path``) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                full = f"{module}.{alias.name}"
                targets.append(full if full in known else module)
        for target in targets:
            found = _known(target, known)
            if found is not None and found != name:
                out.add(found)
    return out


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
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
    return sorted(found)


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Arrows from a lower package to a higher one, as ``a -> b``."""
    layer = lambda m: LAYERS[m.split(".")[0]]  # noqa: E731
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                  if layer(b) > layer(a))


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_etl_never_imports_cohort(graph):
    assert upward(graph) == []


def test_no_import_cycles(graph):
    assert cycles(graph) == []


# --- the checker itself, on small trees with a cycle / an upward arrow just in and out ----

def _tree(tmp_path: Path, files: dict[str, str]) -> dict[str, set[str]]:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for rel, text in files.items():
        (tmp_path / rel).write_text(text)
    return import_graph(tmp_path)


def test_a_cycle_through_a_function_body_import_is_found(tmp_path):
    graph = _tree(tmp_path, {"etl/a.py": "from etl.b import x\n",
                             "etl/b.py": "def f():\n    from etl import a\n"})
    assert cycles(graph) == [["etl.a", "etl.b"]]


def test_a_cycle_through_a_type_checking_import_is_found(tmp_path):
    graph = _tree(tmp_path, {"cohort/a.py": "from .b import B\n",
                             "cohort/b.py": "from typing import TYPE_CHECKING\n"
                                            "if TYPE_CHECKING:\n    from .a import A\n"})
    assert cycles(graph) == [["cohort.a", "cohort.b"]]


def test_one_way_imports_and_a_package_listing_its_submodules_are_no_cycle(tmp_path):
    graph = _tree(tmp_path, {"cohort/__init__.py": "from .a import A\n",
                             "cohort/a.py": "from . import b\nfrom cohort.b import B\n",
                             "cohort/b.py": "from etl.c import C\n", "etl/c.py": ""})
    assert graph["cohort.a"] == {"cohort.b"}
    assert cycles(graph) == []
    assert upward(graph) == []


def test_etl_importing_cohort_is_an_upward_arrow(tmp_path):
    graph = _tree(tmp_path, {"etl/a.py": "import cohort.b\n", "cohort/b.py": ""})
    assert upward(graph) == ["etl.a -> cohort.b"]
