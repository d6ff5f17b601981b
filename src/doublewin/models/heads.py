"""The classifier head of any model, found generically, and its replacement.

In order: an explicit ``head`` (the module's dotted name, for anything else); timm's
``get_classifier()``; ``fc`` (ResNets, doublewin's and torchvision's); torchvision's
``classifier[-1]`` (VGG, MobileNet, EfficientNet, ConvNeXt) and ``heads.head`` (ViT); a
module named ``head``, ``classifier``, ``linear`` (PreAct ResNets) or ``logits`` (DeepMind's
WideResNets) that is a ``Linear``; the same inside a wrapper's ``model``. Transfer swaps it for a fresh
``Linear`` with the downstream classes; tickets never prune it.
"""

from __future__ import annotations

import torch
from torch import nn

from doublewin.core.errors import UserError


def head_name(model: nn.Module, head: str | None = None) -> str:
    """The dotted name of ``model``'s classifier head (a ``Linear``)."""
    modules = dict(model.named_modules())
    if head is not None:
        if not isinstance(modules.get(head), nn.Linear):
            raise UserError(
                f"head={head!r} is not a Linear module of the model; name its classifier, "
                f"e.g. one of {', '.join(_linear_names(model)[-3:]) or 'no Linear at all'}"
            )
        return head
    getter = getattr(model, "get_classifier", None)
    if callable(getter):
        found = getter()
        for name, module in modules.items():
            if module is found and isinstance(module, nn.Linear):
                return name
    for name in ("fc", "heads.head", "head", "classifier", "linear", "logits"):
        if isinstance(modules.get(name), nn.Linear):
            return name
    classifier = modules.get("classifier")
    if isinstance(classifier, nn.Sequential):
        linears = [n for n, m in classifier.named_children() if isinstance(m, nn.Linear)]
        if linears:
            return f"classifier.{linears[-1]}"
    inner = modules.get("model")
    if isinstance(inner, nn.Module) and inner is not model:
        # A wrapper around the network (RobustBench's ImageNet normalizer): its `model`'s head.
        try:
            return f"model.{head_name(inner)}"
        except UserError:
            pass
    raise UserError(
        f"the model's classifier head cannot be found ({type(model).__name__} has no fc, "
        "classifier or head Linear); pass head='<dotted name>' naming it, e.g. "
        f"{', '.join(_linear_names(model)[-2:]) or 'the final Linear'}"
    )


def head_module(model: nn.Module, head: str | None = None) -> nn.Linear:
    return dict(model.named_modules())[head_name(model, head)]  # type: ignore[return-value]


def replace_head(
    model: nn.Module, num_classes: int, *, seed: int | None = None, head: str | None = None
) -> nn.Module:
    """A new head for ``num_classes`` (the downstream head), initialized from ``seed``
    without disturbing the global random state; everything else unchanged."""
    name = head_name(model, head if head is not None else getattr(model, "head_name", None))
    old = dict(model.named_modules())[name]
    generator_state = torch.random.get_rng_state()
    if seed is not None:
        torch.manual_seed(seed)
    try:
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    finally:
        if seed is not None:
            torch.random.set_rng_state(generator_state)
    parent_name, _, attr = name.rpartition(".")
    parent = dict(model.named_modules())[parent_name] if parent_name else model
    setattr(parent, attr, new.to(device=old.weight.device, dtype=old.weight.dtype))
    return model


def _linear_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
