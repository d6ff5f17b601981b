"""A supernet of inverted-residual multi-kernel cells (SuperTickets, You et al. ECCV 2022; the
cells of HR-NAS's ``InvertedResidualChannels``), built from a description: the full supernet
and every network shrunk from it are the same class at other widths.

A cell holds one parallel path per kernel size k: a 1×1 expansion (conv, BatchNorm, ReLU), a
k×k depthwise convolution (conv, BatchNorm, ReLU; the cell's stride) and a 1×1 projection. The
paths are summed, normalized by the cell's BatchNorm (``bn``) and added to the input (or to a
1×1 ``residual`` convolution of it when the stride or the width changes). The BatchNorm γ after
a path's depthwise convolution gates its hidden channels: a path that loses every channel is
gone (that kernel size is dropped) and a cell that loses every path is its residual plus the
per-channel constant its BatchNorm makes of the empty sum.

This file imports torch only: `doublewin export` copies it next to a shrunk network's weights
as ``model.py``, so the network loads without doublewin::

    import json, torch
    from safetensors.torch import load_file
    from model import SuperNet
    net = SuperNet(json.load(open("architecture.json")))
    net.load_state_dict(load_file("weights.safetensors"))
    logits = net(images)          # images: [N, 3, H, W] pixels in [0, 1]

``description`` (architecture.json): ``family`` (``supernet``), ``mean``/``std`` (the input
normalization, inside the model), ``input_size`` (pixels; the MACs are counted there),
``bn`` ({``momentum``, ``eps``}), ``stem``: a list of [in, out, kernel, stride] conv-BN-ReLU
layers, ``cells``: a list of {``in``, ``out``, ``stride``, ``kernels``: [k, …], ``channels``:
[hidden channels per kernel, …]}, ``head``: [in, out] of the last 1×1 conv-BN-ReLU (or null),
``dropout`` (before the classifier) and ``fc``: [in, out]. Parameter names:
``stem.0.conv.weight``, ``cells.3.paths.k5.depthwise.bn.weight``, ``cells.3.bn.weight``,
``cells.3.residual.weight``, ``head.conv.weight``, ``fc.weight``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

FAMILY = "supernet"


def path_key(kernel: int) -> str:
    """``k5``: the name of the path with kernel size 5 inside a cell's ``paths``."""
    return f"k{kernel}"


class ConvBNReLU(nn.Module):
    """A convolution (no bias, padding k // 2), its BatchNorm and a ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, groups: int, bn: dict):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, momentum=bn["momentum"], eps=bn["eps"])
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Path(nn.Module):
    """One kernel size of a cell: 1×1 expansion, k×k depthwise, 1×1 projection."""

    def __init__(self, cin: int, cout: int, hidden: int, kernel: int, stride: int, bn: dict):
        super().__init__()
        self.expand = ConvBNReLU(cin, hidden, 1, 1, 1, bn)
        self.depthwise = ConvBNReLU(hidden, hidden, kernel, stride, hidden, bn)
        self.project = nn.Conv2d(hidden, cout, 1, 1, 0, bias=False)

    @property
    def gate(self) -> nn.BatchNorm2d:
        """The BatchNorm whose γ gates the hidden channels (after the depthwise conv)."""
        return self.depthwise.bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.depthwise(self.expand(x)))


class Cell(nn.Module):
    """Parallel paths summed, the cell's BatchNorm, the residual added."""

    def __init__(self, spec: dict[str, Any], bn: dict):
        super().__init__()
        self.cin, self.cout, self.stride = int(spec["in"]), int(spec["out"]), int(spec["stride"])
        self.paths = nn.ModuleDict(
            {
                path_key(k): Path(self.cin, self.cout, int(h), int(k), self.stride, bn)
                for k, h in zip(spec["kernels"], spec["channels"], strict=True)
                if int(h) > 0
            }
        )
        self.bn = nn.BatchNorm2d(self.cout, momentum=bn["momentum"], eps=bn["eps"])
        self.residual: nn.Conv2d | None = None
        if self.stride != 1 or self.cin != self.cout:
            # HR-NAS's residual: a 1×1 conv grouped by the widths' greatest common divisor.
            groups = math.gcd(self.cin, self.cout)
            self.residual = nn.Conv2d(
                self.cin, self.cout, 1, self.stride, 0, groups=groups, bias=False
            )

    def kernels(self) -> list[int]:
        return [int(name[1:]) for name in self.paths]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.residual is None else self.residual(x)
        if len(self.paths) == 0:
            # The empty sum, normalized: a per-channel constant (the paths it lost folded
            # theirs into the running mean), so losing the last path changes no logit.
            return identity + self.bn(identity.new_zeros(identity.shape[0], self.cout, 1, 1))
        summed = sum(path(x) for path in self.paths.values())
        return identity + self.bn(summed)


