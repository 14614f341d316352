"""The package layout is the architecture: engine/ in layers, each importing only from its own
layer or below (imports inside functions count too), no import loops, and a web UI that never
reaches the trainers. A new module lands in a layer by its package; one that breaks the order fails
here with the import that does."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import REPO

# Lowest first. A module is in the layer of the longest prefix that names it.
LAYERS = [
    ("engine.paths", "engine.files", "engine.templates", "engine.config"),  # settings, files
    ("engine.data", "engine.runs"),  # datasets; run and job folders and their processes
    ("engine.models",),  # the store, the one loader, export
    ("engine.inference",),  # generation, chat, scoring, evaluation
    ("engine.stages",),  # the trainers
    ("engine.bench",),  # `workbench bench`: the stages measured against TRL
    ("engine.train", "engine.job", "engine.cli", "engine.data_cli", "engine.demo"),  # entry points
]
WEBUI_MAY_NOT = ("engine.stages", "engine.bench", "engine.train", "engine.job", "engine.cli", "engine.data_cli",
                 "engine.demo")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of engine or webui in a file, function-level ones included
    (those under ``if TYPE_CHECKING:`` are annotations only, and left out)."""
    found = []

    def walk(node: ast.AST) -> None:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] if node.module in ("engine", "webui") \
                else [node.module]
            found.extend((node.lineno, n) for n in names)
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
        for child in ast.iter_child_nodes(node):
            walk(child)

    walk(ast.parse(path.read_text(encoding="utf-8")))
    return [(line, name) for line, name in found if name.split(".")[0] in ("engine", "webui")]


def layer(module: str) -> int | None:
    matches = [(len(prefix), i) for i, names in enumerate(LAYERS) for prefix in names
               if module == prefix or module.startswith(prefix + ".")]
    return max(matches)[1] if matches else None


def sources(package: str) -> list[Path]:
    """The package's modules (its own empty __init__.py aside)."""
    return sorted(p for p in (REPO / package).rglob("*.py") if p.parent != REPO / package or p.name != "__init__.py")


@pytest.mark.parametrize("path", sources("engine"), ids=lambda p: module_name(p))
def test_engine_imports_only_from_its_layer_or_below(path):
    here = layer(module_name(path))
    assert here is not None, f"{module_name(path)} is in no layer: add its package to LAYERS"
    upward = [f"line {line}: {name}" for line, name in imports(path) if (layer(name) or 0) > here]
    assert not upward, f"{module_name(path)} (layer {here}) imports from above: {upward}"


@pytest.mark.parametrize("path", sources("webui"), ids=lambda p: module_name(p))
def test_the_web_ui_never_reaches_the_trainers(path):
    bad = [f"line {line}: {name}" for line, name in imports(path) if name.startswith(WEBUI_MAY_NOT)]
    assert not bad, f"{module_name(path)} imports what only an engine process may: {bad}"


def test_no_import_loops():
    graph: dict[str, set[str]] = {}
    files = {module_name(p): p for package in ("engine", "webui") for p in sources(package)}
    for name, path in files.items():
        graph[name] = set()
        for _line, target in imports(path):
            while target not in files and "." in target:  # `from engine.x import name` -> engine.x
                target = target.rsplit(".", 1)[0]
            if target in files and target != name and not files[target].name == "__init__.py":
                graph[name].add(target)
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != 1, "import loop: " + " -> ".join([*trail, node, nxt])
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
