"""Imports go one way: entry -> engine -> detectors / datamodules / evaluation / callbacks -> losses -> common
(docs/ARCHITECTURE.md, "Layers"). Every import of every module is read with ``ast``, those inside
functions included (a function-local import is still a dependency, only a later one), and checked:

- no import goes up a layer (a lower layer never imports a higher one);
- no two modules import each other, directly or around a longer loop;
- no two packages of one layer import each other (a sideways import picks a direction, once).

``tests/`` and ``benchmarks/`` stand outside the rule: they may use any layer.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

LAYERS: dict[str, int] = {
    # 0: what a user starts; sweeps/ reads finished runs and prints tables (python -m sweeps).
    "run": 0, "eval": 0, "predict": 0, "sweeps": 0,
    # 1: orchestration: builds a run from config and drives the pieces below.
    "engine": 1,
    # 2: the pieces a run is made of.
    "detectors": 2, "datamodules": 2, "evaluation": 2, "callbacks": 2,
    # 3: pure functions every piece above may use.
    "losses": 3,
    # 4: checks of settings (allowed choices, known keys) shared by every layer.
    "common": 4,
}
LAYER_NAMES = {0: "entry (run.py, eval.py, predict.py, sweeps/)", 1: "engine/",
               2: "detectors/ datamodules/ evaluation/ callbacks/", 3: "losses/", 4: "common/"}
OUTSIDE = {"tests", "benchmarks"}


@dataclass(frozen=True)
class Edge:
    source: str  # importing module, dotted
    target: str  # imported project module, dotted
    file: str
    line: int

    def where(self) -> str:
        return f"{self.file}:{self.line}"


def project_modules(root: Path) -> dict[str, Path]:
    """Every module under a layered package (and the entry scripts), by dotted name."""
    modules: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        top = relative.stem if len(relative.parts) == 1 else relative.parts[0]  # an entry script or a package
        if top not in LAYERS:
            continue
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def import_edges(root: Path) -> list[Edge]:
    """Every import (module level or inside a function) of a project module by a project module."""
    modules = project_modules(root)
    edges = []
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # ``from engine import pipeline`` imports the module engine.pipeline
                named = [".".join(filter(None, (base, a.name))) for a in node.names]
                targets = [full if full in modules else base for full in named]
            else:
                continue
            for target in dict.fromkeys(targets):
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.append(Edge(name, target, str(path.relative_to(root)), node.lineno))
    return edges


def layer(module: str) -> int:
    return LAYERS[module.split(".")[0]]


def upward_imports(edges: list[Edge]) -> list[str]:
    return [
        f"{e.where()}: imports {e.target}, a higher layer ({LAYER_NAMES[layer(e.target)]}) than its own "
        f"({LAYER_NAMES[layer(e.source)]}); rule: an import never goes up (docs/ARCHITECTURE.md, Layers)"
        for e in edges
        if layer(e.target) < layer(e.source)
    ]


def _find_cycle(graph: dict[str, dict[str, Edge]]) -> list[Edge] | None:
    """One cycle of ``graph`` (node -> {neighbour: the import that makes the edge}) as its imports, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[tuple[str, Edge]] = []  # (node the edge leaves, edge)

    def visit(node: str) -> list[Edge] | None:
        state[node] = 1
        for neighbour, edge in sorted(graph.get(node, {}).items()):
            if state.get(neighbour) == 1:
                start = next((i for i, (left, _) in enumerate(path) if left == neighbour), len(path))
                return [e for _, e in path[start:]] + [edge]
            if neighbour not in state:
                path.append((node, edge))
                found = visit(neighbour)
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


def cycles(edges: list[Edge]) -> list[str]:
    """A module cycle, and a cycle between packages of one layer, each named edge by edge."""
    problems = []
    modules: dict[str, dict[str, Edge]] = {}
    packages: dict[str, dict[str, Edge]] = {}
    for e in edges:
        modules.setdefault(e.source, {}).setdefault(e.target, e)
        top_source, top_target = e.source.split(".")[0], e.target.split(".")[0]
        if top_source != top_target and layer(e.source) == layer(e.target):
            packages.setdefault(top_source, {}).setdefault(top_target, e)
    for graph, what in ((modules, "modules"), (packages, "packages of one layer")):
        loop = _find_cycle(graph)
        if loop:
            steps = "; ".join(f"{e.where()} {e.source} -> {e.target}" for e in loop)
            problems.append(f"import cycle between {what}: {steps}; rule: imports go one way, move the shared piece down")
    return problems


def test_no_import_goes_up():
    problems = upward_imports(import_edges(REPO))
    assert not problems, "\n".join(problems)


def test_no_import_cycle():
    problems = cycles(import_edges(REPO))
    assert not problems, "\n".join(problems)


def test_every_top_level_package_has_a_layer():
    packages = {p.name for p in REPO.iterdir() if (p / "__init__.py").is_file()}
    assert packages - OUTSIDE <= set(LAYERS), f"packages without a layer (add to LAYERS and ARCHITECTURE.md): {packages - set(LAYERS)}"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"losses/a.py": "def f():\n    from engine import b\n", "engine/b.py": ""}, "losses/a.py:2: imports engine.b, a higher layer"),
        ({"engine/a.py": "from engine.b import x\n", "engine/b.py": "import engine.a\n"}, "engine/a.py:1 engine.a -> engine.b; engine/b.py:1"),
        ({"detectors/a.py": "from evaluation import b\n", "evaluation/b.py": "import detectors.a\n"}, "cycle between packages of one layer"),
    ],
)
def test_the_checker_names_file_line_and_rule(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    edges = import_edges(tmp_path)
    problems = upward_imports(edges) + cycles(edges)
    assert any(expected in p for p in problems), problems
