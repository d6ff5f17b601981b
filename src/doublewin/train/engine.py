"""The one training engine: standard (std), fast adversarial (fat, FGSM-RS) and PGD
adversarial (at) training, for pre-training, IMP rounds and transfer alike.

One call runs ``spec.epochs`` epochs of SGD on ``train_loader``, keeps a mask's pruned weights
at zero and resumes from ``workdir/checkpoint.pt``. What happens between steps and epochs
(validation with the best-SA and best-RA weights, the FAT overfit guard, the checkpoint, the
logs) are callbacks (standard_callbacks.py), so `train` reads as the loop itself.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from doublewin.attacks import PGD
from doublewin.core import distributed, paths
from doublewin.core.errors import UserError
from doublewin.core.logs import JsonlLog
from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.core.specs import TrainSpec
from doublewin.train.callbacks import Callback, TrainState
from doublewin.train.checkpoint import RunState
from doublewin.train.loop_setup import (
    EpochSums,
    check_finite,
    checked_spec,
    diverged,
    loader_length,
    make_guard,
    run_identity,
    start_run,
    training_attack,
)
from doublewin.train.masking import MaskEnforcer
from doublewin.train.precision import (
    as_layout,
    autocast,
    channels_last_layout,
    default_channels_last,
    resolve_precision,
)
from doublewin.train.schedules import Phase, make_optimizer, phased_multiplier, stretched
from doublewin.train.standard_callbacks import standard_callbacks


@dataclass
class TrainResult:
    """What a training run returns.

    ``model``: the trained module (final weights in place; after a FAT collapse, the last good
    weights). ``best_states``: ``{"sa": state_dict, "ra": state_dict}`` (CPU tensors) at the
    epochs with the best validation SA and RA; empty without a validation loader.
    ``history``: one dict per epoch (``epoch`` from 1, ``train_loss``, ``train_acc``, ``lr``,
    ``val_sa``, ``val_ra``, ``guard_ra``). ``metrics``: ``epochs_run``, ``steps``,
    ``best_val_sa``, ``best_val_sa_epoch``, ``best_val_ra``, ``best_val_ra_epoch``,
    ``collapsed``, ``collapse_epoch``, ``seconds``, ``images_per_second``,
    ``final_train_loss``, ``final_train_acc``. Accuracies are points 0–100.
    """

    model: nn.Module
    best_states: dict[str, dict[str, torch.Tensor]]
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    checkpoint: Path | None = None


@dataclass(kw_only=True)
class _Loop:
    """What every step of one run uses, set up once by `train`: the module that computes
    (``net``, possibly DDP-wrapped or compiled) and the one that holds the weights (``model``),
    the optimizer, the per-step scheduler, the mask, the training attack, the device and
    precision, and how often the running loss is read from the device."""

    net: nn.Module
    model: nn.Module
    spec: TrainSpec
    loader: Iterable
    optimizer: torch.optim.Optimizer
    scheduler: Any
    enforcer: MaskEnforcer
    attack: PGD | None
    device: torch.device
    precision: str
    channels_last: bool
    steps_per_epoch: int
    log_every: int
    first_epoch: int = 0  # the run's epoch this call starts at (a Phase)
    penalty: Callable[[int], torch.Tensor] | None = None


def train(
    model: nn.Module,
    spec: TrainSpec,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    *,
    mask: Mapping[str, torch.Tensor] | None = None,
    workdir: str | Path | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: Progress = NULL_PROGRESS,
    callbacks: Sequence[Callback] = (),
    log: JsonlLog | None = None,
    precision: str | None = None,
    channels_last: bool | None = None,
    compile: bool = False,
    log_every: int = 50,
    phase: Phase | None = None,
    penalty: Callable[[int], torch.Tensor] | None = None,
) -> TrainResult:
    """Train ``model`` in place with ``spec`` and return a `TrainResult`.

    ``train_loader``/``val_loader`` yield ``(x, y)`` with pixels in [0,1]; the train loader
    must have ``len()`` (batches per epoch) and may have ``set_epoch(e)`` (called each epoch).
    ``mask``: parameter name → 0/1 tensor (1 = kept), enforced for the whole run.
    ``workdir``: where ``checkpoint.pt`` is written each epoch; an existing checkpoint of the
    same spec is resumed (a finished one is returned as is). ``seed`` seeds the attacks' random
    starts (the loaders carry their own seeds). ``callbacks`` run after the engine's own
    (standard_callbacks.py) and before the checkpoint. ``precision``: overrides
    ``spec.precision`` (``auto`` = bf16 autocast on CUDA, fp32 elsewhere); ``channels_last``:
    the memory layout (default: `default_channels_last`); ``compile``: torch.compile the
    forward. ``phase``: this call is part of a longer run (schedules.Phase); ``penalty(step)``:
    a term added to each step's loss (SuperTickets' γ-L1), ``step`` the optimizer steps taken
    in this call. Raises `Diverged` (bad input, exit 2) when the loss turns NaN/inf,
    `UserError` for a mask that does not fit the model or a checkpoint of a different spec.
    """
    device = torch.device(device)
    # train.min_steps lengthens short runs (small data fractions); `spec` below is the run's.
    spec = checked_spec(stretched(spec, loader_length(train_loader)))
    if channels_last is None:
        channels_last = default_channels_last(device)
    model.to(device)
    # Before the optimizer and the DDP wrap see the parameters; undone when training ends.
    layout = contextlib.ExitStack()
    layout.enter_context(channels_last_layout(model, channels_last))
    precision = resolve_precision(precision or spec.precision, device)
    settings = {"precision": precision, "channels_last": channels_last, "log_every": log_every}
    loop = _make_loop(model, spec, train_loader, mask, device, phase, penalty, settings)
    guard = make_guard(spec, val_loader, device)
    ckpt_path = Path(workdir) / paths.CHECKPOINT if workdir is not None else None
    identity = run_identity(spec, loop.steps_per_epoch, mask, phase)
    run = start_run(ckpt_path, identity, loop, seed, guard=guard, progress=progress)
    # Under torchrun every rank trains on its slice of each global batch; DDP averages the
    # gradients (see core/distributed.py). Only rank 0 writes checkpoints and logs.
    loop.net = distributed.wrap(model, device)
    loop.net = torch.compile(loop.net) if compile else loop.net
    if not distributed.is_main():
        log, progress = None, NULL_PROGRESS
    task = progress.task(f"train {spec.regime}", spec.epochs * loop.steps_per_epoch)
    hooks = standard_callbacks(
        spec,
        run,
        task=task,
        log=log,
        guard=guard,
        validation=None if val_loader is None else (val_loader, device, precision, progress),
        checkpoint=None if ckpt_path is None else (ckpt_path, identity),
        parts=(loop.optimizer, loop.scheduler),
        callbacks=callbacks,
    )
    started = time.perf_counter()
    try:
        while run.epoch < spec.epochs and not run.stopped:
            _train_epoch(loop, run, hooks)
    finally:
        task.close()
        layout.close()
    run.seconds += time.perf_counter() - started
    return TrainResult(model, dict(run.best_states), list(run.history), run.metrics(), ckpt_path)


def _make_loop(
    model: nn.Module,
    spec: TrainSpec,
    loader: Iterable,
    mask: Mapping[str, torch.Tensor] | None,
    device: torch.device,
    phase: Phase | None,
    penalty: Callable[[int], torch.Tensor] | None,
    settings: Mapping[str, Any],
) -> _Loop:
    """The mask enforced on ``model`` (its pruned weights zeroed), the optimizer, the
    per-step schedule and the training attack of one run; ``settings``: the `_Loop` fields
    of precision, layout and logging."""
    enforcer = MaskEnforcer(model, mask)
    enforcer.zero_pruned()
    optimizer = make_optimizer(model, spec)
    steps_per_epoch = loader_length(loader)
    multiplier = phased_multiplier(spec, steps_per_epoch, phase)
    return _Loop(
        net=model,
        model=model,
        spec=spec,
        loader=loader,
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier),
        enforcer=enforcer,
        attack=training_attack(spec),
        device=device,
        steps_per_epoch=steps_per_epoch,
        first_epoch=phase.first_epoch if phase is not None else 0,
        penalty=penalty,
        **settings,
    )


def _train_epoch(loop: _Loop, run: RunState, callbacks: Sequence[Callback]) -> None:
    """One epoch of SGD steps over ``loop.loader``, the callbacks after each step and after
    the epoch; appends the epoch's record to ``run.history``."""
    epoch = run.epoch
    if hasattr(loop.loader, "set_epoch"):
        loop.loader.set_epoch(epoch + loop.first_epoch)
    loop.model.train()
    sums = EpochSums.zeros(loop.device)
    lr = loop.scheduler.get_last_lr()[0]
    tic = time.perf_counter()
    for index, (x, y) in enumerate(loop.loader):
        lr = _step(loop, run, x, y, sums)
        state = TrainState(
            loop.model,
            loop.optimizer,
            epoch,
            run.step,
            loop.steps_per_epoch,
            batch=index + 1,
            lr=lr,
        )
        if (index + 1) % loop.log_every == 0:
            check_finite(loop.spec, epoch, sums.first_bad, lr)
            state.loss, state.acc = sums.means()
        for callback in callbacks:
            callback.on_step_end(state)
    if sums.seen == 0:
        raise UserError(
            "the training loader yielded no batch; use a smaller batch_size or more training data"
        )
    check_finite(loop.spec, epoch, sums.first_bad, lr)
    mean_loss, acc = sums.means()
    run.train_seconds += time.perf_counter() - tic
    run.images += sums.seen
    run.epoch += 1
    record = {
        "epoch": run.epoch,
        "train_loss": mean_loss,
        "train_acc": acc,
        "lr": lr,
        "train_seconds": time.perf_counter() - tic,
    }
    run.history.append(record)
    state = TrainState(loop.model, loop.optimizer, epoch, run.step, loop.steps_per_epoch, record)
    for callback in callbacks:
        callback.on_epoch_end(state)


