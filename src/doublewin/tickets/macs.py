"""Multiply-accumulates of a model on one image, dense and with a mask's pruned weights skipped.

Counted by ``torch.utils.flop_counter`` (convolutions and matrix products; a MAC is half of its
FLOPs), per module, so any architecture is counted the same way. A pruned weight saves the MACs
it would have done: every weight of a convolution or a linear layer is used once per output
position, so a layer's MACs scale with the share of its weights kept.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@torch.no_grad()
def model_macs(
    model: nn.Module, size: int, mask: Mapping[str, torch.Tensor] | None = None
) -> tuple[int, int]:
    """(MACs, kept MACs) of one [1, 3, ``size``, ``size``] image through ``model`` (eval mode
    for the count; the model's mode is left as it was)."""
    was_training = model.training
    device = next(model.parameters()).device
    counter = FlopCounterMode(display=False)
    try:
        with counter:
            model.eval()(torch.rand(1, 3, size, size, device=device))
    finally:
        model.train(was_training)
    flops = counter.get_flop_counts()
    total = counter.get_total_flops() // 2
    saved = 0.0
    prefix = type(model).__name__
    for name, keep in (mask or {}).items():
        module = name.rpartition(".")[0]
        layer = sum(flops.get(f"{prefix}.{module}", {}).values()) / 2
        saved += layer * float((~keep.bool()).sum()) / keep.numel()
    return int(total), int(round(total - saved))
