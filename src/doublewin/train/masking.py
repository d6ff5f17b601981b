"""Keeping pruned weights at exactly zero during training — without forward hooks.

The pruned weights are zeroed once, their gradients are masked after every backward, and they
are zeroed again after every optimizer step, so neither momentum nor weight decay can revive
them. The forward pass is the plain dense model: no mask multiply per forward.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from doublewin.core.errors import UserError


class MaskEnforcer:
    """Enforces ``mask`` (parameter name → 0/1 tensor of the parameter's shape, bool or float;
    1 = kept) on ``model``. A mask naming an unknown parameter or with a wrong shape is a
    UserError."""

    def __init__(self, model: nn.Module, mask: Mapping[str, torch.Tensor] | None):
        params = dict(model.named_parameters())
        self.pairs: list[tuple[nn.Parameter, torch.Tensor]] = []
        for name, keep in (mask or {}).items():
            if name not in params:
                known = ", ".join(list(params)[:3])
                raise UserError(
                    f"mask names {name!r}, which the model does not have (it has "
                    f"{known}, …); use a ticket drawn for this architecture"
                )
            param = params[name]
            if tuple(keep.shape) != tuple(param.shape):
                raise UserError(
                    f"mask for {name} has shape {tuple(keep.shape)} but the "
                    f"parameter has {tuple(param.shape)}; use a ticket drawn for "
                    "this architecture"
                )
            keep = torch.as_tensor(keep).to(device=param.device)
            if keep.dtype != torch.bool:
                keep = keep != 0
            self.pairs.append((param, keep.to(param.dtype)))

    def __bool__(self) -> bool:
        return bool(self.pairs)

    @torch.no_grad()
    def zero_pruned(self) -> None:
        """Set every pruned weight to exactly zero (after each optimizer step, and once first)."""
        for param, keep in self.pairs:
            param.mul_(keep)

    @torch.no_grad()
    def mask_gradients(self) -> None:
        """Zero the gradients of pruned weights (after backward, before the optimizer step)."""
        for param, keep in self.pairs:
            if param.grad is not None:
                param.grad.mul_(keep)
