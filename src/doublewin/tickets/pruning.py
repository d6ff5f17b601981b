"""Global pruning by scores: the one place that turns scores into a mask.

Scores are a mapping parameter name → tensor of the parameter's shape (higher = more
important). Pruning is global across every tensor of the mask and only ever considers weights
that are still kept, exactly as ``torch.nn.utils.prune.global_unstructured`` with
``L1Unstructured`` does: the kept scores are concatenated in mask order, the ``k`` lowest are
found with ``torch.topk(largest=False)`` (so ties break the same way) and ``k`` is
``round(amount × remaining)`` with Python's rounding.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from doublewin.core.errors import RunFailure, UserError
from doublewin.tickets.mask import Mask


def target_pruned_count(total: int, sparsity: float) -> int:
    """How many of ``total`` weights a ticket at ``sparsity`` prunes: ``round(sparsity × total)``."""
    return round(sparsity * total)


def prune_lowest(
    scores: Mapping[str, torch.Tensor],
    mask: Mask,
    count: int,
    *,
    ties: torch.Generator | None = None,
) -> Mask:
    """A new mask with the ``count`` lowest-scoring *kept* weights also pruned (global).

    ``scores`` must cover every tensor of ``mask`` with the same shapes; pruned weights keep
    their state whatever their score. Ties at the cut break as torch.topk breaks them (by
    position) unless ``ties`` is given: then they are spread over the tensors (see
    ``_lowest_spread``), so no tensor is emptied unless the target demands it.
    """
    if count < 0:
        raise ValueError(f"cannot prune a negative number of weights ({count})")
    names = list(mask)
    missing = [n for n in names if n not in scores]
    if missing:
        raise ValueError(f"no scores for {missing[0]}")
    if count == 0:
        return mask.clone()
    device = scores[names[0]].device
    flat_scores = torch.cat([scores[n].detach().reshape(-1).to(device) for n in names])
    flat_mask = torch.cat([mask[n].reshape(-1).to(device) for n in names])
    kept_positions = flat_mask.nonzero().squeeze(1)
    if count > kept_positions.numel():
        raise UserError(f"cannot prune {count} weights: only {kept_positions.numel()} are left")
    candidates = flat_scores[kept_positions]
    if torch.isnan(candidates).any():
        raise RunFailure("pruning scores contain NaN; the model or the scoring data diverged")
    if ties is None:
        chosen = _lowest(candidates, count)
    else:
        tensor_of = torch.cat(
            [torch.full((mask[n].numel(),), i, device=device) for i, n in enumerate(names)]
        )[kept_positions]
        chosen = _lowest_spread(candidates, count, tensor_of, ties)
    new_flat = flat_mask.clone()
    new_flat[kept_positions[chosen]] = False
    out, pointer = Mask(), 0
    for n in names:
        size = mask[n].numel()
        out[n] = new_flat[pointer : pointer + size].reshape(mask[n].shape).to(mask[n].device)
        pointer += size
    return out


def _lowest(values: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the ``count`` lowest values, the same set torch.topk(largest=False) picks.

    When no tie straddles the cut, the set is unique and the k-th value finds it several times
    faster than topk; otherwise topk itself breaks the ties (as torch's pruning does).
    """
    if count == values.numel():
        return torch.arange(count, device=values.device)
    kth = torch.kthvalue(values, count).values
    at_or_below = values <= kth
    if int(at_or_below.sum()) == count:
        return at_or_below.nonzero().squeeze(1)
    return torch.topk(values, k=count, largest=False).indices


def _lowest_spread(
    values: torch.Tensor, count: int, tensor_of: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Indices of ``count`` lowest values; values tied at the cut are taken in order of the
    share of their tensor's survivors they remove, smallest first (random order within a
    tensor, from ``generator``). A tensor's last survivor has share 1, so it goes only when
    every other tied weight must go too."""
    if count == values.numel():
        return torch.arange(count, device=values.device)
    kth = torch.kthvalue(values, count).values
    below = (values < kth).nonzero().squeeze(1)
    tied = (values == kth).nonzero().squeeze(1)
    need = count - below.numel()
    if need == tied.numel():
        return torch.cat([below, tied])
    # Every tied weight is ≥ kth, so each tensor holding one has its count here.
    survivors = torch.bincount(tensor_of[values >= kth])
    order = torch.randperm(tied.numel(), generator=generator).to(tied.device)
    tied = tied[order]
    share = torch.empty(tied.numel(), dtype=torch.float64, device=tied.device)
    for t in tensor_of[tied].unique():
        members = (tensor_of[tied] == t).nonzero().squeeze(1)
        rank = torch.arange(1, members.numel() + 1, dtype=torch.float64, device=tied.device)
        share[members] = rank / float(survivors[t])
    # Stable sort keeps the random order among equal shares.
    picked = tied[torch.sort(share, stable=True).indices[:need]]
    return torch.cat([below, picked])


def prune_fraction_of_remaining(
    scores: Mapping[str, torch.Tensor], mask: Mask, amount: float
) -> Mask:
    """One pruning round: remove ``amount`` (a fraction in [0, 1]) of the still-kept weights."""
    if not 0.0 <= amount <= 1.0:
        raise UserError(f"prune amount {amount:g} is outside [0, 1]; use e.g. 0.2")
    return prune_lowest(scores, mask, round(amount * mask.num_kept))


def prune_to_sparsity(
    scores: Mapping[str, torch.Tensor],
    mask: Mask,
    sparsity: float,
    *,
    ties: torch.Generator | None = None,
) -> Mask:
    """Prune the lowest-scoring kept weights until exactly ``target_pruned_count`` are pruned
    (``ties``: see ``prune_lowest``)."""
    if not 0.0 <= sparsity < 1.0:
        raise UserError(f"sparsity {sparsity:g} is outside [0, 1); use e.g. 0.8")
    count = target_pruned_count(mask.num_total, sparsity) - mask.num_pruned
    if count < 0:
        raise UserError(
            f"the mask is already sparser ({mask.sparsity:.4f}) than the target "
            f"{sparsity:.4f}; ask for a higher sparsity"
        )
    return prune_lowest(scores, mask, count, ties=ties)


def magnitude_scores(weights: Mapping[str, torch.Tensor], mask: Mask) -> dict[str, torch.Tensor]:
    """|w| for every masked tensor (L1 magnitude, what L1Unstructured ranks by)."""
    return {n: weights[n].detach().abs() for n in mask}
