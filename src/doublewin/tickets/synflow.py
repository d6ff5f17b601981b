"""SynFlow (Tanaka et al. 2020): data-free iterative pruning that avoids layer collapse.

Every parameter is replaced by its absolute value, the input is all ones, R is the sum of the
outputs and a weight's score is |∂R/∂θ ⊙ θ| (its share of the "synaptic flow" through the
network). Pruning to the target density d happens over ``iterations`` rounds with the
exponential schedule d^(i/n), re-scoring the masked network each round. Because the scores of
the weights of one layer sum to the same total flow whatever the layer's scale, a layer with
small weights is not emptied the way global magnitude pruning empties it.

Pre-trained BatchNorm breaks SynFlow's premise of a positive, bias-free linear network: in
train mode the batch statistics of a constant input subtract the signal itself, and in eval
mode the running mean and β add shifts that are not paths through weights. ``bn`` decides:

* ``fold`` (default): eval mode with the shift removed and the gain kept, i.e. BN becomes the
  per-channel scaling |γ| / √(σ² + ε) of the pre-trained statistics. The flow then matches
  the scale at which θp actually computes, which is what the scores are meant to rank.
* ``identity``: BN passes its input through; scores depend on the weights alone.

Scoring runs on a float64 copy of the model (the products of |θ| over 50 layers overflow or
underflow float32); the caller's model is never modified.
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
from torch import nn

from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.tickets.mask import Mask
from doublewin.tickets.pruning import prune_to_sparsity

BatchNormHandling = Literal["fold", "identity"]


@torch.no_grad()
def linearise(model: nn.Module, bn: BatchNormHandling = "fold") -> nn.Module:
    """Make ``model`` (in place) the positive linear network SynFlow scores: |θ| for every
    parameter, BatchNorm per ``bn``, eval mode. Returns the model."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            if module.running_mean is None or module.running_var is None or bn == "identity":
                # No statistics (or asked to ignore them): a pure pass-through.
                module.track_running_stats = True
                module.running_mean = torch.zeros(
                    module.num_features, dtype=torch.float64, device=_device_of(module)
                )
                module.running_var = torch.full_like(module.running_mean, 1.0 - module.eps)
                if module.affine:
                    module.weight.fill_(1.0)
            else:
                module.running_mean.zero_()
            if module.affine:
                module.bias.zero_()
    for p in model.parameters():
        p.abs_()
    return model.eval()


def synflow_mask(
    model: nn.Module,
    mask: Mask,
    sparsity: float,
    *,
    input_shape: tuple[int, ...],
    iterations: int = 100,
    bn: BatchNormHandling = "fold",
    device: torch.device | str = "cpu",
    progress: Progress = NULL_PROGRESS,
) -> Mask:
    """Prune ``mask`` (usually dense) to exactly ``sparsity`` with SynFlow.

    ``input_shape`` is one image's (channels, height, width); ``iterations`` is the number of
    score-and-prune rounds (100 in the paper). Returns a new mask.
    """
    net = linearise(copy.deepcopy(model).to(device=device, dtype=torch.float64), bn)
    params = dict(net.named_parameters())
    for p in net.parameters():
        p.requires_grad_(True)
    magnitudes = {n: params[n].detach().clone() for n in mask}
    current = mask.to(device)
    x = torch.ones((1, *input_shape), dtype=torch.float64, device=device)
    density = 1.0 - sparsity
    task = progress.task(f"synflow {100 * sparsity:.2f}%", iterations)
    for i in range(1, iterations + 1):
        with torch.no_grad():
            for n in mask:
                params[n].copy_(magnitudes[n] * current[n])
        net.zero_grad(set_to_none=True)
        flow = net(x).sum()
        flow.backward()
        scores = {n: (params[n].grad * params[n]).detach().abs() for n in mask}
        step_sparsity = sparsity if i == iterations else 1.0 - density ** (i / iterations)
        current = prune_to_sparsity(scores, current, step_sparsity)
        task.advance(1)
    task.close()
    return Mask({n: m.cpu() for n, m in current.items()})


def _device_of(module: nn.Module) -> torch.device:
    for t in list(module.parameters()) + list(module.buffers()):
        return t.device
    return torch.device("cpu")
