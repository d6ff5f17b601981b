"""The one training engine: standard (std), fast adversarial (fat, FGSM-RS) and PGD
adversarial (at) training, for pre-training, IMP rounds and transfer alike.

One call runs ``spec.epochs`` epochs of SGD on ``train_loader``, keeps a mask's pruned weights
at zero, validates SA and RA each ``spec.val_every`` epochs, keeps the best-SA and best-RA
weights, checkpoints every epoch to ``workdir/checkpoint.pt`` and resumes from it.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from doublewin.core.typed import to_dict
from doublewin.train.callbacks import Callback, TrainState
from doublewin.train.checkpoint import RunState, cpu_state_dict, resume_run, save_run
from doublewin.train.evaluation import evaluate
from doublewin.train.guard import OverfitGuard
from doublewin.train.loop_setup import (
    check_finite,
    diverged,
    loader_length,
    make_guard,
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


@dataclass
class _Loop:
    """What every step of one run uses, set up once by `train`: the module that computes
    (``net``, possibly DDP-wrapped or compiled) and the one that holds the weights (``model``),
    the optimizer, the per-step scheduler, the mask, the training attack, the device and
    precision, and where progress and logs go."""

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
    callbacks: Sequence[Callback]
    task: Any
    log: JsonlLog | None
    log_every: int
    progress: Progress = NULL_PROGRESS
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
    starts (the loaders carry their own seeds). ``precision``: overrides ``spec.precision``
    (``auto`` = bf16 autocast on CUDA, fp32 elsewhere); ``channels_last``: the memory layout
    (default: `default_channels_last`); ``compile``: torch.compile the forward. ``phase``:
    this call is part of a longer run (schedules.Phase); ``penalty(step)``: a term added to
    each step's loss (SuperTickets' γ-L1), ``step`` the optimizer steps taken in this call. Raises `Diverged` (bad input, exit 2) when the loss turns NaN/inf, `UserError` for a mask that does
    not fit the model or a checkpoint of a different spec.
    """
    device = torch.device(device)
    precision = resolve_precision(precision or spec.precision, device)
    if channels_last is None:
        channels_last = default_channels_last(device)
    steps_per_epoch = loader_length(train_loader)
    # train.min_steps lengthens short runs (small data fractions); `spec` below is the run's.
    spec = stretched(spec, steps_per_epoch)
    if spec.optimizer == "sgd" and spec.nesterov and spec.momentum <= 0:
        raise UserError("train.nesterov needs train.momentum > 0; set momentum: 0.9")

    model.to(device)
    # Before the optimizer and the DDP wrap see the parameters; undone when training ends.
    layout = contextlib.ExitStack()
    layout.enter_context(channels_last_layout(model, channels_last))
    enforcer = MaskEnforcer(model, mask)
    enforcer.zero_pruned()
    optimizer = make_optimizer(model, spec)
    multiplier = phased_multiplier(spec, steps_per_epoch, phase)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
    attack = training_attack(spec)
    guard = make_guard(spec, val_loader, device)

    run = RunState()
    ckpt_path = Path(workdir) / paths.CHECKPOINT if workdir is not None else None
    identity = {
        "spec": to_dict(spec),
        "steps_per_epoch": steps_per_epoch,
        "mask_kept": {n: int(torch.as_tensor(m).count_nonzero()) for n, m in (mask or {}).items()},
    }
    if phase is not None:
        identity["phase"] = dataclasses.asdict(phase)
    if ckpt_path is not None and ckpt_path.is_file():
        run = resume_run(ckpt_path, identity, model, optimizer, scheduler)
        if guard is not None:
            guard.best = run.guard_best
        progress.note(
            f"resuming {spec.regime} training after epoch {run.epoch} of "
            f"{spec.epochs} from {ckpt_path}"
        )
    else:
        torch.manual_seed(seed)
    if guard is not None and run.last_good is None:
        run.last_good = cpu_state_dict(model)

    # Under torchrun every rank trains on its slice of each global batch; DDP averages the
    # gradients (see core/distributed.py). Only rank 0 writes checkpoints and logs.
    net = distributed.wrap(model, device)
    net = torch.compile(net) if compile else net
    if not distributed.is_main():
        log, progress = None, NULL_PROGRESS
    task = progress.task(f"train {spec.regime}", spec.epochs * steps_per_epoch)
    if run.step:
        task.advance(run.step)
    loop = _Loop(
        net,
        model,
        spec,
        train_loader,
        optimizer,
        scheduler,
        enforcer,
        attack,
        device,
        precision,
        channels_last,
        steps_per_epoch,
        callbacks,
        task,
        log,
        log_every,
        progress,
        phase.first_epoch if phase is not None else 0,
        penalty,
    )
    started = time.perf_counter()
    try:
        while run.epoch < spec.epochs and not run.stopped:
            _train_epoch(loop, run)
            record = run.history[-1]
            _validate(loop, val_loader, guard, run, record)
            if log is not None:
                log.write("epoch", step=run.step, **record)
            for callback in callbacks:
                callback.on_epoch_end(
                    TrainState(model, optimizer, run.epoch - 1, run.step, steps_per_epoch, record)
                )
            if ckpt_path is not None and distributed.is_main():
                elapsed = run.seconds + time.perf_counter() - started
                save_run(
                    ckpt_path,
                    identity,
                    model,
                    optimizer,
                    scheduler,
                    dataclasses.replace(run, seconds=elapsed),
                )
    finally:
        task.close()
        layout.close()
    run.seconds += time.perf_counter() - started
    return TrainResult(model, dict(run.best_states), list(run.history), run.metrics(), ckpt_path)


