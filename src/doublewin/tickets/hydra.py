"""HYDRA (Sehwag et al. 2020, inspire-group/hydra) and HARP's unstructured tickets (Zhao &
Wressnegger 2023, intellisec/harp): masks learned by a score search on frozen θp.

HYDRA keeps the same share of every layer: the rung's kept weights are apportioned over the
layers in proportion to their sizes (to the whole weight), and each layer keeps its top |score|.
Its scores start at √(6/fan_in)·W/max|W| per layer, so before any training its mask is
layer-wise magnitude pruning (the layer-wise magnitude baseline, ``lwm``, is that mask).
HARP also learns each layer's keep rate; its rates start from a layer-wise strategy (uniform,
ERK, LAMP), are trained under the budget penalty, and at the end the learned rates are scaled
so that the ticket keeps exactly the rung's weights: the authors' rates meet the budget only as
closely as the penalty drives them (harp.py).

The search runs on a copy of the model (train mode: BatchNorm follows the current mask), and
only the mask is returned.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.core.seeds import stream
from doublewin.core.ticket_parts import ScoreSearchSpec
from doublewin.tickets.allocation import apportion, kept_total, uniform_counts
from doublewin.tickets.mask import Mask
from doublewin.tickets.score_masks import ScoredModel, Units, fan_in, scaled_scores
from doublewin.tickets.score_search import SearchRun, run_search, search_passes


@dataclass(frozen=True)
class SearchResult:
    """A learned mask and what it cost: epochs, optimizer steps, source forward/backward passes
    (attack steps included), the last epoch's loss, the per-epoch history, and (HARP) each
    unit's learned keep rate before the exact budget and the ticket's own."""

    mask: Mask
    epochs: int
    steps: int
    passes: int
    final_loss: float
    history: tuple[dict[str, Any], ...]
    learned_rates: dict[str, float] | None = None
    ticket_rates: dict[str, float] | None = None

    def info(self) -> dict[str, Any]:
        """What a ticket file records about the search."""
        out: dict[str, Any] = {
            "epochs": self.epochs,
            "steps": self.steps,
            "source_passes": self.passes,
            "final_loss": self.final_loss,
            "history": list(self.history),
        }
        if self.learned_rates is not None:
            out["learned_rates"] = {k: round(v, 6) for k, v in self.learned_rates.items()}
            out["layer_rates"] = {k: round(v, 6) for k, v in (self.ticket_rates or {}).items()}
        return out


def weight_units(mask: Mask) -> Units:
    """One unit per masked weight tensor (unstructured tickets)."""
    return Units(list(mask), [tuple(m.shape) for m in mask.values()])


def initial_scores(
    weights: Mapping[str, torch.Tensor], mask: Mask, how: str, seed: int
) -> list[torch.Tensor]:
    """Per tensor: the authors' scaled weights, or Kaiming-normal draws (fan in) from the
    ``score-init`` stream of ``seed``."""
    generator = stream("score-init", seed)
    out = []
    for name in mask:
        w = weights[name].detach()
        if how == "weights":
            out.append(scaled_scores(w, fan_in(w)))
        else:
            draw = torch.randn(w.shape, generator=generator, dtype=torch.float64)
            out.append(draw * math.sqrt(2.0 / fan_in(w)))
    return out


def hydra_mask(
    model: nn.Module,
    scope_mask: Mask,
    sparsity: float,
    train_loader: Iterable,
    *,
    spec: ScoreSearchSpec,
    device: torch.device,
    seed: int = 0,
    checkpoint: Path | None = None,
    progress: Progress = NULL_PROGRESS,
) -> SearchResult:
    """HYDRA's mask at ``sparsity`` (exactly ``round(sparsity × total)`` weights pruned)."""
    counts = uniform_counts(scope_mask, sparsity)
    net = copy.deepcopy(model).to(device)
    params = dict(net.named_parameters())
    scores = [s.to(device) for s in initial_scores(params, scope_mask, spec.score_init, seed)]
    units = weight_units(scope_mask)
    wrapped = ScoredModel(
        net, units, scores, counts=[counts[n] for n in scope_mask], train_bn=spec.train_bn
    )
    run = SearchRun(train_loader, seed, device, checkpoint, progress)
    facts = {"method": "hydra", "sparsity": sparsity, "counts": counts}
    state = run_search(wrapped, run, spec, facts)
    return SearchResult(
        wrapped.ticket(),
        state.epoch,
        state.step,
        search_passes(spec, state.step),
        state.last_loss,
        tuple(state.history),
    )


def exact_counts(
    rates: Mapping[str, float], sizes: Mapping[str, int], total: int
) -> dict[str, int]:
    """Whole kept counts that add up to ``total`` exactly, in the proportions of the learned
    keep rates (every unit keeps at least one)."""
    names = list(sizes)
    shares = [rates[n] * sizes[n] for n in names]
    counts = apportion(shares, [1] * len(names), [sizes[n] for n in names], total)
    return dict(zip(names, counts, strict=True))


class WeightBudget:
    """HARP's budget in parameters: the share of the covered weights the rates keep."""

    def __init__(self, mask: Mask, sparsity: float, device: torch.device):
        self.sizes = torch.tensor([float(m.numel()) for m in mask.values()], device=device)
        self.sizes = self.sizes.double()
        self.target = kept_total(mask, sparsity) / mask.num_total

    def kept(self, rates: torch.Tensor) -> torch.Tensor:
        return (rates * self.sizes).sum() / self.sizes.sum()
