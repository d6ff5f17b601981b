"""The shape of the code: one-way layers, no import cycles, small modules, one place for file
names. Read from the source with ``ast``, so a violation anywhere in src/doublewin fails here."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "doublewin"

# Package → the packages it may import. core is the floor; cli is the roof; analysis judges
# results tables and needs only core; experiments runs stages and writes reports.
LOWER = {"core"}
# Everything that trains and measures: what the stages stand on, and the stages themselves.
ENGINE = {"core", "data", "models", "attacks", "train", "measure", "tickets", "stages"}
ALLOWED = {
    "core": set(),
    "data": {"core"},
    "models": {"core"},
    "attacks": {"core"},
    "train": {"core", "data", "models", "attacks"},
    # Measurements of trained models (robustness checks, landscapes, sharpness, trajectories):
    # beside tickets, above the engine, below the stages that run them.
    "measure": {"core", "data", "models", "attacks", "train"},
    "tickets": {"core", "data", "models", "attacks", "train"},
    "stages": {"core", "data", "models", "attacks", "train", "measure", "tickets"},
    "analysis": {"core"},
    "experiments": ENGINE | {"analysis"},
    "cli": ENGINE | {"analysis", "experiments"},
    # The Python API: on top, beside the command line.
    "api": ENGINE | {"analysis"},
    "__main__": {"cli", "core"},  # the program: signal handling (core) before the commands load
    "__init__": {"api"},  # the API's names, re-exported lazily (doublewin/__init__.py)
}
# Inside a package with rooms, room → the rooms of the same package it may import (a module
# beside the rooms counts as a room of its own). The same one-way rule, one floor down.
ROOMS = {
    "experiments": {
        "plan": set(),  # the experiment file → the grid of stage specs
        "store": {"plan"},
        "adaptive": {"plan"},
        # The savers' estimate drives the search's own ladder bisection.
        "estimate": {"plan", "adaptive"},
        "run": {"plan", "store", "adaptive", "estimate"},
        "certify": {"plan", "store", "run"},
    },
    "analysis": {
        "verdict": set(),
        "results_table": set(),
        "table_check": set(),
        "summaries": {"verdict"},
        "findings": {"verdict", "summaries"},
        "report": {"verdict", "summaries", "findings", "results_table", "table_check"},
        "judge": {"verdict", "summaries", "findings", "report", "results_table", "table_check"},
    },
}
MAX_LINES = 400
# Names of files the project writes; only core/paths.py may spell them.
FILE_NAME = re.compile(
    r"^[\w.*{}/-]*\.(safetensors|pt|pth|json|jsonl|csv|md|html|png|npz|yaml|lock)$|^DONE$"
)


def modules() -> dict[str, Path]:
    """Dotted module name → file, for every module of the package."""
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path) -> list[tuple[str, ast.AST, bool]]:
    """(imported doublewin module, node, at function level) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    known = modules()
    out = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                # `from doublewin.core import paths` imports the module doublewin.core.paths.
                names = [
                    f"{child.module}.{a.name}"
                    if f"{child.module}.{a.name}" in known
                    else child.module
                    for a in child.names
                ]
            for name in names:
                if name == "doublewin" or name.startswith("doublewin."):
                    out.append((name, child, nested))
                elif isinstance(child, (ast.Import, ast.ImportFrom)) and nested:
                    out.append(("", child, nested))
            visit(child, inner)

    visit(tree, False)
    return out


