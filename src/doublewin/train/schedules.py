"""The optimizer (SGD or AdamW) and learning-rate schedules as a multiplier of ``TrainSpec.lr``
per optimizer step.

The scheduler steps once per iteration, so a run of a few hundred steps still follows its
schedule. Epoch positions (milestones, warmup) are converted to steps with the number of
batches per epoch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from doublewin.core.specs import TrainSpec

# The fast-AT one-cycle schedule (Wong et al. 2020) peaks at 2/5 of the run.
CYCLIC_PEAK = 0.4
# RMSprop's smoothing and ε: SuperTickets' classification config (alpha 0.9, epsilon 0.001).
RMSPROP_ALPHA = 0.9
RMSPROP_EPS = 1e-3


def lr_multiplier(spec: TrainSpec, steps_per_epoch: int) -> Callable[[int], float]:
    """A function ``step -> factor`` (``step`` = optimizer steps taken so far, from 0).

    - ``multistep``: × ``gamma`` at each milestone epoch (``milestones`` in epochs);
    - ``cosine``: half a cosine from 1 to 0 over the run;
    - ``cyclic``: linear 0 → 1 over the first 2/5 of the run, then linear back to 0;
    - ``constant``: 1;
    - ``exponential``: × ``gamma`` after every ``decay_epochs`` epochs (fractions allowed),
      HR-NAS's ``exp_decaying`` with ``lr_stepwise: false``.
    A linear warmup over ``warmup_epochs`` (fractions allowed) multiplies any of them.
    """
    total = max(1, spec.epochs * steps_per_epoch)
    milestones = sorted(round(m * steps_per_epoch) for m in spec.milestones)
    warmup = round(spec.warmup_epochs * steps_per_epoch)
    peak = max(1, round(CYCLIC_PEAK * total))
    decay = max(1, round(spec.decay_epochs * steps_per_epoch))

    def schedule(step: int) -> float:
        if spec.schedule == "multistep":
            factor = spec.gamma ** sum(step >= m for m in milestones)
        elif spec.schedule == "cosine":
            factor = 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
        elif spec.schedule == "exponential":
            factor = spec.gamma ** (step // decay)
        elif spec.schedule == "cyclic":
            # The step that is about to be taken is step + 1 of total (never a zero lr at 0).
            t = step + 1
            factor = t / peak if t <= peak else max(0.0, (total - t) / max(1, total - peak))
        else:
            factor = 1.0
        if warmup > 0 and step < warmup:
            factor *= (step + 1) / warmup
        return factor

    return schedule


@dataclass(frozen=True)
class Phase:
    """A call of the engine that is part of a longer run: epochs ``first_epoch`` …
    ``first_epoch + spec.epochs − 1`` (0-based) of a run of ``total_epochs``. The learning rate
    follows the whole run's schedule from there, and the loader's epochs are numbered from
    ``first_epoch``, so a run cut into phases (SuperTickets rebuilds its network between them)
    steps as the uncut run would."""

    first_epoch: int
    total_epochs: int


def phased_multiplier(
    spec: TrainSpec, steps_per_epoch: int, phase: Phase | None
) -> Callable[[int], float]:
    """`lr_multiplier` of ``spec``, or of the whole run ``phase`` is part of, from its start."""
    if phase is None:
        return lr_multiplier(spec, steps_per_epoch)
    whole = lr_multiplier(dataclasses.replace(spec, epochs=phase.total_epochs), steps_per_epoch)
    offset = phase.first_epoch * steps_per_epoch
    return lambda step: whole(step + offset)


def stretched(spec: TrainSpec, steps_per_epoch: int) -> TrainSpec:
    """``spec`` with ``epochs`` raised to reach ``spec.min_steps`` optimizer steps.

    Milestones, warmup, the validation spacing and the selection window stretch by the same factor, so the schedule
    keeps its shape and the run validates as often; a spec that already reaches
    ``min_steps`` (or has it at 0) is returned unchanged.
    """
    if spec.min_steps <= spec.epochs * steps_per_epoch:
        return spec
    epochs = math.ceil(spec.min_steps / max(1, steps_per_epoch))
    factor = epochs / spec.epochs
    return dataclasses.replace(
        spec,
        epochs=epochs,
        milestones=tuple(round(m * factor) for m in spec.milestones),
        warmup_epochs=spec.warmup_epochs * factor,
        val_every=max(1, round(spec.val_every * factor)),
        select_from_epoch=min(epochs, max(1, round(spec.select_from_epoch * factor))),
    )


def make_optimizer(model: nn.Module, spec: TrainSpec) -> torch.optim.Optimizer:
    """SGD (the paper's), AdamW or RMSprop; weight decay on every parameter, as in the
    official code. Pruned weights get zero gradients, so neither optimizer's state moves them."""
    if spec.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    if spec.optimizer == "rmsprop":
        # torch adds ε outside the square root; HR-NAS's RMSprop inside (docs/paper.md).
        return torch.optim.RMSprop(
            model.parameters(),
            lr=spec.lr,
            alpha=RMSPROP_ALPHA,
            eps=RMSPROP_EPS,
            momentum=spec.momentum,
            weight_decay=spec.weight_decay,
        )
    return torch.optim.SGD(
        model.parameters(),
        lr=spec.lr,
        momentum=spec.momentum,
        weight_decay=spec.weight_decay,
        nesterov=spec.nesterov,
    )