def _train_epoch(loop: _Loop, run: RunState) -> None:
    """One epoch of SGD steps over ``loop.loader``; appends the epoch's record to
    ``run.history``."""
    spec, model, optimizer, scheduler = loop.spec, loop.model, loop.optimizer, loop.scheduler
    device, precision = loop.device, loop.precision
    epoch = run.epoch
    if hasattr(loop.loader, "set_epoch"):
        loop.loader.set_epoch(epoch + loop.first_epoch)
    model.train()
    on_cpu = device.type != "cuda"
    sharded = distributed.world().distributed
    # Running sums stay on the device; they are read every `log_every` steps and at the end
    # of the epoch, so CUDA never waits for the host inside the loop.
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    first_bad = torch.full((), -1, dtype=torch.long, device=device)
    seen = 0
    advanced = 0
    lr = scheduler.get_last_lr()[0]
    tic = time.perf_counter()
    for index, (x, y) in enumerate(loop.loader):
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        x, y = distributed.shard(x, y)
        x = as_layout(x, loop.channels_last)
        if loop.attack is not None:
            with autocast(precision, device):
                # The attack runs on the bare module: it takes input gradients only, which
                # DDP's gradient hooks must not see.
                x = loop.attack(model if sharded else loop.net, x, y)
        with autocast(precision, device):
            logits = loop.net(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=spec.label_smoothing)
        if loop.penalty is not None:
            loss = loss + loop.penalty(run.step)
        if on_cpu:
            if not torch.isfinite(loss):
                diverged(spec, epoch, run.step + 1, float(loss.detach()), lr)
        else:
            bad = (~torch.isfinite(loss)) & (first_bad < 0)
            first_bad = torch.where(bad, torch.full_like(first_bad, run.step + 1), first_bad)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        loop.enforcer.mask_gradients()
        optimizer.step()
        loop.enforcer.zero_pruned()
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        run.step += 1
        batch = int(y.shape[0])
        seen += batch
        loss_sum += loss.detach().float() * batch
        correct += (logits.detach().argmax(1) == y).sum()
        if loop.callbacks:
            state = TrainState(model, optimizer, epoch, run.step, loop.steps_per_epoch)
            for callback in loop.callbacks:
                callback.on_step_end(state)
        if (index + 1) % loop.log_every == 0:
            check_finite(spec, epoch, first_bad, lr)
            mean_loss, acc = loss_sum.item() / seen, 100.0 * correct.item() / seen
            loop.task.advance(index + 1 - advanced, loss=mean_loss, acc=acc)
            advanced = index + 1
            if loop.log is not None:
                loop.log.write(
                    "step",
                    step=run.step,
                    epoch=epoch + 1,
                    train_loss=mean_loss,
                    train_acc=acc,
                    lr=lr,
                )
    if seen == 0:
        raise UserError(
            "the training loader yielded no batch; use a smaller batch_size or more training data"
        )
    check_finite(spec, epoch, first_bad, lr)
    mean_loss, acc = loss_sum.item() / seen, 100.0 * correct.item() / seen
    loop.task.advance(index + 1 - advanced, loss=mean_loss, acc=acc)
    run.train_seconds += time.perf_counter() - tic
    run.images += seen
    run.epoch += 1
    run.history.append(
        {
            "epoch": run.epoch,
            "train_loss": mean_loss,
            "train_acc": acc,
            "lr": lr,
            "train_seconds": time.perf_counter() - tic,
        }
    )


def _validate(
    loop: _Loop,
    val_loader: Iterable | None,
    guard: OverfitGuard | None,
    run: RunState,
    record: dict[str, Any],
) -> None:
    """Guard check first (a collapsed epoch's weights are discarded, so they can be neither
    best), then validation SA/RA and the best states."""
    model, spec = loop.model, loop.spec
    if guard is not None:
        accuracy = guard.accuracy(model)
        record["guard_ra"] = accuracy
        if guard.collapsed(accuracy):
            run.collapsed, run.collapse_epoch, run.stopped = True, run.epoch, True
            record["collapsed"] = True
            assert run.last_good is not None
            model.load_state_dict(run.last_good)
            return
        guard.best = max(guard.best, accuracy)
        run.guard_best = guard.best
        run.last_good = cpu_state_dict(model)
    due = run.epoch % spec.val_every == 0 or run.epoch == spec.epochs
    if val_loader is None or not due or run.epoch < spec.select_from_epoch:
        return
    attack = spec.val_attack if spec.val_ra else None
    result = evaluate(
        model, val_loader, attack=attack, device=loop.device, precision=loop.precision,
        progress=loop.progress, label="validating",
    )  # fmt: skip
    record["val_sa"], record["val_ra"] = result["sa"], result["ra"]
    for key in ("sa", "ra"):
        value = result[key]
        best = run.best[key]
        if value is not None and (best["value"] is None or value > best["value"]):
            run.best[key] = {"value": value, "epoch": run.epoch}
            run.best_states[key] = cpu_state_dict(model)
