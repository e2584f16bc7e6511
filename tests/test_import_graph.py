"""No import cycle among the modules of ``dans_kgc``.

Every ``import`` and ``from ... import`` of a ``dans_kgc`` module counts, at module level and inside
functions alike: a function-level import only postpones a cycle to the first call, it does not remove it.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dans_kgc"

Edge = tuple[str, int]  # (imported module, line of the import statement)


def module_names(package: Path) -> dict[str, Path]:
    """Dotted name -> file of every module under ``package`` (a package is named by its ``__init__.py``)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imported_modules(name: str, path: Path, known: set[str]) -> list[Edge]:
    """The modules of ``known`` that ``path`` (module ``name``) imports anywhere in its body, with their lines.

    ``from pkg import sub`` names the submodule ``pkg.sub`` when there is one, else the package ``pkg``;
    relative imports are resolved against the module's package.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    root = name.split(".")[0]
    edges: list[Edge] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            edges += [(alias.name, node.lineno) for alias in node.names if alias.name.split(".")[0] == root]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != root:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                edges.append((sub if sub in known else target, node.lineno))
    return [(target, line) for target, line in edges if target in known and target != name]


def import_graph(package: Path) -> dict[str, list[Edge]]:
    modules = module_names(package)
    return {name: imported_modules(name, path, set(modules)) for name, path in modules.items()}


def find_cycle(graph: dict[str, list[Edge]]) -> list[tuple[str, int]] | None:
    """One import cycle as [(module, line of its import of the next one), ...], or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[tuple[str, int]] = []

    def visit(node: str) -> list[tuple[str, int]] | None:
        state[node] = 1
        for target, line in sorted(graph[node]):
            path.append((node, line))
            if state.get(target) == 1:
                start = next(i for i, (n, _) in enumerate(path) if n == target)
                return path[start:]
            if target not in state:
                found = visit(target)
                if found:
                    return found
            path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def describe(cycle: list[tuple[str, int]]) -> str:
    steps = [f"{module} (line {line})" for module, line in cycle]
    return " -> ".join([*steps, cycle[0][0]])


def write_package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root / "pkg"


def test_the_graph_sees_module_level_function_level_relative_and_submodule_imports(tmp_path):
    """A hand-made package: a -> b at module level, b -> c inside a function, c -> a relatively, and
    ``from pkg import sub`` naming the submodule; the graph holds exactly these edges and the cycle
    through all three."""
    pkg = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg import sub\n",
            "pkg/sub.py": "import os\n",
            "pkg/a.py": "import pkg.b\nfrom pkg.sub import thing\n",
            "pkg/b.py": "def f():\n    from pkg import c\n    return c\n",
            "pkg/c.py": "import json\nfrom . import a\n",
        },
    )
    graph = import_graph(pkg)
    assert {name: sorted(edges) for name, edges in graph.items()} == {
        "pkg": [("pkg.sub", 1)],
        "pkg.a": [("pkg.b", 1), ("pkg.sub", 2)],
        "pkg.b": [("pkg.c", 2)],
        "pkg.c": [("pkg.a", 2)],
        "pkg.sub": [],
    }
    cycle = find_cycle(graph)
    assert cycle == [("pkg.a", 1), ("pkg.b", 2), ("pkg.c", 2)]
    assert describe(cycle) == "pkg.a (line 1) -> pkg.b (line 2) -> pkg.c (line 2) -> pkg.a"


def test_a_graph_without_a_cycle_has_none(tmp_path):
    """A diamond (a -> b, a -> c, b -> d, c -> d) and a package importing its submodule: no cycle."""
    pkg = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.a import x\n",
            "pkg/a.py": "from pkg import b, c\n",
            "pkg/b.py": "from pkg.d import y\n",
            "pkg/c.py": "def f():\n    import pkg.d\n",
            "pkg/d.py": "",
        },
    )
    assert find_cycle(import_graph(pkg)) is None


def test_dans_kgc_imports_are_read_at_every_level():
    """The real package's graph holds edges of each kind the check must see (so an empty graph cannot pass)."""
    graph = {name: {target for target, _ in edges} for name, edges in import_graph(PACKAGE).items()}
    assert "dans_kgc.training" in graph["dans_kgc.pipeline"]  # module level
    assert "dans_kgc.pipeline" in graph["dans_kgc.tuning"]  # inside a method
    assert "dans_kgc.datasets.checksums" in graph["dans_kgc.datasets.fetch"]
    assert "dans_kgc.reports.figures" in graph["dans_kgc.reports"]  # from pkg import submodule


def test_dans_kgc_has_no_import_cycle():
    cycle = find_cycle(import_graph(PACKAGE))
    if cycle:
        pytest.fail(f"import cycle in dans_kgc: {describe(cycle)}")
