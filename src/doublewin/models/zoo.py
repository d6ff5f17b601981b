"""Architectures of other zoos by name: ``timm/<name>`` (any timm model) and
``torchvision/<name>`` (any torchvision classification model), built without weights.

Options follow a colon, as ``key=value`` pairs separated by commas, and go to the zoo's
constructor: ``timm/vit_tiny_patch16_224:img_size=32,patch_size=4`` builds that ViT for 32 px
inputs with 4-pixel patches (the resolution is configurable where the model allows it). Values
are read as YAML scalars (``4`` a number, ``true`` a flag).

The model's own code is never changed: it takes pixels in [0, 1] because its class is swapped
for a subclass whose ``forward`` normalizes first (``mean``/``std`` non-persistent buffers), so
its state-dict keys stay exactly the zoo's and published weights load strictly. The head is
found generically (heads.py).
"""

from __future__ import annotations

import difflib
import functools
import warnings
from collections.abc import Sequence
from typing import Any

import torch
import yaml
from torch import nn

from doublewin.core.errors import UserError

ZOOS = ("timm", "torchvision")


def is_zoo_name(name: str) -> bool:
    return name.partition("/")[0] in ZOOS and "/" in name


def parse_zoo_name(name: str) -> tuple[str, str, dict[str, Any]]:
    """``timm/vit_tiny_patch16_224:img_size=32`` → (``timm``, ``vit_tiny_patch16_224``,
    {``img_size``: 32})."""
    zoo, _, rest = name.partition("/")
    model, _, options = rest.partition(":")
    kwargs: dict[str, Any] = {}
    for item in filter(None, options.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(
                f"--arch {name}: option {item!r} is not key=value; write e.g. "
                f"{zoo}/{model}:img_size=32"
            )
        kwargs[key.strip()] = yaml.safe_load(value)
    return zoo, model, kwargs


@functools.cache
def zoo_models(zoo: str) -> tuple[str, ...]:
    """Every classification model name the zoo can build."""
    if zoo == "timm":
        timm = _timm()
        return tuple(timm.list_models())
    # deferred: torchvision imports torch._dynamo (about 2 s); only its zoo needs it
    from torchvision import models

    return tuple(models.list_models(module=models))


def build_zoo_model(
    name: str, num_classes: int, *, mean: Sequence[float], std: Sequence[float]
) -> nn.Module:
    """``name``'s network with ``num_classes`` outputs, randomly initialized, normalizing its
    [0, 1] input with ``mean``/``std``."""
    zoo, model_name, kwargs = parse_zoo_name(name)
    known = zoo_models(zoo)
    if model_name not in known:
        close = difflib.get_close_matches(model_name, known, n=4, cutoff=0.6)
        hint = (
            f"close matches: {', '.join(f'{zoo}/{c}' for c in close)}"
            if close
            else (f"doublewin models --search {model_name[:6]} lists {zoo}'s models")
        )
        raise UserError(f"--arch {name}: {zoo} has no model {model_name!r}; {hint}")
    try:
        if zoo == "timm":
            net = _timm().create_model(
                model_name, pretrained=False, num_classes=num_classes, **kwargs
            )
        else:
            # deferred: see zoo_models
            from torchvision import models

            net = models.get_model(model_name, weights=None, num_classes=num_classes, **kwargs)
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
        raise UserError(
            f"--arch {name}: {zoo} cannot build it ({str(exc).splitlines()[0]})"
        ) from None
    return normalized(net, mean, std)


def input_size_of(name: str) -> int:
    """The side in pixels a zoo model is built for (its ``img_size`` option when given)."""
    zoo, model_name, kwargs = parse_zoo_name(name)
    if "img_size" in kwargs:
        size = kwargs["img_size"]
        return int(size[0] if isinstance(size, (list, tuple)) else size)
    if zoo == "timm":
        cfg = _timm().get_pretrained_cfg(model_name)
        if cfg is not None and getattr(cfg, "input_size", None):
            return int(cfg.input_size[-1])
    return 224


def normalized(
    net: nn.Module,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    names: tuple[str, str] = ("mean", "std"),
) -> nn.Module:
    """``net`` itself, its class swapped for a subclass that normalizes its input first with
    the non-persistent buffers ``names`` (other names where the network has its own ``mean``
    and ``std``, as DeepMind's WideResNets do)."""
    base = type(net)
    net.__class__ = _normalizing_class(base, names)
    net.register_buffer(
        names[0], torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False
    )
    net.register_buffer(
        names[1], torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False
    )
    net.normalization_buffers = names  # type: ignore[assignment]
    return net


@functools.cache
def _normalizing_class(base: type[nn.Module], names: tuple[str, str]) -> type[nn.Module]:
    def forward(self: nn.Module, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        mean, std = getattr(self, names[0]), getattr(self, names[1])
        x = (x - mean.to(x.dtype)) / std.to(x.dtype)
        return base.forward(self, x, *args, **kwargs)

    return type(f"Normalized{base.__name__}", (base,), {"forward": forward, "__module__": __name__})


def _timm():
    # timm is an optional extra; its import warns about torch APIs it uses: not the user's.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import timm  # deferred: optional extra (pip install doublewin[zoo]), timm/ names only
    except ImportError:
        raise UserError(
            "timm/ architectures need timm; pip install 'doublewin[zoo]' (or pip install timm)"
        ) from None
    return timm
