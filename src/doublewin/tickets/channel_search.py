"""HARP's channel tickets: one score per channel of each coupled group, and a learned keep rate
per group, trained under the budget in the channel pattern's unit (FLOPs by default, the
authors').

A group's mask multiplies its channel in every filter of the group and in the BatchNorm weight
and bias, so a pruned channel's activation is zero during the search as in the ticket (the
authors multiply the convolution's weight alone). Scores start at √(6/fan_in)·c/max c, c the
channels' filter norms (``channel_score``), the authors' scaled start; rates start at the
uniform allocation that meets the budget. At the end the learned widths are scaled by one
factor to the largest cost within the budget, then blocks are given back best first while
they fit (channel_budget.py), and each group keeps its top-|score| channels.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.core.ticket_parts import HarpSpec
from doublewin.tickets.channel_budget import ChannelCost, allocate, give_back, plan_of
from doublewin.tickets.channels import ChannelGroup, channel_mask, channel_scores
from doublewin.tickets.harp import initial_logits, rate_floor
from doublewin.tickets.hydra import SearchResult
from doublewin.tickets.mask import Mask
from doublewin.tickets.score_masks import ScoredModel, Units, fan_in, scaled_scores, top_count
from doublewin.tickets.score_search import SearchRun, run_search, search_passes


class ChannelUnits(Units):
    """One unit per channel group; its mask multiplies the group's filters and BatchNorm
    entries."""

    def __init__(self, groups: Sequence[ChannelGroup], scope_mask: Mask):
        super().__init__([g.name for g in groups], [(g.size,) for g in groups])
        self.groups = list(groups)
        self.scope_mask = scope_mask

    def masked(
        self, params: Mapping[str, torch.Tensor], masks: list[torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for group, m in zip(self.groups, masks, strict=True):
            for name, indices in (*group.filters, *group.norms):
                value = out.get(name, params[name])
                index = torch.tensor(indices, device=value.device)
                ones = torch.ones(value.shape[0], device=value.device, dtype=value.dtype)
                scale = ones.index_copy(0, index, m.to(value.dtype))
                out[name] = value * scale.view(-1, *([1] * (value.dim() - 1)))
        return out

    def ticket(self, keeps: list[torch.Tensor], params: Mapping[str, torch.Tensor]) -> Mask:
        pruned = {
            g.name: set((~k).nonzero().flatten().tolist())
            for g, k in zip(self.groups, keeps, strict=True)
        }
        cpu = {n: p.detach().cpu() for n, p in params.items()}
        return channel_mask(self.scope_mask, self.groups, pruned, cpu)


class ChannelBudget:
    """HARP's budget in the channel pattern's unit: kept cost over the dense cost."""

    def __init__(self, cost: ChannelCost, sparsity: float, device: torch.device):
        self.cost = cost
        self.sizes = torch.tensor(cost.sizes, dtype=torch.float64, device=device)
        self.target = cost.budget(sparsity) / cost.dense

    def kept(self, rates: torch.Tensor) -> torch.Tensor:
        return self.cost.cost(rates * self.sizes) / self.cost.dense


def harp_channel_mask(
    model: nn.Module,
    scope_mask: Mask,
    groups: Sequence[ChannelGroup],
    cost: ChannelCost,
    sparsity: float,
    train_loader: Iterable,
    *,
    spec: HarpSpec,
    channel_score: str = "l1",
    round_to: int = 1,
    device: torch.device,
    seed: int = 0,
    checkpoint: Path | None = None,
    progress: Progress = NULL_PROGRESS,
) -> SearchResult:
    """HARP's channel mask whose cost is within the budget of ``sparsity`` (of ``cost.unit``)."""
    net = copy.deepcopy(model).to(device)
    params = dict(net.named_parameters())
    norms = channel_scores(groups, params, channel_score)
    scores = []
    for g in groups:
        first = params[g.filters[0][0]]
        scores.append(scaled_scores(norms[g.name], fan_in(first)).to(device))
    start = allocate(cost, groups, norms, {}, sparsity, ratio="layer", round_to=round_to)
    budget = ChannelBudget(cost, sparsity, device)
    floor = rate_floor(spec, budget.target)
    rates = [(g.size - len(start[g.name])) / g.size for g in groups]
    units = ChannelUnits(groups, scope_mask)
    wrapped = ScoredModel(
        net,
        units,
        scores,
        rate_logits=initial_logits(rates, floor).to(device),
        floor=floor,
        train_bn=spec.train_bn,
    )
    run = SearchRun(train_loader, seed, device, checkpoint, progress)
    facts = {
        "method": "harp",
        "pattern": "channel",
        "unit": cost.unit,
        "sparsity": sparsity,
        "sizes": list(cost.sizes),
        "round_to": round_to,
    }
    state = run_search(wrapped, run, spec, facts, budget)
    learned = wrapped.rates().detach().cpu().tolist()
    magnitudes = {
        g.name: s.detach().abs().cpu() for g, s in zip(groups, wrapped.scores, strict=True)
    }
    widths = fit_widths(cost, groups, magnitudes, learned, sparsity, round_to)
    keeps = [top_count(magnitudes[g.name], w) for g, w in zip(groups, widths, strict=True)]
    return SearchResult(
        mask=units.ticket(keeps, params),
        epochs=state.epoch,
        steps=state.step,
        passes=search_passes(spec, state.step),
        final_loss=state.last_loss,
        history=tuple(state.history),
        learned_rates=dict(zip(units.names, learned, strict=True)),
        ticket_rates={g.name: w / g.size for g, w in zip(groups, widths, strict=True)},
    )


def fit_widths(
    cost: ChannelCost,
    groups: Sequence[ChannelGroup],
    scores: Mapping[str, torch.Tensor],
    rates: Sequence[float],
    sparsity: float,
    round_to: int = 1,
) -> list[int]:
    """Widths in the proportions of ``rates``, scaled by one factor to the largest cost within
    the budget of ``sparsity``, then blocks given back best first while they fit."""
    limit = cost.budget(sparsity)
    plans = [plan_of(g, scores[g.name], set(), round_to) for g in groups]
    steps = [[len(b) for _, b in p.blocks] for p in plans]

    def widths_at(f: float) -> list[int]:
        out = []
        for g, r, sizes in zip(groups, rates, steps, strict=True):
            width = g.size
            for length in sizes:  # remove blocks while the width exceeds f·r·size
                if width <= f * r * g.size + 1e-9:
                    break
                width -= length
            out.append(width)
        return out

    low, high = 0.0, 1.0 / max(min(rates), 1e-9)
    for _ in range(80):
        mid = (low + high) / 2
        if cost.cost(widths_at(mid)) <= limit:
            low = mid
        else:
            high = mid
    widths = widths_at(low)
    pruned: list[set[int]] = []
    removed: list[tuple[int, int]] = []
    for i, (g, plan, width) in enumerate(zip(groups, plans, widths, strict=True)):
        gone: set[int] = set()
        for j, (_, block) in enumerate(plan.blocks):
            if g.size - len(gone) <= width:
                break
            gone |= set(block)
            removed.append((i, j))
        pruned.append(gone)
    give_back(cost, plans, pruned, widths, removed, limit)
    return widths
