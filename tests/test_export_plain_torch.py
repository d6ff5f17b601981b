"""An exported ticket copied to a fresh folder loads and runs by its model card's own
instructions where only torch and safetensors (with what they install) can be imported: the
card's code, run as it is, gives doublewin's logits."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import torch
from packaging.requirements import Requirement

from doublewin.models import load_model

# What the child runs before the card's code: any import outside the standard library, the
# packages `pip install torch safetensors` brings and the export folder itself fails as if the
# package were not installed.
GUARD = """
import json, os, sys
ALLOWED = set(json.loads(sys.argv[1]))

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names or top in ALLOWED or os.path.exists(top + ".py"):
            return None
        raise ModuleNotFoundError(f"No module named {name!r} (not installed here)", name=name)

sys.meta_path.insert(0, NotInstalled())
sys.path.insert(0, ".")
import torch
torch.manual_seed(0)
"""
REPORT = """
print(json.dumps({"images": images.tolist(), "logits": logits.tolist(),
                  "doublewin": [m for m in sys.modules if m.startswith("doublewin")]}))
"""


def installed_with(*names: str) -> set[str]:
    """The top-level modules of the distributions ``names`` and everything they require."""
    seen: set[str] = set()
    modules: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        for file in dist.files or ():
            top = file.parts[0]
            if top.endswith((".dist-info", ".data")) or top in ("..", "__pycache__"):
                continue
            modules.add(top.split(".")[0])
        for text in dist.requires or ():
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return modules


def card_code(card: str) -> str:
    """The python block of the card's loading section."""
    section = card.split("## Load it in plain torch", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_an_export_in_a_fresh_folder_runs_by_its_cards_instructions_with_torch_alone(
    ticket_export, tmp_path
):
    fresh = tmp_path / "fresh"
    shutil.copytree(ticket_export, fresh)
    code = card_code((fresh / "README.md").read_text())
    assert "doublewin" not in code and "from model import" in code
    allowed = installed_with("torch", "safetensors")
    assert "torch" in allowed and "safetensors" in allowed and "doublewin" not in allowed
    assert "yaml" not in allowed and "jsonschema" not in allowed
    run = subprocess.run(
        [sys.executable, "-I", "-c", GUARD + code + REPORT, json.dumps(sorted(allowed))],
        cwd=fresh,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    shown = json.loads(run.stdout)
    assert shown["doublewin"] == []
    model, _ = load_model(Path(ticket_export) / "weights.safetensors")
    with torch.no_grad():
        expected = model.eval()(torch.tensor(shown["images"]))
    difference = (torch.tensor(shown["logits"]) - expected).abs().max()
    assert difference <= 1e-4 * max(1.0, float(expected.abs().max()))


def test_the_guard_refuses_what_torch_and_safetensors_do_not_install(tmp_path):
    allowed = installed_with("torch", "safetensors")
    run = subprocess.run(
        [sys.executable, "-I", "-c", GUARD + "import yaml\n", json.dumps(sorted(allowed))],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0 and "not installed here" in run.stderr
