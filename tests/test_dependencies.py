"""What `make demo` installs is what the package imports: every module-level import of a
third-party module in src/ names a distribution in pyproject's `dependencies` (optional extras
are imported inside the functions that need them)."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "doublewin"


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    """pyproject's `dependencies` (the list `make demo` installs), extras left out."""
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M)
    assert block, "pyproject.toml has no dependencies list"
    requirements = re.findall(r'^\s*"([^"]+)"', block.group(1), re.M)
    return {_normalized(re.split(r"[<>=!~;\[ (]", r, maxsplit=1)[0]) for r in requirements}


def _module_level_imports(path: Path) -> set[str]:
    """Top-level module names imported when the module is imported (not under TYPE_CHECKING,
    not inside a function)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_module_level_import_is_a_declared_dependency() -> None:
    declared = _declared()
    distributions = packages_distributions()
    undeclared = {}
    for path in sorted(SRC.rglob("*.py")):
        for name in _module_level_imports(path):
            if name in sys.stdlib_module_names or name in {"doublewin", "__future__"}:
                continue
            dists = {_normalized(d) for d in distributions.get(name, [name])}
            if not dists & declared:
                undeclared.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert not undeclared, f"imported at module level but not in dependencies: {undeclared}"


def test_the_check_sees_an_undeclared_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import click\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import ray\n"
    )
    assert _module_level_imports(module) == {"click", "typing"}
    assert "click" not in _declared()
