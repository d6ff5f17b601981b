"""A ResNet whose every layer has its own width: the network of a channel ticket, physically
smaller, with the module names of the network it was cut from (conv1, bn1, layerN.M.conv1,
downsample.0, fc), so its weights load strictly by their original names.

This file imports torch only: `doublewin export` copies it next to the weights as
``model.py``, so an exported model loads without doublewin::

    import json, torch
    from safetensors.torch import load_file
    from model import SlimResNet
    net = SlimResNet(json.load(open("architecture.json")))
    net.load_state_dict(load_file("weights.safetensors"))
    logits = net(images)          # images: [N, 3, H, W] pixels in [0, 1]

``description`` (architecture.json): ``mean``/``std`` (the input normalization, inside the
model), ``stem``: {``conv``: [in, out, kernel, stride, padding], ``maxpool``: bool},
``stages``: a list of stages, each a list of blocks {``kind``: basic|bottleneck, ``convs``:
[[in, out, kernel, stride, padding], …], ``downsample``: [in, out, stride] or null}, and
``fc``: [in, out].
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _conv(spec: list[int]) -> nn.Conv2d:
    cin, cout, kernel, stride, padding = spec
    return nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)


class SlimBlock(nn.Module):
    """A basic (two 3×3) or bottleneck (1×1, 3×3, 1×1) residual block of given widths."""

    def __init__(self, block: dict[str, Any]):
        super().__init__()
        self.kind = block["kind"]
        for index, spec in enumerate(block["convs"], start=1):
            setattr(self, f"conv{index}", _conv(spec))
            setattr(self, f"bn{index}", nn.BatchNorm2d(spec[1]))
        self.depth = len(block["convs"])
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if block.get("downsample"):
            cin, cout, stride = block["downsample"]
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = x
        for index in range(1, self.depth + 1):
            out = getattr(self, f"bn{index}")(getattr(self, f"conv{index}")(out))
            if index < self.depth:
                out = self.relu(out)
        return self.relu(out + identity)


class SlimResNet(nn.Module):
    """The network ``description`` lays out; takes pixels in [0, 1]."""

    def __init__(self, description: dict[str, Any]):
        super().__init__()
        self.description = description
        self.register_buffer(
            "mean", torch.tensor(description["mean"]).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(description["std"]).view(1, 3, 1, 1), persistent=False
        )
        stem = description["stem"]
        self.conv1 = _conv(stem["conv"])
        self.bn1 = nn.BatchNorm2d(stem["conv"][1])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if stem.get("maxpool") else nn.Identity()
        for index, stage in enumerate(description["stages"], start=1):
            setattr(self, f"layer{index}", nn.Sequential(*(SlimBlock(b) for b in stage)))
        self.stages = len(description["stages"])
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(*description["fc"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for index in range(1, self.stages + 1):
            x = getattr(self, f"layer{index}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def describe(model: nn.Module, mean: list[float], std: list[float]) -> dict[str, Any]:
    """The description of a ResNet of either family (doublewin's CIFAR ResNets, torchvision's),
    at the widths its layers have now (after channels were removed)."""

    def conv(c: nn.Conv2d) -> list[int]:
        return [c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0]]

    stages = []
    index = 1
    while hasattr(model, f"layer{index}"):
        blocks = []
        for block in getattr(model, f"layer{index}"):
            convs = []
            k = 1
            while hasattr(block, f"conv{k}"):
                convs.append(conv(getattr(block, f"conv{k}")))
                k += 1
            down = None
            if block.downsample is not None:
                d = block.downsample[0]
                down = [d.in_channels, d.out_channels, d.stride[0]]
            blocks.append(
                {
                    "kind": "basic" if len(convs) == 2 else "bottleneck",
                    "convs": convs,
                    "downsample": down,
                }
            )
        stages.append(blocks)
        index += 1
    return {
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "stem": {
            "conv": conv(model.conv1),
            "maxpool": isinstance(getattr(model, "maxpool", None), nn.MaxPool2d),
        },
        "stages": stages,
        "fc": [model.fc.in_features, model.fc.out_features],
    }
