"""BatchNorm re-estimation: running statistics that fit the network as it now computes.

A ticket m ⊙ θp computes a different function from θp, so the running means and variances
θp's BatchNorm layers carry describe activations the ticket never produces; evaluated without
retraining, a sparse ticket of any BN network then scores near chance whatever its quality.
``recalibrate_bn`` resets those statistics and re-estimates them as exact averages over a few
training batches, with no gradient step: only the BN buffers change, so tickets of different
methods can be compared before any training.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from doublewin.core.errors import UserError


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module, loader: Iterable, batches: int, *, device: torch.device | str = "cpu"
) -> int:
    """Re-estimate every BatchNorm layer's running statistics over ``batches`` batches of
    (x, y) from ``loader`` (a cumulative average, momentum None); returns the batches used.

    The model's parameters, its train/eval mode and each layer's momentum are left as found.
    A model without BatchNorm is returned untouched (0 batches)."""
    if batches < 1:
        raise UserError(f"recalibrate_bn: {batches} batches; use 1 or more (e.g. 20)")
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    was_training = model.training
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
    model.train()
    used = 0
    try:
        for x, _ in loader:
            model(x.to(device))
            used += 1
            if used == batches:
                break
    finally:
        for m, momentum in zip(layers, momenta, strict=True):
            m.momentum = momentum
        model.train(was_training)
    if used == 0:
        raise UserError("recalibrate_bn: the loader yielded no batch; use a dataset with images")
    return used
