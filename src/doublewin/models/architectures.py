"""The architectures: CIFAR ResNets for 12–32 px inputs and torchvision's ImageNet ResNets.

Every model takes pixels in [0,1] and normalizes inside (``mean``/``std`` are non-persistent
buffers, so ``state_dict()`` keys are exactly torchvision's), and every classifier head is
``fc``. Module names follow torchvision (conv1, bn1, layerN.M.conv1, downsample.0, fc).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from doublewin.core.errors import UserError

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


class CifarBasicBlock(nn.Module):
    """He et al. 2016 basic block with a projection shortcut when the shape changes."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class CifarResNet(Normalized):
    """3×3 stem and three stages (16/32/64 channels × ``width``/16) of ``depth`` blocks."""

    def __init__(
        self,
        blocks_per_stage: int,
        num_classes: int,
        *,
        width: int = 16,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ):
        super().__init__()
        self._init_normalization(mean, std)
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        inplanes = width
        for index, planes in enumerate((width, 2 * width, 4 * width), start=1):
            stride = 1 if index == 1 else 2
            layers = []
            for block in range(blocks_per_stage):
                layers.append(CifarBasicBlock(inplanes, planes, stride if block == 0 else 1))
                inplanes = planes
            setattr(self, f"layer{index}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(self.normalize(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


@functools.cache
def torchvision_resnet() -> type[nn.Module]:
    """torchvision's ResNet with normalization inside; ``cifar_stem`` swaps the 7×7 stride-2
    stem and max-pool for a 3×3 stride-1 stem (the CIFAR variant) with the same names.
    Built on first use, so commands that never build one never load torchvision."""
    # deferred: torchvision imports torch._dynamo (about 2 s); only these ResNets need it
    from torchvision.models import resnet as tv

    class TorchvisionResNet(tv.ResNet, Normalized):
        def __init__(
            self,
            block: str,
            layers: list[int],
            num_classes: int,
            *,
            cifar_stem: bool = False,
            mean: Sequence[float] = IMAGENET_MEAN,
            std: Sequence[float] = IMAGENET_STD,
        ):
            super().__init__(getattr(tv, block), layers, num_classes=num_classes)
            self._init_normalization(mean, std)
            if cifar_stem:
                self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
                nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
                self.maxpool = nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(self.normalize(x))

    return TorchvisionResNet


def _init_weights(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


@dataclass(frozen=True)
class ArchInfo:
    """One architecture of the registry."""

    name: str
    family: str
    input_size: int  # the side in pixels it is designed for
    description: str
    builder: Callable[..., nn.Module]

    @property
    def num_params(self) -> int:
        """Trainable parameters with a 10-class head."""
        return _num_params(self.name)

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "family": self.family,
            "input_size": self.input_size,
            "num_params": self.num_params,
            "description": self.description,
        }


def _cifar(blocks: int, width: int = 16) -> Callable[..., nn.Module]:
    def build(num_classes: int, **kw: object) -> nn.Module:
        return CifarResNet(blocks, num_classes, width=width, **kw)

    return build


def _torchvision(block: str, layers: list[int], cifar_stem: bool) -> Callable[..., nn.Module]:
    """``block``: torchvision's ``BasicBlock`` or ``Bottleneck``."""

    def build(num_classes: int, **kw: object) -> nn.Module:
        return torchvision_resnet()(block, layers, num_classes, cifar_stem=cifar_stem, **kw)

    return build


ARCHITECTURES: dict[str, ArchInfo] = {
    info.name: info
    for info in (
        ArchInfo(
            "resnet8",
            "cifar-resnet",
            16,
            "CIFAR ResNet-8 (He et al. 2016), 1 block per stage; the CPU-friendly embedded default",
            _cifar(1),
        ),
        ArchInfo(
            "resnet20",
            "cifar-resnet",
            32,
            "CIFAR ResNet-20 (He et al. 2016), 3 blocks per stage",
            _cifar(3),
        ),
        ArchInfo(
            "cifar_resnet18",
            "torchvision-cifar",
            32,
            "ResNet-18 with a 3×3 stride-1 stem and no max-pool (32 px), torchvision names",
            _torchvision("BasicBlock", [2, 2, 2, 2], True),
        ),
        ArchInfo(
            "cifar_resnet50",
            "torchvision-cifar",
            32,
            "ResNet-50 with a 3×3 stride-1 stem and no max-pool (32 px), torchvision names",
            _torchvision("Bottleneck", [3, 4, 6, 3], True),
        ),
        ArchInfo(
            "resnet18",
            "torchvision",
            224,
            "torchvision ImageNet ResNet-18 (loads published weights strictly)",
            _torchvision("BasicBlock", [2, 2, 2, 2], False),
        ),
        ArchInfo(
            "resnet50",
            "torchvision",
            224,
            "torchvision ImageNet ResNet-50 (the paper's model; loads published weights strictly)",
            _torchvision("Bottleneck", [3, 4, 6, 3], False),
        ),
    )
}


@functools.cache
def _num_params(name: str) -> int:
    # Built on the meta device: shapes only, no memory and no (slow) initialization.
    with torch.device("meta"):
        model = ARCHITECTURES[name].builder(10)
    return sum(p.numel() for p in model.parameters())


def list_architectures() -> list[ArchInfo]:
    return list(ARCHITECTURES.values())


def arch_info(name: str) -> ArchInfo:
    if name not in ARCHITECTURES:
        raise UserError(
            f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)} (doublewin models)"
        )
    return ARCHITECTURES[name]


def build_model(
    arch: str,
    num_classes: int,
    *,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> nn.Module:
    """A freshly initialized ``arch`` with ``num_classes`` outputs; input pixels in [0,1]."""
    if num_classes < 1:
        raise UserError(f"num_classes must be at least 1, got {num_classes}")
    model = arch_info(arch).builder(num_classes, mean=tuple(mean), std=tuple(std))
    model.arch = arch  # type: ignore[attr-defined]
    return model


def replace_head(model: nn.Module, num_classes: int, *, seed: int | None = None) -> nn.Module:
    """A new ``fc`` for ``num_classes`` (the downstream head); everything else unchanged."""
    old = model.fc
    generator_state = torch.random.get_rng_state()
    if seed is not None:
        torch.manual_seed(seed)
    try:
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    finally:
        if seed is not None:
            torch.random.set_rng_state(generator_state)
    model.fc = new.to(device=old.weight.device, dtype=old.weight.dtype)
    return model


def set_normalization(model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
    """Set the mean/std the model normalizes its [0,1] input with."""
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise UserError(f"normalization needs 3 means and 3 positive stds, got {mean}, {std}")
    model.mean.copy_(torch.tensor(mean).view(1, 3, 1, 1))
    model.std.copy_(torch.tensor(std).view(1, 3, 1, 1))


def get_normalization(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return (
        tuple(float(v) for v in model.mean.flatten()),
        tuple(float(v) for v in model.std.flatten()),
    )
