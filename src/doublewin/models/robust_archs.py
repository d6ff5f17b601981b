"""The architectures of the robust CIFAR models people download (the RobustBench zoo), with the
module names of their published state dicts, so those checkpoints load strictly.

- ``WideResNet`` (Zagoruyko & Komodakis 2016; RobustBench's ``wide_resnet.py``): WRN-28-10 and
  WRN-34-10. Pre-activation blocks (``bn1``, ``relu1``, ``conv1``, ``bn2``, ``relu2``,
  ``conv2``, ``convShortcut``) in ``block1``…``block3`` (``blockN.layer.M``), then ``bn1``,
  ``fc``. TRADES-era checkpoints also carry an unused ``sub_block1``, which the importer drops.
- ``PreActResNet`` (He et al. 2016b; RobustBench's ``resnet.py``): PreAct ResNet-18, blocks
  ``bn1``, ``conv1``, ``bn2``, ``conv2``, ``shortcut.0`` in ``layer1``…``layer4``, then ``bn``
  and the head ``linear``.

Both take pixels in [0, 1] and normalize inside (``mean``/``std`` non-persistent buffers);
RobustBench's CIFAR models mostly normalize nothing (mean 0, std 1), and the importer sets what
a checkpoint's own ``mu``/``sigma`` say. The global pooling is adaptive (equal to the original
fixed-size pooling at 32 px).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from doublewin.models.base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Normalized,
    init_weights,
    residual_stage,
)


class WideBasicBlock(nn.Module):
    def __init__(self, in_planes: int, out_planes: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, 1, 1, bias=False)
        self.equal = in_planes == out_planes
        self.convShortcut = (
            None if self.equal else nn.Conv2d(in_planes, out_planes, 1, stride, 0, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(activated)))
        out = self.conv2(out)
        shortcut = x if self.equal else self.convShortcut(activated)  # type: ignore[misc]
        return out + shortcut


class WideStage(nn.Module):
    """RobustBench's NetworkBlock: the blocks live under ``layer``."""

    def __init__(self, blocks: int, in_planes: int, out_planes: int, stride: int):
        super().__init__()
        self.layer = nn.Sequential(
            *(
                WideBasicBlock(
                    in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1
                )
                for i in range(blocks)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(Normalized):
    def __init__(
        self,
        depth: int,
        widen: int,
        num_classes: int,
        *,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ):
        super().__init__()
        self._init_normalization(mean, std)
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        blocks = (depth - 4) // 6
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.block1 = WideStage(blocks, widths[0], widths[1], 1)
        self.block2 = WideStage(blocks, widths[1], widths[2], 2)
        self.block3 = WideStage(blocks, widths[2], widths[3], 2)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(widths[3], num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(self.normalize(x)))))
        out = self.relu(self.bn1(out))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


class PreActBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if hasattr(self, "shortcut") else x
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return out + shortcut


class PreActResNet(Normalized):
    def __init__(
        self,
        layers: Sequence[int],
        num_classes: int,
        *,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ):
        super().__init__()
        self._init_normalization(mean, std)
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        planes, width = 64, 64
        for index, blocks in enumerate(layers, start=1):
            stride = 1 if index == 1 else 2
            setattr(
                self, f"layer{index}", residual_stage(PreActBlock, planes, width, blocks, stride)
            )
            planes = width
            width *= 2
        self.bn = nn.BatchNorm2d(planes)
        self.linear = nn.Linear(planes, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.normalize(x))
        for index in range(1, 5):
            out = getattr(self, f"layer{index}")(out)
        out = F.relu(self.bn(out))
        return self.linear(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))