def test_packages_import_only_the_layers_below_them():
    wrong = []
    for module, path in modules().items():
        source = package_of(module)
        for target, node, _ in imports(path):
            if not target:
                continue
            to = package_of(target)
            if to != source and to not in ALLOWED[source]:
                wrong.append(f"{path.relative_to(SRC)}:{node.lineno} {source} → {to}")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def room_of(module: str) -> str | None:
    """The room of a module of a package with rooms (``doublewin.experiments.run.folder`` →
    run); None for the package itself and for packages without rooms."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] in ROOMS else None


def test_every_room_has_its_place_in_the_order():
    found = {(package_of(m), room_of(m)) for m in modules() if room_of(m)}
    unplaced = sorted(f"{p}/{r}" for p, r in found if r not in ROOMS[p])
    assert not unplaced, f"rooms missing from ROOMS in tests/test_layout.py: {unplaced}"


def test_rooms_import_only_the_rooms_below_them():
    wrong = []
    for module, path in modules().items():
        source = room_of(module)
        if source is None:
            continue
        for target, node, _ in imports(path):
            to = room_of(target) if target else None
            same_package = package_of(target or "") == package_of(module)
            if same_package and to and to != source and to not in ROOMS[package_of(module)][source]:
                wrong.append(f"{path.relative_to(SRC)}:{node.lineno} {source} → {to}")
    assert not wrong, "imports against the rooms' order:\n" + "\n".join(wrong)


def test_the_rooms_order_has_no_circle():
    for package, rooms in ROOMS.items():
        assert not _strongly_connected(rooms, dict.fromkeys(rooms)), package  # type: ignore[arg-type]
        assert all(r not in below for r, below in rooms.items()), package


def test_core_imports_nothing_outside_core():
    for module, path in modules().items():
        if package_of(module) != "core":
            continue
        outside = [t for t, _, _ in imports(path) if t and package_of(t) not in LOWER]
        assert not outside, f"{module} imports {outside}"


def test_no_import_cycle_between_modules():
    known = modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in known.items():
        for target, _, _ in imports(path):
            if target in known and target != module:
                graph[module].add(target)
    cycles = _strongly_connected(graph, known)
    assert not cycles, "import cycles: " + "; ".join(" ↔ ".join(sorted(c)) for c in cycles)


def _strongly_connected(graph: dict[str, set[str]], nodes: dict[str, Path]) -> list[set[str]]:
    """Tarjan's algorithm: the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    counter = [0]

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(component)

    for v in nodes:
        if v not in index:
            connect(v)
    return out


def test_function_level_imports_only_defer_a_heavy_dependency_with_a_reason():
    """Inside a function an import defers a heavy third-party package, or (only in cli, the
    roof) the project's own layers so that the command line starts without torch; either way
    a `# deferred: <reason>` comment heads the block of imports."""
    wrong = []
    for path in modules().values():
        lines = path.read_text().splitlines()
        in_cli = package_of(dotted(path)) == "cli"
        for target, node, nested in imports(path):
            if not nested:
                continue
            where = f"{path.relative_to(SRC)}:{node.lineno}"
            if target == "doublewin.api" and path == SRC / "__init__.py":
                continue  # the package's lazy re-export of the Python API (PEP 562)
            if target and not in_cli:
                wrong.append(f"{where} imports {target} inside a function")
                continue
            if not _deferred_with_reason(lines, node.lineno - 1):
                wrong.append(f"{where}: a function-level import without '# deferred: <reason>'")
    assert not wrong, "\n".join(wrong)


def dotted(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _deferred_with_reason(lines: list[str], index: int) -> bool:
    """The import at ``lines[index]`` ends with, or follows a block of imports (and comments)
    headed by, a `# deferred:` comment."""
    for line in reversed(lines[: index + 1]):
        text = line.strip()
        if "# deferred:" in text:
            return True
        continued = text.startswith((")", "from ", "import ", "#")) or text.endswith((",", "("))
        if not continued:
            return False
    return False


@pytest.mark.parametrize(
    ("block", "ok"),
    [
        (
            [
                "    # deferred: torch",
                "    from a import b",
                "    from c import (",
                "        d,",
                "    )",
            ],
            True,
        ),
        (["    import timm  # deferred: optional"], True),
        (["    x = 1", "    from a import b"], False),
        (["    # a comment", "    from a import b"], False),
    ],
)
def test_the_deferred_check_finds_the_reason_heading_a_block(block: list[str], ok: bool):
    assert _deferred_with_reason(block, len(block) - 1) is ok


def test_no_module_is_over_400_lines():
    long = {
        str(p.relative_to(SRC)): n
        for p in modules().values()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, long


def test_only_core_paths_spells_a_file_name():
    wrong = []
    for path in modules().values():
        if path == SRC / "core" / "paths.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and FILE_NAME.match(node.value)
            ):
                wrong.append(f"{path.relative_to(SRC)}:{node.lineno} {node.value!r}")
    assert not wrong, "file names outside core/paths.py:\n" + "\n".join(wrong)


@pytest.mark.parametrize("name", ["metrics.json", "rung-03.safetensors", "DONE", "x/*.png"])
def test_the_file_name_check_recognises_file_names(name: str):
    assert FILE_NAME.match(name)


@pytest.mark.parametrize("name", ["name the file *.safetensors", "report", "8/255", ".tmp"])
def test_the_file_name_check_leaves_messages_and_words_alone(name: str):
    assert not FILE_NAME.match(name)
