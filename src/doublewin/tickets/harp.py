"""HARP's learned layer-wise keep rates (Zhao & Wressnegger 2023, intellisec/harp).

Each unit (a weight tensor, or a group of coupled channels) keeps the share
k = floor + (1 − floor)·σ(s_k) of its entries, floor = ``rate_floor`` × the target density
(the authors' k_min = α·k). The logits start from a layer-wise strategy's rates through the
inverse of that map, with the share (k − floor)/(1 − floor) clipped to [0.01, 0.99] as the
authors' ``rate_init_func`` clips it (a dense layer starts at 0.99, not at an infinite logit).

At the end the learned rates are made to meet the budget exactly: they are scaled by one
common factor (each within [one unit, all of it]) until the ticket keeps exactly the rung's
weights, to the weight (`exact_counts`); a channel ticket's widths are scaled the same way to
the largest cost within the budget (channel_search.py).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.core.ticket_parts import HarpSpec
from doublewin.tickets.allocation import kept_total, strategy_counts
from doublewin.tickets.hydra import (
    SearchResult,
    WeightBudget,
    exact_counts,
    initial_scores,
    weight_units,
)
from doublewin.tickets.mask import Mask
from doublewin.tickets.score_masks import ScoredModel, top_count
from doublewin.tickets.score_search import SearchRun, run_search, search_passes

RATE_CLIP = 0.01  # the authors' clip of the initial share, away from σ's asymptotes


def initial_logits(rates: Sequence[float], floor: float) -> torch.Tensor:
    """The logits whose keep rates are ``rates`` (each clipped as the authors clip them)."""
    share = (torch.tensor(list(rates), dtype=torch.float64) - floor) / (1.0 - floor)
    share = share.clamp(RATE_CLIP, 1.0 - RATE_CLIP)
    return torch.log(share / (1.0 - share))


def rate_floor(spec: HarpSpec, density: float) -> float:
    """The lowest keep rate a unit can learn: ``rate_floor`` × the target density."""
    return spec.rate_floor * density


def harp_mask(
    model: nn.Module,
    scope_mask: Mask,
    sparsity: float,
    train_loader: Iterable,
    *,
    spec: HarpSpec,
    device: torch.device,
    seed: int = 0,
    checkpoint: Path | None = None,
    progress: Progress = NULL_PROGRESS,
) -> SearchResult:
    """HARP's unstructured mask at ``sparsity``: exactly ``round(sparsity × total)`` weights
    pruned, allocated over the layers by the learned keep rates."""
    net = copy.deepcopy(model).to(device)
    params = dict(net.named_parameters())
    names = list(scope_mask)
    sizes = {n: scope_mask[n].numel() for n in names}
    start = strategy_counts(spec.rate_init, params, scope_mask, sparsity)
    budget = WeightBudget(scope_mask, sparsity, device)
    floor = rate_floor(spec, budget.target)
    scores = [s.to(device) for s in initial_scores(params, scope_mask, spec.score_init, seed)]
    wrapped = ScoredModel(
        net,
        weight_units(scope_mask),
        scores,
        rate_logits=initial_logits([start[n] / sizes[n] for n in names], floor).to(device),
        floor=floor,
        train_bn=spec.train_bn,
    )
    run = SearchRun(train_loader, seed, device, checkpoint, progress)
    facts = {"method": "harp", "sparsity": sparsity, "sizes": sizes}
    state = run_search(wrapped, run, spec, facts, budget)
    learned = dict(zip(names, wrapped.rates().detach().cpu().tolist(), strict=True))
    counts = exact_counts(learned, sizes, kept_total(scope_mask, sparsity))
    keeps = [top_count(s.abs(), counts[n]) for n, s in zip(names, wrapped.scores, strict=True)]
    return SearchResult(
        mask=Mask({n: k.cpu() for n, k in zip(names, keeps, strict=True)}),
        epochs=state.epoch,
        steps=state.step,
        passes=search_passes(spec, state.step),
        final_loss=state.last_loss,
        history=tuple(state.history),
        learned_rates=learned,
        ticket_rates={n: counts[n] / sizes[n] for n in names},
    )
