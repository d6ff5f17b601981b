"""Write src/doublewin/models/robustbench_entries.json from the installed robustbench package.

Every entry of RobustBench's model zoo (CIFAR-10, CIFAR-100 and ImageNet; every threat model)
is built by RobustBench's own constructor, on the meta device where it allows it (shapes only),
and recorded with the class it builds, its parameters, its key signature and whether it builds
without downloading. Run after changing the pinned robustbench version:

    .venv/bin/python tools/robustbench_catalog.py
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from importlib.metadata import version

import torch

from doublewin.models.robustbench import (
    CATALOG_FILE,
    _Download,
    entry_constructor,
    model_zoo,
    no_downloads,
    state_signature,
)

CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet": 1000}


def input_size(dataset: str, record: dict) -> int:
    if dataset != "imagenet":
        return 32
    found = re.findall(r"(\d+)", str(record.get("preprocessing") or "224"))
    return int(found[-1]) if found else 224


def architecture(net: torch.nn.Module) -> str:
    inner = getattr(net, "model", None)
    if isinstance(net, torch.nn.Sequential) and isinstance(inner, torch.nn.Module):
        return type(inner).__name__  # RobustBench's ImageNet normalizer around the model
    return type(net).__name__


def build(constructor) -> torch.nn.Module:
    with warnings.catch_warnings(), no_downloads():
        warnings.simplefilter("ignore")
        try:
            with torch.device("meta"):
                return constructor()
        except _Download:
            raise
        except Exception:  # a constructor that computes on its tensors: build it for real
            return constructor()


def main() -> int:
    rows = []
    for dataset, threats in model_zoo().items():
        for threat, entries in threats.items():
            for name, record in entries.items():
                ids = record.get("gdrive_id")
                row = {
                    "dataset": dataset.value,
                    "threat": threat.value,
                    "name": name,
                    "num_classes": CLASSES[dataset.value],
                    "input_size": input_size(dataset.value, record),
                    "checkpoints": len(ids) if isinstance(ids, list) else 1,
                    "builds": True,
                    "note": "",
                }
                try:
                    net = build(entry_constructor(dataset.value, threat.value, name, record))
                except Exception as exc:  # noqa: BLE001 - recorded, not raised
                    row.update(builds=False, architecture="", parameters=0, signature="")
                    row["note"] = (
                        "RobustBench's constructor downloads published weights"
                        if isinstance(exc, _Download)
                        else f"RobustBench's constructor fails: {str(exc).splitlines()[0]}"
                    )
                    rows.append(row)
                    print(f"{dataset.value}/{threat.value}/{name}: downloads", flush=True)
                    continue
                row["architecture"] = architecture(net)
                row["parameters"] = sum(p.numel() for p in net.parameters())
                row["signature"] = state_signature(net.state_dict())
                if row["checkpoints"] > 1:
                    row["note"] = f"an ensemble of {row['checkpoints']} networks"
                rows.append(row)
                print(f"{dataset.value}/{threat.value}/{name}: {row['architecture']}", flush=True)
                del net
    data = {"robustbench": version("robustbench"), "entries": rows}
    CATALOG_FILE.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{len(rows)} entries -> {CATALOG_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
