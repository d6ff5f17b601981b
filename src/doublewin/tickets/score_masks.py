"""Masks from trained scores (HYDRA, HARP): the model with each unit's weights multiplied by the
top-k of its |scores|, the gradient passing straight through the top-k.

A *unit* is what keeps its own count: a weight tensor (unstructured tickets) or a group of
coupled channels (channel tickets, channel_search.py). Within a unit the ``count`` largest
|scores| are kept (ties by position, the first kept). The forward pass multiplies by the hard
0/1 mask m; backward, ∂L/∂|s| = ∂L/∂m (straight through the top-k, the authors' ``GetSubnet``)
and, when the count comes from a learned keep rate k (HARP), ∂L/∂k = Σ ∂L/∂m over the unit
(their ``g_r = torch.sum(g)``). Scores are float64, so that scaling the weights into scores
keeps their order exactly (a float32 product can tie two neighbouring weights).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from doublewin.tickets.mask import Mask

SCORE_DTYPE = torch.float64


def top_count(values: torch.Tensor, count: int) -> torch.Tensor:
    """Boolean tensor of ``values``' shape keeping the ``count`` largest (ties: lower position
    first)."""
    flat = values.detach().reshape(-1)
    keep = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    if count > 0:
        keep[torch.argsort(flat, descending=True, stable=True)[:count]] = True
    return keep.reshape(values.shape)


def count_of_rate(rate: float, size: int) -> int:
    """The authors' kept count at keep rate ``rate``: size − int((1 − rate) × size)."""
    return size - int((1.0 - rate) * size)


def scaled_scores(weight: torch.Tensor, fan_in: int) -> torch.Tensor:
    """The authors' score initialization √(6/fan_in) · W / max|W| (float64)."""
    w = weight.detach().to(SCORE_DTYPE)
    largest = w.abs().max()
    return math.sqrt(6.0 / fan_in) * w / (largest if largest > 0 else 1.0)


def fan_in(weight: torch.Tensor) -> int:
    """Inputs of one output unit: in × kernel area (convolution) or in (linear)."""
    return int(weight[0].numel()) if weight.dim() > 1 else 1


def layerwise_magnitude_mask(
    weights: Mapping[str, torch.Tensor], mask: Mask, counts: Mapping[str, int]
) -> Mask:
    """Layer-wise magnitude pruning: each tensor keeps its ``counts[name]`` largest |w|."""
    return Mask({n: top_count(weights[n].detach().abs(), counts[n]) for n in mask})


@dataclass
class Units:
    """What the scores mask. ``names``/``shapes``: one score tensor per unit; ``sizes``: its
    number of entries. Subclasses say which parameters a unit's mask multiplies."""

    names: list[str]
    shapes: list[tuple[int, ...]]

    @property
    def sizes(self) -> list[int]:
        return [math.prod(s) for s in self.shapes]

    def masked(
        self, params: Mapping[str, torch.Tensor], masks: list[torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """The masked values of the parameters the units cover."""
        return {
            n: params[n] * m.to(params[n].dtype) for n, m in zip(self.names, masks, strict=True)
        }

    def ticket(self, keeps: list[torch.Tensor], params: Mapping[str, torch.Tensor]) -> Mask:
        """The ticket's mask from each unit's boolean keep tensor."""
        return Mask({n: k.cpu() for n, k in zip(self.names, keeps, strict=True)})


class ScoredModel(nn.Module):
    """``model`` (frozen but for BatchNorm with ``train_bn``) whose covered parameters are
    multiplied by each unit's top-k mask. ``counts``: fixed kept counts (HYDRA); with
    ``rates`` (a logit per unit) the counts follow k = floor + (1 − floor)·σ(logit) (HARP)."""

    def __init__(
        self,
        model: nn.Module,
        units: Units,
        scores: list[torch.Tensor],
        *,
        counts: list[int] | None = None,
        rate_logits: torch.Tensor | None = None,
        floor: float = 0.0,
        train_bn: bool = True,
    ):
        super().__init__()
        self.model = model
        self.units = units
        self.scores = nn.ParameterList([nn.Parameter(s.to(SCORE_DTYPE)) for s in scores])
        self.counts = counts
        self.rate_logits = None if rate_logits is None else nn.Parameter(rate_logits.double())
        self.floor = floor
        for module in model.modules():
            bn = isinstance(module, nn.modules.batchnorm._BatchNorm)
            for p in module.parameters(recurse=False):
                p.requires_grad_(bool(bn and train_bn))
        self._params = dict(model.named_parameters())

    def rates(self) -> torch.Tensor:
        """Each unit's keep rate (HARP), differentiable in its logit."""
        assert self.rate_logits is not None
        return self.floor + (1.0 - self.floor) * torch.sigmoid(self.rate_logits)

    def unit_counts(self) -> list[int]:
        if self.rate_logits is None:
            assert self.counts is not None
            return list(self.counts)
        rates = self.rates().detach().tolist()
        return [count_of_rate(r, n) for r, n in zip(rates, self.units.sizes, strict=True)]

    def keeps(self) -> list[torch.Tensor]:
        """Each unit's hard keep tensor at the current scores and counts."""
        counts = self.unit_counts()
        return [top_count(s.abs(), c) for s, c in zip(self.scores, counts, strict=True)]

    def masks(self) -> list[torch.Tensor]:
        """The straight-through masks: the hard 0/1 values forward, the gradient to |s| (and
        to the unit's rate) backward."""
        rates = self.rates() if self.rate_logits is not None else None
        out = []
        for i, (s, keep) in enumerate(zip(self.scores, self.keeps(), strict=True)):
            a = s.abs()
            m = keep.to(a.dtype) + (a - a.detach())
            if rates is not None:
                m = m + (rates[i] - rates[i].detach())
            out.append(m.float())
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.model, self.units.masked(self._params, self.masks()), (x,))

    def trainable(self) -> list[nn.Parameter]:
        """What the optimizer updates: scores, rates, and BatchNorm's affine parameters."""
        extra = [p for p in self.model.parameters() if p.requires_grad]
        rates = [self.rate_logits] if self.rate_logits is not None else []
        return [*self.scores, *rates, *extra]

    def search_state(self) -> dict[str, torch.Tensor]:
        """What changes during the search (scores, rates, BatchNorm state), for checkpoints."""
        frozen = {f"model.{n}" for n, p in self.model.named_parameters() if not p.requires_grad}
        return {
            k: v.detach().cpu().clone() for k, v in self.state_dict().items() if k not in frozen
        }

    def ticket(self) -> Mask:
        return self.units.ticket(self.keeps(), self._params)
