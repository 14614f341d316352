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
    ("engine.paths", "engine.files", "engine.config", "engine.seams"),  # settings, files, seams
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
            names = [f"{node.module}.{a.name}" for a in node.names]  # a submodule, or a name (then its module)
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


def import_graph() -> dict[str, set[str]]:
    """Which modules each module makes Python import. A package's __init__.py counts as a module whose
    imports are its re-exports, and importing a submodule first imports every package above it that
    the importer is not inside: `from engine.config.fields import X` in engine/x.py runs
    engine/config/__init__.py too."""
    files = {module_name(p): p for package in ("engine", "webui") for p in sources(package)}
    files.update({module_name(p): p for package in ("engine", "webui") for p in (REPO / package).rglob("__init__.py")})
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        for _line, target in imports(path):
            while target not in files and "." in target:  # `from engine.x import name` -> engine.x
                target = target.rsplit(".", 1)[0]
            packages = [".".join(target.split(".")[:i]) for i in range(1, target.count(".") + 1)]
            for module in [*packages, target]:
                inside = name == module or name.startswith(module + ".")
                if module in files and not inside:
                    graph[name].add(module)
    return graph


def test_no_import_loops():
    """Modules import each other in one direction only (see import_graph)."""
    graph = import_graph()
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


# ---- private names of the libraries: only engine/seams.py (and its tests) may use them ----------------

LIBRARIES = ("trl", "peft", "transformers", "bitsandbytes", "accelerate", "torch")
SEAM_FILES = (REPO / "engine" / "seams.py", REPO / "tests" / "engine" / "test_seams.py")
STDLIB_PRIVATE = {"_exit", "_getframe", "_asdict", "_replace", "_fields", "_make", "_current_frames", "_value_"}
NAME_CALLS = ("getattr", "setattr", "hasattr", "delattr")


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def python_files() -> list[Path]:
    return sorted(p for package in ("engine", "webui", "bench", "tests") for p in (REPO / package).rglob("*.py"))


def own_private_names() -> set[str]:
    """The private names the workbench defines itself: its functions, classes, attributes and variables."""
    names = set()
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return {name for name in names if private(name)}


def private_reaches(path: Path, ours: set[str]) -> list[str]:
    """Where a file names a private attribute, method or module it does not define itself: an import of
    a library's private module or name, ``x._name`` on anything but self/cls, getattr(x, "_name")."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in LIBRARIES:
            bad = [part for part in node.module.split(".") if private(part)]
            bad += [a.name for a in node.names if private(a.name)]
            found += [f"line {node.lineno}: from {node.module} import ... ({b})" for b in bad]
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names
                      if a.name.split(".")[0] in LIBRARIES and any(private(p) for p in a.name.split("."))]
        elif isinstance(node, ast.Attribute) and private(node.attr) and node.attr not in ours | STDLIB_PRIVATE:
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            if owner not in ("self", "cls"):
                found.append(f"line {node.lineno}: .{node.attr}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in NAME_CALLS
              and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)
              and isinstance(node.args[1].value, str) and private(node.args[1].value)
              and node.args[1].value not in ours):
            found.append(f"line {node.lineno}: {node.func.id}(..., {node.args[1].value!r})")
    return sorted(found, key=lambda text: int(text.split(":")[0].removeprefix("line ")))


def test_private_library_names_are_used_only_in_the_seams_module():
    ours = own_private_names() - seam_names()
    reaches = {str(p.relative_to(REPO)): r for p in python_files() if p not in SEAM_FILES
               if (r := private_reaches(p, ours))}
    assert not reaches, f"private names of a library outside engine/seams.py (add a seam there): {reaches}"


def seam_names() -> set[str]:
    """Private names that appear only because the seams module assigns or overrides them (a library's
    method it overrides, an attribute it sets): they are the libraries', not ours."""
    names = set()
    for path in SEAM_FILES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and private(node.name):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and private(node.attr):
                names.add(node.attr)
    return names


def test_the_private_name_check_finds_a_reach():
    """The check above is not blind: a file reaching into TRL's private function is reported."""
    sample = REPO / "tests" / "fixtures" / "private_reach.py.txt"
    found = private_reaches(sample, own_private_names() - seam_names())
    assert found == ["line 1: from trl.trainer.utils import ... (_use_triton)", "line 4: ._metrics",
                     "line 5: getattr(..., '_precompute_engine')"], found
