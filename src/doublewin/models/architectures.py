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
from doublewin.core.typed import by_name
from doublewin.models.base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Normalized,
    init_weights,
    residual_stage,
)
from doublewin.models.robust_archs import PreActResNet, WideResNet
from doublewin.models.robustbench import build_robustbench_model, find_entry, is_robustbench_name
from doublewin.models.supernets import registry_builder
from doublewin.models.zoo import build_zoo_model, input_size_of, is_zoo_name, parse_zoo_name


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
            stage = residual_stage(CifarBasicBlock, inplanes, planes, blocks_per_stage, stride)
            setattr(self, f"layer{index}", stage)
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        init_weights(self)

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
            width_per_group: int = 64,
            mean: Sequence[float] = IMAGENET_MEAN,
            std: Sequence[float] = IMAGENET_STD,
        ):
            super().__init__(
                getattr(tv, block), layers, num_classes=num_classes, width_per_group=width_per_group
            )
            self._init_normalization(mean, std)
            if cifar_stem:
                self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
                nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
                self.maxpool = nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(self.normalize(x))

    return TorchvisionResNet


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


def _torchvision(
    block: str, layers: list[int], cifar_stem: bool, **options: object
) -> Callable[..., nn.Module]:
    """``block``: torchvision's ``BasicBlock`` or ``Bottleneck``; ``options`` (e.g.
    ``width_per_group``) go to torchvision's ResNet."""

    def build(num_classes: int, **kw: object) -> nn.Module:
        return torchvision_resnet()(
            block, layers, num_classes, cifar_stem=cifar_stem, **options, **kw
        )

    return build


def _wide(depth: int, widen: int) -> Callable[..., nn.Module]:
    def build(num_classes: int, **kw: object) -> nn.Module:
        return WideResNet(depth, widen, num_classes, **kw)  # type: ignore[arg-type]

    return build


def _preact(layers: list[int]) -> Callable[..., nn.Module]:
    def build(num_classes: int, **kw: object) -> nn.Module:
        return PreActResNet(layers, num_classes, **kw)  # type: ignore[arg-type]

    return build


ARCHITECTURES: dict[str, ArchInfo] = by_name(
    ArchInfo(
        "resnet8",
        "cifar-resnet",
        16,
        "CIFAR ResNet-8 (He et al. 2016), 1 block per stage; the CPU-friendly embedded default",
        _cifar(1),
    ),
    ArchInfo(
        "resnet8x2",
        "cifar-resnet",
        16,
        "CIFAR ResNet-8 at twice the width (32/64/128 channels): more redundancy to prune",
        _cifar(1, width=32),
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
    ArchInfo(
        "wide_resnet50_2",
        "torchvision",
        224,
        "torchvision Wide ResNet-50-2 (the robust ImageNet models of Salman et al. 2020)",
        _torchvision("Bottleneck", [3, 4, 6, 3], False, width_per_group=128),
    ),
    ArchInfo(
        "wrn28_10",
        "robustbench",
        32,
        "WideResNet-28-10 with RobustBench's names (the robust CIFAR models of its zoo)",
        _wide(28, 10),
    ),
    ArchInfo(
        "wrn34_10",
        "robustbench",
        32,
        "WideResNet-34-10 with RobustBench's names (TRADES, MART and most Linf CIFAR entries)",
        _wide(34, 10),
    ),
    ArchInfo(
        "preact_resnet18",
        "robustbench",
        32,
        "PreAct ResNet-18 with RobustBench's names, a BatchNorm before the head and the "
        "shortcut on the activated input (fast AT's model, RobustBench's Rice2020Overfitting)",
        _preact([2, 2, 2, 2]),
    ),
    ArchInfo(
        "supernet8",
        "supernet",
        8,
        "SuperTickets supernet for 8 px: 4 inverted-residual cells, kernels {3, 5} in "
        "parallel paths (docs/models.md)",
        registry_builder("supernet8"),
    ),
    ArchInfo(
        "supernet_cifar",
        "supernet",
        32,
        "SuperTickets supernet for 32 px: 10 cells, kernels {3, 5, 7}, MobileNetV2 widths",
        registry_builder("supernet_cifar"),
    ),
    ArchInfo(
        "supernet_imagenet",
        "supernet",
        224,
        "SuperTickets supernet for 224 px: HR-NAS's stem, widths and head, kernels {3, 5, 7}",
        registry_builder("supernet_imagenet"),
    ),
)


@functools.cache
def _num_params(name: str) -> int:
    # Built on the meta device: shapes only, no memory and no (slow) initialization.
    with torch.device("meta"):
        model = ARCHITECTURES[name].builder(10)
    return sum(p.numel() for p in model.parameters())


def list_architectures() -> list[ArchInfo]:
    return list(ARCHITECTURES.values())


def arch_info(name: str) -> ArchInfo:
    if is_zoo_name(name):
        return ArchInfo(
            name,
            name.partition("/")[0],
            input_size_of(name),
            f"{name.partition('/')[0]}'s {parse_zoo_name(name)[1]}, randomly initialized",
            functools.partial(build_zoo_model, name),
        )
    if is_robustbench_name(name):
        entry = find_entry(name)
        return ArchInfo(
            name,
            "robustbench-zoo",
            entry.input_size,
            f"RobustBench {entry.dataset} {entry.threat} entry {entry.name} ({entry.architecture})",
            functools.partial(build_robustbench_model, name),
        )
    if name not in ARCHITECTURES:
        raise UserError(
            f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}, timm/<name>, "
            "torchvision/<name> or robustbench/<dataset>/<threat>/<Entry> (doublewin models)"
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


def set_normalization(model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
    """Set the mean/std the model normalizes its [0,1] input with."""
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise UserError(f"normalization needs 3 means and 3 positive stds, got {mean}, {std}")
    mean_name, std_name = _buffers(model)
    getattr(model, mean_name).copy_(torch.tensor(mean).view(1, 3, 1, 1))
    getattr(model, std_name).copy_(torch.tensor(std).view(1, 3, 1, 1))


def normalizes_inside(model: nn.Module) -> bool:
    """Whether ``model`` holds the mean/std buffers doublewin sets (its own, timm's and
    torchvision's models through zoo.normalized); a model of the caller's may not."""
    return all(hasattr(model, name) for name in _buffers(model))


def _buffers(model: nn.Module) -> tuple[str, str]:
    """The names of the buffers the model normalizes its input with (zoo.normalized)."""
    return getattr(model, "normalization_buffers", ("mean", "std"))


def normalize_inputs(
    model: nn.Module, mean: Sequence[float], std: Sequence[float]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Make ``model`` see images of per-channel ``mean``/``std`` (a downstream dataset's) as it
    saw its training images: for doublewin's, timm's and torchvision's models, normalize with
    them (the official recipe); for a model that normalizes inside with constants of its own
    (a RobustBench entry: ``source_statistics``), map them onto its training statistics
    ``(x - mean) / std * source_std + source_mean``, which that normalization then standardizes
    exactly as the recipe would. Returns the (mean, std) the model now normalizes with."""
    source = getattr(model, "source_statistics", None)
    if source is not None:
        source_mean, source_std = source
        std = [s / t for s, t in zip(std, source_std, strict=True)]
        mean = [m - u * k for m, u, k in zip(mean, source_mean, std, strict=True)]
    set_normalization(model, mean, std)
    return tuple(mean), tuple(std)


def get_normalization(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    mean_name, std_name = _buffers(model)
    return (
        tuple(float(v) for v in getattr(model, mean_name).flatten()),
        tuple(float(v) for v in getattr(model, std_name).flatten()),
    )
