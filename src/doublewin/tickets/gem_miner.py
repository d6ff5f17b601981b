"""Gem-Miner (Sreenivasan et al. 2022, "Rare Gems"): learn a mask on frozen weights.

Each masked weight gets a score s ∈ [0, 1]; the forward pass uses θp ⊙ flag ⊙ 1[s > 0.5] and
the gradient passes straight through the threshold to s (the reference's ``GetSubnet``).
Scores are trained with SGD on task loss + λ‖s‖² (cosine learning-rate decay) and clamped to
[0, 1] after every step. *Iterative freezing*, as the reference's ``iter_period``: after every
``period``-th epoch, except the last, the lowest-scoring still-flagged weights are flagged out
for good, each freeze keeping the same share of the flagged weights, so that the last freeze
lands exactly on the target; the epochs after the last freeze (at least one) keep training the
survivors' scores. Ties at a freeze's cut are spread over the layers, so no layer is emptied
unless the target demands it.

The ticket is the flag set (exactly at the target; the reference's ``unflag_before_finetune``)
or, with ``final: gem``, the reference's mined subnetwork flag ∧ 1[s > 0.5] (at or above the
target). Mining runs on a copy in train mode, so BatchNorm statistics follow the current mask
as in the reference, and are thrown away: only the mask is returned. Scores are initialized
from the ``gem-miner-scores`` stream of the seed, independent of the ``random`` method's stream
and of any weight initialization; the global RNG is left as found.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from doublewin.core.errors import Diverged, UserError
from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.core.seeds import stream
from doublewin.core.specs import GemMinerSpec
from doublewin.tickets.mask import Mask
from doublewin.tickets.pruning import prune_to_sparsity

Attack = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


class ScoreMaskedModel(nn.Module):
    """``model`` with each masked weight multiplied by 1[s > 0.5] (straight-through) and by
    its flag. The wrapped model's own parameters are frozen."""

    def __init__(self, model: nn.Module, mask: Mask, scores: dict[str, torch.Tensor]):
        super().__init__()
        self.model = model
        self.names = list(mask)
        self.scores = nn.ParameterList([nn.Parameter(scores[n]) for n in self.names])
        for i, n in enumerate(self.names):
            self.register_buffer(f"active_{i}", mask[n].clone())
        for p in model.parameters():
            p.requires_grad_(False)
        params = dict(model.named_parameters())
        self._weights = [params[n] for n in self.names]

    def active(self, i: int) -> torch.Tensor:
        return getattr(self, f"active_{i}")

    def effective_masks(self) -> list[torch.Tensor]:
        out = []
        for i, s in enumerate(self.scores):
            hard = (s > 0.5).to(s.dtype)
            out.append((hard + s - s.detach()) * self.active(i).to(s.dtype))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        masked = {
            n: w * m
            for n, w, m in zip(self.names, self._weights, self.effective_masks(), strict=True)
        }
        return functional_call(self.model, masked, (x,))

    @torch.no_grad()
    def project(self) -> None:
        """Clamp scores to [0, 1]; flagged-out scores stay 0."""
        for i, s in enumerate(self.scores):
            s.clamp_(0.0, 1.0).mul_(self.active(i).to(s.dtype))

    def flags(self) -> Mask:
        return Mask({n: self.active(i).clone() for i, n in enumerate(self.names)})

    @torch.no_grad()
    def gem(self) -> Mask:
        """The mined subnetwork: flag ∧ 1[s > 0.5]."""
        return Mask(
            {
                n: self.active(i) & (s > 0.5)
                for i, (n, s) in enumerate(zip(self.names, self.scores, strict=True))
            }
        )


@dataclass(frozen=True)
class GemMinerResult:
    """The mask, its cost (epochs, optimizer steps, and source forward/backward passes: one
    per step, more with an attack), the freezes' schedule, and how the mined subnetwork
    flag ∧ 1[s > 0.5] relates to the flag set."""

    mask: Mask
    epochs: int
    steps: int
    passes: int
    freeze_epochs: tuple[int, ...]
    freeze_fraction: float  # share of the flagged weights each freeze flags out
    final_loss: float
    gem_sparsity: float  # sparsity of flag ∧ 1[s > 0.5]


def freeze_epochs(epochs: int, period: int) -> list[int]:
    """Epochs after which a freeze happens: every ``period``-th, leaving at least one epoch
    after the last (the reference freezes after epoch e when e % period == 0, e < epochs)."""
    count = (epochs - 1) // period
    if count < 1:
        raise UserError(
            f"gem_miner.epochs {epochs} leaves no freeze with period {period}: mining needs "
            f"epochs > period (e.g. epochs: {period + 1} or more)"
        )
    return [period * j for j in range(1, count + 1)]