class SuperNet(nn.Module):
    """The network ``description`` lays out; takes pixels in [0, 1]."""

    def __init__(self, description: dict[str, Any]):
        super().__init__()
        self.register_buffer(
            "mean", torch.tensor(description["mean"]).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(description["std"]).view(1, 3, 1, 1), persistent=False
        )
        bn = dict(description["bn"])
        self.input_size = int(description["input_size"])
        self.dropout_rate = float(description.get("dropout", 0.0))
        self.stem = nn.Sequential(
            *(ConvBNReLU(cin, cout, k, s, 1, bn) for cin, cout, k, s in description["stem"])
        )
        self.cells = nn.ModuleList(Cell(cell, bn) for cell in description["cells"])
        head = description.get("head")
        self.head = ConvBNReLU(head[0], head[1], 1, 1, 1, bn) if head else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(self.dropout_rate)
        self.fc = nn.Linear(*description["fc"])
        self.bn_options = bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        x = self.pool(self.head(x)).flatten(1)
        return self.fc(self.dropout(x))

    def describe(self) -> dict[str, Any]:
        """The description of the network as its layers are now (after shrinking)."""
        cells = []
        for cell in self.cells:
            cells.append(
                {
                    "in": cell.cin,
                    "out": cell.cout,
                    "stride": cell.stride,
                    "kernels": cell.kernels(),
                    "channels": [p.gate.num_features for p in cell.paths.values()],
                }
            )
        head = self.head
        return {
            "family": FAMILY,
            "mean": [float(v) for v in self.mean.flatten()],
            "std": [float(v) for v in self.std.flatten()],
            "input_size": self.input_size,
            "bn": dict(self.bn_options),
            "stem": [
                [m.conv.in_channels, m.conv.out_channels, m.conv.kernel_size[0], m.conv.stride[0]]
                for m in self.stem
            ],
            "cells": cells,
            "head": [head.conv.in_channels, head.conv.out_channels]
            if isinstance(head, ConvBNReLU)
            else None,
            "dropout": self.dropout_rate,
            "fc": [self.fc.in_features, self.fc.out_features],
        }


def out_size(size: int, stride: int) -> int:
    """The side after a convolution with padding k // 2 (odd k) or a 1×1 one: ⌈size / stride⌉."""
    return -(-size // stride)


def conv_macs(cin: int, cout: int, kernel: int, groups: int, size: int) -> int:
    """Multiply-accumulates of one image through a convolution with a ``size``² output."""
    return cin // groups * cout * kernel * kernel * size * size


def cell_sizes(description: dict[str, Any]) -> list[tuple[int, int]]:
    """(input side, output side) of every cell at the description's ``input_size``."""
    size = int(description["input_size"])
    for _, _, _, stride in description["stem"]:
        size = out_size(size, stride)
    out = []
    for cell in description["cells"]:
        after = out_size(size, int(cell["stride"]))
        out.append((size, after))
        size = after
    return out


def path_macs(cell: dict[str, Any], kernel: int, hidden: int, sizes: tuple[int, int]) -> int:
    """MACs of one path of ``hidden`` channels: expansion at the input side, depthwise and
    projection at the output side (HR-NAS's per-path ``n_macs``: convolutions only)."""
    size_in, size_out = sizes
    return (
        conv_macs(int(cell["in"]), hidden, 1, 1, size_in)
        + conv_macs(hidden, hidden, kernel, hidden, size_out)
        + conv_macs(hidden, int(cell["out"]), 1, 1, size_out)
    )


def network_macs(description: dict[str, Any]) -> int:
    """MACs of one image through the network: every convolution and the classifier."""
    size = int(description["input_size"])
    total = 0
    for cin, cout, kernel, stride in description["stem"]:
        size = out_size(size, stride)
        total += conv_macs(cin, cout, kernel, 1, size)
    for cell, sizes in zip(description["cells"], cell_sizes(description), strict=True):
        for k, h in zip(cell["kernels"], cell["channels"], strict=True):
            total += path_macs(cell, int(k), int(h), sizes)
        if int(cell["stride"]) != 1 or int(cell["in"]) != int(cell["out"]):
            groups = math.gcd(int(cell["in"]), int(cell["out"]))
            total += conv_macs(int(cell["in"]), int(cell["out"]), 1, groups, sizes[1])
        size = sizes[1]
    if description.get("head"):
        total += conv_macs(description["head"][0], description["head"][1], 1, 1, size)
    return total + description["fc"][0] * description["fc"][1]
