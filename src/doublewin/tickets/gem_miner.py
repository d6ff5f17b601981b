"""Gem-Miner (Sreenivasan et al. 2022, "Rare Gems"): learn a mask on frozen weights.

Each masked weight gets a score s ∈ [0, 1]; the forward pass uses θp ⊙ 1[s > 0.5] and the
gradient passes straight through the threshold to s. Scores are trained with SGD on
task loss + λ‖s‖² and clamped to [0, 1] after every step. Every ``period`` epochs the
lowest-scoring still-active weights are frozen out (score 0, never updated again); each
freeze keeps the fraction d^(period/epochs) of the weights, so after the last epoch exactly
``round(sparsity × total)`` weights are frozen out and the still-active set is the mask.
Only scores change: θp, BatchNorm and the caller's model are untouched.
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

from doublewin.core.errors import RunFailure
from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.core.specs import GemMinerSpec
from doublewin.tickets.mask import Mask
from doublewin.tickets.pruning import prune_to_sparsity

Attack = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


class ScoreMaskedModel(nn.Module):
    """``model`` with each masked weight multiplied by 1[s > 0.5] (straight-through) and by
    its active flag. The wrapped model's own parameters are frozen."""

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
        """Clamp scores to [0, 1]; frozen-out scores stay 0."""
        for i, s in enumerate(self.scores):
            s.clamp_(0.0, 1.0).mul_(self.active(i).to(s.dtype))


@dataclass(frozen=True)
class GemMinerResult:
    """The mask (exactly at the target), its cost in epochs and optimizer steps, and the
    fraction of weights frozen out per freeze (``freeze_fraction``)."""

    mask: Mask
    epochs: int
    steps: int
    freeze_fraction: float
    final_loss: float


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
    progress: Progress = NULL_PROGRESS,
) -> GemMinerResult:
    """Search a mask of exactly ``sparsity`` (fraction pruned) over ``mask``'s tensors.

    ``train_loader`` yields (x in [0,1], y) batches; with ``attack`` the task loss is on its
    adversarial examples (adversarial Gem-Miner). A freeze happens at the end of every
    ``spec.period``-th epoch and at the last epoch.
    """
    generator = torch.Generator().manual_seed(seed)
    net = copy.deepcopy(model).to(device)
    if spec.score_init == "uniform":
        init = {n: torch.rand(m.shape, generator=generator) for n, m in mask.items()}
    else:
        init = {n: torch.ones(m.shape) for n, m in mask.items()}
    scores = {n: (init[n] * mask[n]).to(device=device, dtype=torch.float32) for n in mask}
    wrapped = ScoreMaskedModel(net, mask.to(device), scores).to(device)
    optimizer = torch.optim.SGD(wrapped.scores.parameters(), lr=spec.lr, momentum=spec.momentum)
    batches_per_epoch = _length(train_loader)
    total_steps = spec.epochs * batches_per_epoch if batches_per_epoch else None
    freeze_epochs = sorted(
        {e for e in range(spec.period, spec.epochs + 1, spec.period)} | {spec.epochs}
    )
    targets = dict(
        zip(
            freeze_epochs,
            freeze_schedule(mask.num_total, sparsity, len(freeze_epochs)),
            strict=True,
        )
    )
    current = mask.to(device)
    step, loss_value = 0, float("nan")
    task = progress.task(f"gem-miner {100 * sparsity:.2f}%", spec.epochs)
    torch.manual_seed(seed)
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
            loss = F.cross_entropy(wrapped(x), y)
            reg = sum((s * s).sum() for s in wrapped.scores)
            total = loss + spec.lam * reg
            if not torch.isfinite(total):
                raise RunFailure(
                    f"gem-miner loss became {total.item()} at step {step}; lower gem_miner.lr"
                )
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            wrapped.project()
            step += 1
            loss_value = float(loss.detach())
        if epoch in targets:
            current = _freeze(wrapped, current, targets[epoch])
        task.advance(1, loss=loss_value, sparsity=current.sparsity)
    task.close()
    density = 1.0 - sparsity
    return GemMinerResult(
        mask=Mask({n: m.cpu() for n, m in current.items()}),
        epochs=spec.epochs,
        steps=step,
        freeze_fraction=1.0 - density ** (1 / len(freeze_epochs)),
        final_loss=loss_value,
    )


@torch.no_grad()
def _freeze(wrapped: ScoreMaskedModel, current: Mask, target: float) -> Mask:
    scores = {n: s.detach() for n, s in zip(wrapped.names, wrapped.scores, strict=True)}
    new = prune_to_sparsity(scores, current, target)
    for i, n in enumerate(wrapped.names):
        wrapped.active(i).copy_(new[n])
    wrapped.project()
    return new


def _length(loader: Iterable) -> int:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return 0
