"""The supernets of the registry (SuperTickets' search spaces, supernet.py) and what the rest of
doublewin asks of a supernet: its searchable cells and their gates, its MACs, and a network
built from a description (a shrunk one included).

- ``supernet8``: 8 px (the embedded glyph sets), kernels {3, 5}: a 3×3 stem of 16 channels,
  four cells (16, 24, 24, 32 channels; two of stride 2), expansion 4, a 1×1 head of 128;
  the CPU-sized family member.
- ``supernet_cifar``: 32 px, kernels {3, 5, 7}: a 3×3 stem of 32 channels and ten cells in
  the widths of MobileNetV2 for CIFAR (16 … 320, three of stride 2), expansion 4, a head of
  1280.
- ``supernet_imagenet``: 224 px, kernels {3, 5, 7}: HR-NAS's classification input stride 4
  (two 3×3 stride-2 convolutions to 24 channels), then cells in the widths of its branches
  (24, 36, 72, 144; the three later stages of stride 2) and of its head (320, last channel
  1600), expansion 4, BatchNorm momentum 0.01 and ε 1e-3, dropout 0.2 (its defaults).

HR-NAS runs its cells in parallel branches at several resolutions with fuse modules between
them; these supernets run the same cells one resolution after the other (docs/paper.md lists
it among the differences).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from doublewin.models.base import IMAGENET_MEAN, IMAGENET_STD, init_weights
from doublewin.models.supernet import FAMILY, Cell, SuperNet, path_key

EXPAND_RATIO = 4  # HR-NAS's expand_ratio: each path starts with in × 4 hidden channels
TORCH_BN = {"momentum": 0.1, "eps": 1e-5}


def _cells(stages: Sequence[tuple[int, int, int]], stem_out: int, kernels: list[int]) -> list:
    """Cells of (width, count, first stride) stages, each path ``in × EXPAND_RATIO`` wide."""
    cells, cin = [], stem_out
    for width, count, stride in stages:
        for i in range(count):
            cells.append(
                {
                    "in": cin,
                    "out": width,
                    "stride": stride if i == 0 else 1,
                    "kernels": list(kernels),
                    "channels": [cin * EXPAND_RATIO] * len(kernels),
                }
            )
            cin = width
    return cells


LAYOUTS: dict[str, dict[str, Any]] = {
    "supernet8": {
        "input_size": 8,
        "bn": TORCH_BN,
        "stem": [[3, 16, 3, 1]],
        "cells": _cells([(16, 1, 1), (24, 2, 2), (32, 1, 2)], 16, [3, 5]),
        "head": [32, 128],
        "dropout": 0.0,
    },
    "supernet_cifar": {
        "input_size": 32,
        "bn": TORCH_BN,
        "stem": [[3, 32, 3, 1]],
        "cells": _cells(
            [(16, 1, 1), (24, 2, 1), (32, 2, 2), (64, 2, 2), (96, 1, 1), (160, 1, 2), (320, 1, 1)],
            32,
            [3, 5, 7],
        ),
        "head": [320, 1280],
        "dropout": 0.0,
    },
    "supernet_imagenet": {
        "input_size": 224,
        "bn": {"momentum": 0.01, "eps": 1e-3},
        "stem": [[3, 24, 3, 2], [24, 24, 3, 2]],
        "cells": _cells(
            [(24, 1, 1), (36, 2, 2), (72, 3, 2), (144, 4, 2), (320, 1, 1)], 24, [3, 5, 7]
        ),
        "head": [320, 1600],
        "dropout": 0.2,
    },
}


def full_description(
    name: str, num_classes: int, mean: Sequence[float], std: Sequence[float]
) -> dict[str, Any]:
    """The description of the registry's supernet ``name`` with a ``num_classes`` head."""
    layout = LAYOUTS[name]
    last = layout["head"][1] if layout["head"] else layout["cells"][-1]["out"]
    return {
        "family": FAMILY,
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        **{key: value for key, value in layout.items()},
        "fc": [last, num_classes],
    }


def build_supernet(description: dict[str, Any]) -> SuperNet:
    """A network of the supernet family at the widths of ``description``, initialized as
    HR-NAS initializes (Kaiming normal, fan-out, for convolutions; γ = 1, β = 0)."""
    model = SuperNet(description)
    init_weights(model)
    return model


def registry_builder(name: str):
    """The registry's builder of supernet ``name`` (``builder(num_classes, mean=, std=)``)."""

    def build(
        num_classes: int,
        *,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> nn.Module:
        return build_supernet(full_description(name, num_classes, mean, std))

    return build


def is_supernet(model: nn.Module) -> bool:
    return isinstance(model, SuperNet)


def is_description(value: Any) -> bool:
    """A supernet description (a weights file's ``extra.architecture``)."""
    return isinstance(value, dict) and value.get("family") == FAMILY


def searchable_cells(model: nn.Module) -> list[tuple[str, Cell]]:
    """(dotted name, cell) of every cell whose paths are searched, in model order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, Cell)]


def gates(model: nn.Module) -> dict[tuple[str, int], nn.BatchNorm2d]:
    """(cell name, kernel) → the BatchNorm whose γ gates that path's hidden channels."""
    return {
        (name, k): cell.paths[path_key(k)].gate
        for name, cell in searchable_cells(model)
        for k in cell.kernels()
    }
