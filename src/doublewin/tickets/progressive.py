"""SuperTickets' progressive pruning: every prune interval one global magnitude threshold over
every covered weight (the classifier is never covered), at min(k × step, target) of them.

The authors' masked layers multiply the weights by their mask in the forward pass and keep the
pruned values; the next prune ranks every weight by that value, ignoring the previous mask, so a
pruned weight whose old value beats the new threshold comes back ("regrowth"). doublewin's
engine keeps pruned weights at zero instead, so their values at the time they were pruned are
kept aside (``SearchMasks.dormant``) and ranked again at the next prune. With ``regrowth:
false`` (the ablation) a prune only removes among the weights still kept.
"""

from __future__ import annotations

import torch
from torch import nn

from doublewin.core.specs import MaskScope
from doublewin.tickets.mask import Mask
from doublewin.tickets.pruning import magnitude_scores, prune_lowest, target_pruned_count
from doublewin.tickets.shrink import SearchMasks


def step_sparsity(k: int, step: float, target: float) -> float:
    """The sparsity of the ``k``-th prune (1-based): min(k × step, target) (the authors'
    ``(epoch + 1) // prune_interval / 10``, capped at the target)."""
    return min(round(k * step, 12), target)


@torch.no_grad()
def prune_globally(
    model: nn.Module,
    state: SearchMasks,
    sparsity: float,
    *,
    scope: MaskScope,
    regrowth: bool,
) -> int:
    """Prune ``model`` to ``sparsity`` of its covered weights by one global magnitude threshold,
    updating ``state`` in place; returns how many weights the last prune pruned are kept now
    (regrown).

    With ``regrowth`` every weight is ranked by its value (a pruned one by its dormant value),
    so exactly ``round(sparsity × covered)`` weights end pruned. Without (the ablation) only
    kept weights can go: where shrinking left the mask sparser than ``sparsity`` (it removed
    mostly kept weights) nothing is pruned and the mask stays sparser, as the authors'
    commented-out variant of their pruner would leave it.
    """
    params = dict(model.named_parameters())
    dense = Mask.dense(model, scope)
    old = Mask({n: state.mask.get(n, dense[n]).to(dense[n].device) for n in dense})
    values = {
        n: torch.where(old[n], params[n].detach(), _dormant(state, n, params[n])) for n in dense
    }
    wanted = target_pruned_count(dense.num_total, sparsity)
    base = dense if regrowth else old
    count = max(0, wanted - base.num_pruned)
    new = prune_lowest(magnitude_scores(values, base), base, count)
    last = {n: state.pruned.get(n, old[n]).to(old[n].device) for n in new}
    regrown = sum(int((new[n] & ~last[n]).sum()) for n in new)
    for n in dense:
        params[n].copy_(values[n] * new[n])
    state.mask = new
    state.pruned = {n: m.clone() for n, m in new.items()}
    state.dormant = {n: values[n].clone() for n in dense}
    return regrown


def _dormant(state: SearchMasks, name: str, param: torch.Tensor) -> torch.Tensor:
    stored = state.dormant.get(name)
    return param.detach() if stored is None else stored.to(param.device)
