"""Channel tickets at a budget in channels, parameters or FLOPs, and the allocations that meet it.

**The cost model.** Removing channels shrinks every tensor that holds them: a convolution's
filters (its output dimension), the BatchNorm entries, and the input slices of the layers that
read them. So each parameter tensor has a kept size (f₀ + Σ w_g)·(f₁ + Σ w_g')·rest, where
w_g is the kept width of a channel group that lies along its first (output) or second (input)
dimension and f the part of that dimension no group covers; ``params`` sums it over every
parameter of the network (head and BatchNorm included: what the export keeps), ``flops`` sums
2·out·in·kernel area·output positions over the convolutions and linear layers (what
``torch.utils.flop_counter`` counts for the export, one image), ``channels`` sums the widths.
The same formula takes a tensor of widths, so HARP's penalty is differentiable in its rates.

**The allocations** (``channel_ratio``), each keeping the cost at or under the budget:

- ``global``: blocks of channels (one channel, or ``channel_round`` of them) ranked across the
  groups by score over their group's mean score (torch-pruning's "mean" normalizer), the lowest
  removed until the cost is within the budget; then pruned blocks are given back, best first,
  while they still fit, so no block left out could be kept within the budget;
- ``layer``: the largest kept fraction common to every group that fits (each group at the
  widest block boundary under it), then blocks given back as for ``global``.

Every group keeps at least one block. ``channel_round`` keeps widths multiples of it (the
first block of a group holds the remainder), which convolution kernels run faster.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from doublewin.core.errors import UserError
from doublewin.tickets.channels import ChannelGroup

UNITS = ("channels", "params", "flops")


@dataclass(frozen=True)
class ChannelCost:
    """The cost of a network as a function of its groups' widths, in one ``unit``:
    Σ_t factor_t · (fixed0_t + A0_t·w) · (fixed1_t + A1_t·w)."""

    unit: str
    sizes: tuple[int, ...]
    factor: np.ndarray
    fixed: tuple[np.ndarray, np.ndarray]
    incidence: tuple[np.ndarray, np.ndarray]

    @property
    def dense(self) -> float:
        return float(self.cost(self.sizes))

    def cost(self, widths):
        """The cost at ``widths`` (a sequence of numbers, or a tensor: then differentiable)."""
        if isinstance(widths, torch.Tensor):
            w = widths.to(torch.float64)
            a0, a1 = (torch.as_tensor(a, device=w.device) for a in self.incidence)
            f0, f1 = (torch.as_tensor(f, device=w.device) for f in self.fixed)
            factor = torch.as_tensor(self.factor, device=w.device)
            return (factor * (f0 + a0 @ w) * (f1 + a1 @ w)).sum()
        w = np.asarray(widths, dtype=np.float64)
        return float(
            (
                self.factor
                * (self.fixed[0] + self.incidence[0] @ w)
                * (self.fixed[1] + self.incidence[1] @ w)
            ).sum()
        )

    def budget(self, sparsity: float) -> float:
        """The most a ticket of ``sparsity`` (a fraction of the unit, removed) may keep."""
        return (1.0 - sparsity) * self.dense


def channel_cost(
    model: nn.Module, groups: Sequence[ChannelGroup], input_size: int, unit: str
) -> ChannelCost:
    """The cost model of ``model`` whose channels ``groups`` couple, traced at ``input_size``."""
    sizes = tuple(g.size for g in groups)
    if unit == "channels":
        eye = np.eye(len(groups))
        return ChannelCost(
            unit,
            sizes,
            np.ones(len(groups)),
            (np.zeros(len(groups)), np.ones(len(groups))),
            (eye, np.zeros_like(eye)),
        )
    along: dict[tuple[str, int], list[int]] = {}
    for index, g in enumerate(groups):
        for name, _ in (*g.filters, *g.norms):
            along.setdefault((name, 0), []).append(index)
        for name, _ in g.reads:
            along.setdefault((name, 1), []).append(index)
    positions = _output_positions(model, input_size) if unit == "flops" else {}
    rows = []
    for name, p in model.named_parameters():
        module = name.rsplit(".", 1)[0]
        if unit == "flops" and (module not in positions or not name.endswith("weight")):
            continue
        shape = list(p.shape)
        dims = [shape[0], shape[1] if len(shape) > 1 else 1]
        rest = math.prod(shape[2:]) if len(shape) > 2 else 1
        factor = float(rest) * (2.0 * positions[module] if unit == "flops" else 1.0)
        tied = [along.get((name, d), []) for d in (0, 1)]
        fixed = [dims[d] - sum(sizes[i] for i in tied[d]) for d in (0, 1)]
        rows.append((factor, fixed, tied))
    n, t = len(groups), len(rows)
    a0, a1 = np.zeros((t, n)), np.zeros((t, n))
    for r, (_, _, tied) in enumerate(rows):
        a0[r, tied[0]] = 1.0
        a1[r, tied[1]] = 1.0
    return ChannelCost(
        unit,
        sizes,
        np.array([r[0] for r in rows]),
        (np.array([r[1][0] for r in rows], float), np.array([r[1][1] for r in rows], float)),
        (a0, a1),
    )


def _output_positions(model: nn.Module, input_size: int) -> dict[str, int]:
    """Output positions (H × W; 1 for a linear layer) of every convolution and linear layer."""
    out: dict[str, int] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):

            def hook(_m, _i, output, name=name):
                out[name] = math.prod(output.shape[2:]) if output.dim() > 2 else 1

            hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, input_size, input_size, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return out


def blocks_of(order: Sequence[int], size: int, round_to: int) -> list[list[int]]:
    """A group's channels in removal order cut into blocks: the first holds the remainder so
    that every width left is a multiple of ``round_to``; the last block is never removed."""
    first = size % round_to
    cuts = ([first] if first else []) + [round_to] * ((size - first) // round_to)
    out, start = [], 0
    for length in cuts:
        out.append(list(order[start : start + length]))
        start += length
    return out


@dataclass
class Plan:
    """One group's removal plan: the channels already pruned and the removable blocks, each
    with its score (mean over its channels, over the group's mean), lowest first in order."""

    taken: set[int]
    blocks: list[tuple[float, list[int]]]


def allocate(
    cost: ChannelCost,
    groups: Sequence[ChannelGroup],
    scores: Mapping[str, torch.Tensor],
    already: Mapping[str, set[int]],
    sparsity: float,
    *,
    ratio: str = "global",
    round_to: int = 1,
) -> dict[str, set[int]]:
    """The pruned positions per group that bring the cost within the budget of ``sparsity``,
    keeping those ``already`` pruned pruned."""
    limit = cost.budget(sparsity)
    plans = [plan_of(g, scores[g.name], already.get(g.name, set()), round_to) for g in groups]
    floor = [
        g.size - len(p.taken.union(*(b for _, b in p.blocks)))
        for g, p in zip(groups, plans, strict=True)
    ]
    if cost.cost(floor) > limit:
        raise UserError(
            f"a channel ticket at {sparsity:.4f} of the {cost.unit} cannot be drawn: every "
            "group kept at its last block still costs more; ask for a lower sparsity"
        )
    if ratio == "layer":
        return _uniform(cost, groups, plans, limit)
    pruned = [set(p.taken) for p in plans]
    widths = [g.size - len(d) for g, d in zip(groups, pruned, strict=True)]
    queue = sorted(
        (score, i, j) for i, p in enumerate(plans) for j, (score, _) in enumerate(p.blocks)
    )
    removed: list[tuple[int, int]] = []
    for _, i, j in queue:
        if cost.cost(widths) <= limit:
            break
        new = set(plans[i].blocks[j][1]) - pruned[i]
        pruned[i] |= new
        widths[i] -= len(new)
        removed.append((i, j))
    give_back(cost, plans, pruned, widths, removed, limit)
    return {g.name: d for g, d in zip(groups, pruned, strict=True)}


def give_back(
    cost: ChannelCost,
    plans: list[Plan],
    pruned: list[set[int]],
    widths: list[int],
    removed: list[tuple[int, int]],
    limit: float,
) -> None:
    """Give removed blocks (group i, block j) back, highest score first, while the cost stays
    within ``limit`` (``pruned`` and ``widths`` change in place)."""
    for i, j in sorted(removed, key=lambda ij: (-plans[ij[0]].blocks[ij[1]][0], ij)):
        block = set(plans[i].blocks[j][1]) - plans[i].taken
        trial = list(widths)
        trial[i] += len(block)
        if cost.cost(trial) <= limit:
            pruned[i] -= block
            widths[i] = trial[i]


def plan_of(group: ChannelGroup, score: torch.Tensor, taken: set[int], round_to: int) -> Plan:
    s = score.double()
    order = torch.argsort(s, stable=True).tolist()
    mean = float(s.mean()) or 1.0
    blocks = blocks_of(order, group.size, round_to)[:-1]
    kept = [(float(s[b].mean()) / mean, b) for b in blocks if not set(b) <= taken]
    return Plan(set(taken), kept)


def _uniform(cost: ChannelCost, groups, plans: list[Plan], limit: float) -> dict[str, set[int]]:
    """The largest common kept fraction q that fits, each group at the widest block boundary
    at or under q of its size (exact: q is a ratio of whole numbers), then blocks given back
    best first while they fit."""

    def at(num: int, den: int) -> tuple[list[set[int]], list[tuple[int, int]]]:
        drops, removed = [], []
        for i, (g, plan) in enumerate(zip(groups, plans, strict=True)):
            drop = set(plan.taken)
            for j, (_, block) in enumerate(plan.blocks):
                if (g.size - len(drop)) * den <= num * g.size:
                    break
                drop |= set(block)
                removed.append((i, j))
            drops.append(drop)
        return drops, removed

    def fits(q: tuple[int, int]) -> bool:
        drops, _ = at(*q)
        return cost.cost([g.size - len(d) for g, d in zip(groups, drops, strict=True)]) <= limit

    # Every width a group can stop at, as a fraction of its size: fits is monotone along them.
    candidates = sorted(
        {
            (g.size - sum(len(b) for _, b in plan.blocks[:k]), g.size)
            for g, plan in zip(groups, plans, strict=True)
            for k in range(len(plan.blocks) + 1)
        },
        key=lambda q: q[0] / q[1],
    )
    low, high = 0, len(candidates) - 1
    while low < high:  # the last candidate that fits
        mid = (low + high + 1) // 2
        if fits(candidates[mid]):
            low = mid
        else:
            high = mid - 1
    drops, removed = at(*candidates[low])
    widths = [g.size - len(d) for g, d in zip(groups, drops, strict=True)]
    give_back(cost, plans, drops, widths, removed, limit)
    return {g.name: d for g, d in zip(groups, drops, strict=True)}