def freeze_schedule(total: int, sparsity: float, events: int) -> list[float]:
    """Target sparsity after each of ``events`` freezes: 1 − d^(j/events), the last exactly
    ``sparsity`` (so its pruned count is ``round(sparsity × total)``)."""
    density = 1.0 - sparsity
    return [
        sparsity if j == events else 1.0 - density ** (j / events) for j in range(1, events + 1)
    ]


def gem_miner_mask(
    model: nn.Module,
    mask: Mask,
    sparsity: float,
    train_loader: Iterable,
    *,
    spec: GemMinerSpec,
    device: torch.device,
    seed: int = 0,
    attack: Attack | None = None,
    attack_steps: int = 0,
    progress: Progress = NULL_PROGRESS,
) -> GemMinerResult:
    """Search a mask of ``sparsity`` (fraction pruned) over ``mask``'s tensors.

    ``train_loader`` yields (x in [0,1], y) batches; with ``attack`` the task loss is on its
    adversarial examples (adversarial Gem-Miner), costing ``attack_steps`` more passes a step.
    ``model`` is left untouched; so are the global RNG's states."""
    schedule = freeze_epochs(spec.epochs, spec.period)
    targets = dict(
        zip(schedule, freeze_schedule(mask.num_total, sparsity, len(schedule)), strict=True)
    )
    ties = stream("gem-miner-ties", seed)
    net = copy.deepcopy(model).to(device)
    wrapped = ScoreMaskedModel(net, mask.to(device), _initial_scores(mask, spec, seed, device))
    wrapped = wrapped.to(device)
    optimizer = torch.optim.SGD(wrapped.scores.parameters(), lr=spec.lr, momentum=spec.momentum)
    batches_per_epoch = _length(train_loader)
    total_steps = spec.epochs * batches_per_epoch if batches_per_epoch else None
    current = mask.to(device)
    step, loss_value = 0, float("nan")
    task = progress.task(f"gem-miner {100 * sparsity:.2f}%", spec.epochs)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        # The attack's random starts draw from the global RNG: seed it inside the fork only.
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=stream("gem-miner", seed))))
        for epoch in range(1, spec.epochs + 1):
            wrapped.train()
            for x, y in train_loader:
                x, y = x.to(device), y.to(device)
                if attack is not None:
                    x = attack(wrapped, x, y).detach()
                    wrapped.train()
                if total_steps:
                    lr = 0.5 * spec.lr * (1 + math.cos(math.pi * step / total_steps))
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                loss_value = _score_step(wrapped, optimizer, spec, x, y, step)
                step += 1
            if epoch in targets:
                current = _freeze(wrapped, current, targets[epoch], ties)
            task.advance(1, loss=loss_value, sparsity=current.sparsity)
    task.close()
    gem = wrapped.gem()
    final = gem if spec.final == "gem" else wrapped.flags()
    density = 1.0 - sparsity
    return GemMinerResult(
        mask=Mask({n: m.cpu() for n, m in final.items()}),
        epochs=spec.epochs,
        steps=step,
        passes=step * (1 + attack_steps),
        freeze_epochs=tuple(schedule),
        freeze_fraction=1.0 - density ** (1 / len(schedule)),
        final_loss=loss_value,
        gem_sparsity=gem.sparsity,
    )


def _initial_scores(
    mask: Mask, spec: GemMinerSpec, seed: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """The scores the search starts from (uniform draws or ones), zero outside ``mask``."""
    generator = stream("gem-miner-scores", seed)
    if spec.score_init == "uniform":
        init = {n: torch.rand(m.shape, generator=generator) for n, m in mask.items()}
    else:
        init = {n: torch.ones(m.shape) for n, m in mask.items()}
    return {n: (init[n] * mask[n]).to(device=device, dtype=torch.float32) for n in mask}


def _score_step(
    wrapped: ScoreMaskedModel,
    optimizer: torch.optim.Optimizer,
    spec: GemMinerSpec,
    x: torch.Tensor,
    y: torch.Tensor,
    step: int,
) -> float:
    """One optimizer step on the scores: the task loss plus λ × the scores' squared norm, the
    scores projected back into [0, 1]; returns the task loss."""
    loss = F.cross_entropy(wrapped(x), y)
    reg = sum((s * s).sum() for s in wrapped.scores)
    total = loss + spec.lam * reg
    if not torch.isfinite(total):
        raise Diverged(f"gem-miner loss became {total.item()} at step {step}; lower gem_miner.lr")
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()
    wrapped.project()
    return float(loss.detach())


@torch.no_grad()
def _freeze(wrapped: ScoreMaskedModel, current: Mask, target: float, ties: torch.Generator) -> Mask:
    scores = {n: s.detach() for n, s in zip(wrapped.names, wrapped.scores, strict=True)}
    new = prune_to_sparsity(scores, current, target, ties=ties)
    for i, n in enumerate(wrapped.names):
        wrapped.active(i).copy_(new[n])
    wrapped.project()
    return new


def _length(loader: Iterable) -> int:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return 0
