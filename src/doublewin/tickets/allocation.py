"""How many weights each layer keeps: the per-layer allocations of a global budget.

``apportion`` is the one place that turns real per-layer shares into whole counts that add up
to the budget exactly: a common factor scales the shares (each clamped between its layer's
floor and its size) until they sum to the budget, then the fractions left over are given out
by largest remainder. Every allocation below goes through it:

- ``uniform``: every layer keeps the same fraction (HYDRA's top-k within each layer; the
  layer-wise magnitude baseline);
- ``erk``: Erdős–Rényi-Kernel (Evci et al. 2020), a layer's density ∝ (sum of its dimensions)
  ÷ (product of its dimensions), layers that would exceed 1 kept dense;
- ``lamp``: the layer densities that global pruning by LAMP scores (Lee et al. 2021) leaves,
  a weight's score being w² over the sum of w'² of the weights of its layer at least as large.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from doublewin.core.errors import UserError
from doublewin.tickets.mask import Mask

_BISECTION_STEPS = 200


def apportion(
    shares: Sequence[float], low: Sequence[int], high: Sequence[int], total: int
) -> list[int]:
    """Whole counts c with low ≤ c ≤ high, Σc = ``total``, as close to f·shares as whole
    numbers allow for the one factor f that makes the clamped shares add up to ``total``."""
    if not sum(low) <= total <= sum(high):
        raise UserError(
            f"cannot keep {total:,} units in layers that hold {sum(low):,} to {sum(high):,}; "
            "ask for a sparsity the layers can hold"
        )

    def clamped(f: float) -> list[float]:
        return [min(max(f * s, lo), hi) for s, lo, hi in zip(shares, low, high, strict=True)]

    lo_f, hi_f = 0.0, 1.0
    while sum(clamped(hi_f)) < total and hi_f < 1e300:
        hi_f *= 2.0
    for _ in range(_BISECTION_STEPS):
        mid = (lo_f + hi_f) / 2
        if sum(clamped(mid)) < total:
            lo_f = mid
        else:
            hi_f = mid
    target = clamped(hi_f)
    counts = [
        min(max(math.floor(t + 1e-9), lo), hi) for t, lo, hi in zip(target, low, high, strict=True)
    ]
    left = total - sum(counts)
    # Largest remainders first (ties by position): the counts closest to their share.
    order = sorted(range(len(counts)), key=lambda i: (counts[i] - target[i], i))
    step = 1 if left > 0 else -1
    while left != 0:
        moved = False
        for i in order if step > 0 else reversed(order):
            if left == 0:
                break
            if low[i] <= counts[i] + step <= high[i]:
                counts[i] += step
                left -= step
                moved = True
        if not moved:
            break
    return counts


def kept_total(mask: Mask, sparsity: float) -> int:
    """The weights a ticket of ``sparsity`` keeps: all but ``round(sparsity × total)``."""
    return mask.num_total - round(sparsity * mask.num_total)


def uniform_counts(mask: Mask, sparsity: float) -> dict[str, int]:
    """Each layer keeps the same fraction, to the whole weight (at least one per layer)."""
    sizes = [m.numel() for m in mask.values()]
    counts = apportion(sizes, [1] * len(sizes), sizes, kept_total(mask, sparsity))
    return dict(zip(mask, counts, strict=True))


def erk_counts(mask: Mask, sparsity: float) -> dict[str, int]:
    """Erdős–Rényi-Kernel: density ∝ Σ dims ÷ Π dims, capped at dense."""
    sizes, shares = [], []
    for m in mask.values():
        dims = list(m.shape)
        sizes.append(m.numel())
        shares.append(m.numel() * sum(dims) / math.prod(dims))
    counts = apportion(shares, [1] * len(sizes), sizes, kept_total(mask, sparsity))
    return dict(zip(mask, counts, strict=True))


def lamp_counts(weights: Mapping[str, torch.Tensor], mask: Mask, sparsity: float) -> dict[str, int]:
    """The per-layer counts global pruning by LAMP scores keeps (at least one per layer)."""
    scores = {n: lamp_scores(weights[n]) for n in mask}
    flat = torch.cat([s.reshape(-1) for s in scores.values()])
    keep = kept_total(mask, sparsity)
    threshold = torch.topk(flat, keep).values[-1] if keep else math.inf
    kept = [int((s >= threshold).sum()) for s in scores.values()]
    sizes = [m.numel() for m in mask.values()]
    counts = apportion(kept, [1] * len(sizes), sizes, keep)
    return dict(zip(mask, counts, strict=True))


def lamp_scores(weight: torch.Tensor) -> torch.Tensor:
    """LAMP: w_u² ÷ Σ_{v ≥ u} w_v², the weights of the layer sorted by magnitude."""
    squares = weight.detach().double().reshape(-1) ** 2
    order = torch.argsort(squares, stable=True)
    ordered = squares[order]
    suffix = torch.flip(torch.cumsum(torch.flip(ordered, [0]), 0), [0])
    out = torch.empty_like(squares)
    out[order] = ordered / suffix.clamp_min(torch.finfo(torch.float64).tiny)
    return out.reshape(weight.shape)


def strategy_counts(
    name: str, weights: Mapping[str, torch.Tensor], mask: Mask, sparsity: float
) -> dict[str, int]:
    """The per-layer kept counts of a layer-wise strategy: uniform, erk or lamp."""
    if name == "uniform":
        return uniform_counts(mask, sparsity)
    if name == "erk":
        return erk_counts(mask, sparsity)
    return lamp_counts(weights, mask, sparsity)