def _step(loop: _Loop, run: RunState, x: torch.Tensor, y: torch.Tensor, sums: EpochSums) -> float:
    """One optimizer step on the batch ``(x, y)`` (attacked first under fat and at); adds to
    the epoch's ``sums`` and returns the learning rate the step used."""
    spec, device, precision = loop.spec, loop.device, loop.precision
    x = x.to(device, non_blocking=True)
    y = y.to(device, non_blocking=True)
    x, y = distributed.shard(x, y)
    x = as_layout(x, loop.channels_last)
    lr = loop.scheduler.get_last_lr()[0]
    if loop.attack is not None:
        with autocast(precision, device):
            # The attack runs on the bare module: it takes input gradients only, which
            # DDP's gradient hooks must not see.
            sharded = distributed.world().distributed
            x = loop.attack(loop.model if sharded else loop.net, x, y)
    with autocast(precision, device):
        logits = loop.net(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=spec.label_smoothing)
    if loop.penalty is not None:
        loss = loss + loop.penalty(run.step)
    if device.type != "cuda":
        if not torch.isfinite(loss):
            diverged(spec, run.epoch, run.step + 1, float(loss.detach()), lr)
    else:
        bad = (~torch.isfinite(loss)) & (sums.first_bad < 0)
        sums.first_bad = torch.where(
            bad, torch.full_like(sums.first_bad, run.step + 1), sums.first_bad
        )
    loop.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    loop.enforcer.mask_gradients()
    loop.optimizer.step()
    loop.enforcer.zero_pruned()
    loop.scheduler.step()
    run.step += 1
    batch = int(y.shape[0])
    sums.seen += batch
    sums.loss += loss.detach().float() * batch
    sums.correct += (logits.detach().argmax(1) == y).sum()
    return lr
