"""What every doublewin architecture shares: [0,1] input normalized inside the model, and the
initialization of its convolutions and BatchNorms."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalized(nn.Module):
    """Base for models that normalize their [0,1] input with built-in mean/std."""

    def _init_normalization(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.register_buffer(
            "mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False
        )

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


def residual_stage(
    block: Callable[[int, int, int], nn.Module], inplanes: int, planes: int, count: int, stride: int
) -> nn.Sequential:
    """A ResNet stage: ``count`` blocks ``block(in, out, stride)`` from ``inplanes`` to
    ``planes`` channels, the first with ``stride``, the others with stride 1."""
    return nn.Sequential(
        *[
            block(inplanes if i == 0 else planes, planes, stride if i == 0 else 1)
            for i in range(count)
        ]
    )


def init_weights(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
