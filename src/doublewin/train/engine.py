"""The one training engine: standard (std), fast adversarial (fat, FGSM-RS) and PGD
adversarial (at) training, for pre-training, IMP rounds and transfer alike.

One call runs ``spec.epochs`` epochs of SGD on ``train_loader``, keeps a mask's pruned weights
at zero, validates SA and RA each ``spec.val_every`` epochs, keeps the best-SA and best-RA
weights, checkpoints every epoch to ``workdir/checkpoint.pt`` and resumes from it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from doublewin import distributed
from doublewin.attacks import PGD, fgsm_rs, make_attack
from doublewin.errors import RunFailure, UserError
from doublewin.experiments.specs import TrainSpec
from doublewin.experiments.typed import to_dict
from doublewin.logs import JsonlLog
from doublewin.progress import NULL_PROGRESS, Progress
from doublewin.train.callbacks import Callback, TrainState
from doublewin.train.checkpoint import (
    CHECKPOINT,
    cpu_state_dict,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from doublewin.train.evaluation import evaluate
from doublewin.train.guard import OverfitGuard
from doublewin.train.masking import MaskEnforcer
from doublewin.train.precision import autocast, resolve_precision
from doublewin.train.schedules import lr_multiplier, stretched

CHECKPOINT_FORMAT = 1


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
class _Run:
    """Everything a checkpoint restores (besides model, optimizer, scheduler, RNG)."""

    epoch: int = 0  # epochs completed
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "sa": {"value": None, "epoch": None},
            "ra": {"value": None, "epoch": None},
        }
    )
    best_states: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    guard_best: float = -1.0
    last_good: dict[str, torch.Tensor] | None = None
    collapsed: bool = False
    collapse_epoch: int | None = None
    stopped: bool = False
    seconds: float = 0.0
    train_seconds: float = 0.0
    images: int = 0


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
    precision: str = "auto",
    channels_last: bool | None = None,
    compile: bool = False,
    log_every: int = 50,
) -> TrainResult:
    """Train ``model`` in place with ``spec`` and return a `TrainResult`.

    ``train_loader``/``val_loader`` yield ``(x, y)`` with pixels in [0,1]; the train loader
    must have ``len()`` (batches per epoch) and may have ``set_epoch(e)`` (called each epoch).
    ``mask``: parameter name → 0/1 tensor (1 = kept), enforced for the whole run.
    ``workdir``: where ``checkpoint.pt`` is written each epoch; an existing checkpoint of the
    same spec is resumed (a finished one is returned as is). ``seed`` seeds the attacks' random
    starts (the loaders carry their own seeds). ``precision``: ``auto`` = bf16 autocast on
    CUDA, fp32 elsewhere; ``channels_last``: default on CUDA; ``compile``: torch.compile the
    forward. Raises `RunFailure` when the loss turns NaN/inf, `UserError` for a mask that does
    not fit the model or a checkpoint of a different spec.
    """
    device = torch.device(device)
    precision = resolve_precision(precision, device)
    channels_last = device.type == "cuda" if channels_last is None else channels_last
    steps_per_epoch = _length(train_loader)
    # train.min_steps lengthens short runs (small data fractions); `spec` below is the run's.
    spec = stretched(spec, steps_per_epoch)
    if spec.nesterov and spec.momentum <= 0:
        raise UserError("train.nesterov needs train.momentum > 0; set momentum: 0.9")

    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    enforcer = MaskEnforcer(model, mask)
    enforcer.zero_pruned()
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=spec.lr,
        momentum=spec.momentum,
        weight_decay=spec.weight_decay,
        nesterov=spec.nesterov,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier(spec, steps_per_epoch))
    attack = _training_attack(spec)
    guard = _make_guard(spec, val_loader, device)

    run = _Run()
    workdir = Path(workdir) if workdir is not None else None
    ckpt_path = workdir / CHECKPOINT if workdir is not None else None
    identity = {
        "spec": to_dict(spec),
        "steps_per_epoch": steps_per_epoch,
        "mask_kept": {n: int(torch.as_tensor(m).count_nonzero()) for n, m in (mask or {}).items()},
    }
    if ckpt_path is not None and ckpt_path.is_file():
        _resume(ckpt_path, identity, model, optimizer, scheduler, run, device)
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
    # gradients (see doublewin/distributed.py). Only rank 0 writes checkpoints and logs.
    net = distributed.wrap(model, device)
    net = torch.compile(net) if compile else net
    if not distributed.is_main():
        log, progress = None, NULL_PROGRESS
    task = progress.task(f"train {spec.regime}", spec.epochs * steps_per_epoch)
    if run.step:
        task.advance(run.step)
    started = time.perf_counter()
    try:
        while run.epoch < spec.epochs and not run.stopped:
            _train_epoch(
                net,
                model,
                spec,
                train_loader,
                optimizer,
                scheduler,
                enforcer,
                attack,
                run,
                device,
                precision,
                channels_last,
                steps_per_epoch,
                callbacks,
                task,
                log,
                log_every,
            )
            record = run.history[-1]
            _validate(model, spec, val_loader, guard, run, record, device, precision)
            if log is not None:
                log.write("epoch", step=run.step, **record)
            for callback in callbacks:
                callback.on_epoch_end(
                    TrainState(model, optimizer, run.epoch - 1, run.step, steps_per_epoch, record)
                )
            if ckpt_path is not None and distributed.is_main():
                _save(
                    ckpt_path,
                    identity,
                    model,
                    optimizer,
                    scheduler,
                    run,
                    run.seconds + time.perf_counter() - started,
                )
    finally:
        task.close()
        if channels_last:
            model.to(memory_format=torch.contiguous_format)
    run.seconds += time.perf_counter() - started
    return _result(model, run, ckpt_path)


def _train_epoch(
    net: nn.Module,
    model: nn.Module,
    spec: TrainSpec,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    enforcer: MaskEnforcer,
    attack: PGD | None,
    run: _Run,
    device: torch.device,
    precision: str,
    channels_last: bool,
    steps_per_epoch: int,
    callbacks: Sequence[Callback],
    task: Any,
    log: JsonlLog | None,
    log_every: int,
) -> None:
    epoch = run.epoch
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
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
    for index, (x, y) in enumerate(loader):
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        x, y = distributed.shard(x, y)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if attack is not None:
            with autocast(precision, device):
                # The attack runs on the bare module: it takes input gradients only, which
                # DDP's gradient hooks must not see.
                x = attack(model if sharded else net, x, y)
        with autocast(precision, device):
            logits = net(x)
            loss = F.cross_entropy(logits.float(), y)
        if on_cpu:
            if not torch.isfinite(loss):
                _diverged(spec, epoch, run.step + 1, float(loss.detach()), lr)
        else:
            bad = (~torch.isfinite(loss)) & (first_bad < 0)
            first_bad = torch.where(bad, torch.full_like(first_bad, run.step + 1), first_bad)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        enforcer.mask_gradients()
        optimizer.step()
        enforcer.zero_pruned()
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        run.step += 1
        batch = int(y.shape[0])
        seen += batch
        loss_sum += loss.detach().float() * batch
        correct += (logits.detach().argmax(1) == y).sum()
        if callbacks:
            state = TrainState(model, optimizer, epoch, run.step, steps_per_epoch)
            for callback in callbacks:
                callback.on_step_end(state)
        if (index + 1) % log_every == 0:
            _check_finite(spec, epoch, first_bad, lr)
            mean_loss, acc = loss_sum.item() / seen, 100.0 * correct.item() / seen
            task.advance(index + 1 - advanced, loss=mean_loss, acc=acc)
            advanced = index + 1
            if log is not None:
                log.write(
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
    _check_finite(spec, epoch, first_bad, lr)
    mean_loss, acc = loss_sum.item() / seen, 100.0 * correct.item() / seen
    task.advance(index + 1 - advanced, loss=mean_loss, acc=acc)
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
    model: nn.Module,
    spec: TrainSpec,
    val_loader: Iterable | None,
    guard: OverfitGuard | None,
    run: _Run,
    record: dict[str, Any],
    device: torch.device,
    precision: str,
) -> None:
    """Guard check first (a collapsed epoch's weights are discarded, so they can be neither
    best), then validation SA/RA and the best states."""
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
    if val_loader is None or not due:
        return
    result = evaluate(model, val_loader, attack=spec.val_attack, device=device, precision=precision)
    record["val_sa"], record["val_ra"] = result["sa"], result["ra"]
    for key in ("sa", "ra"):
        value = result[key]
        best = run.best[key]
        if value is not None and (best["value"] is None or value > best["value"]):
            run.best[key] = {"value": value, "epoch": run.epoch}
            run.best_states[key] = cpu_state_dict(model)


def _training_attack(spec: TrainSpec) -> PGD | None:
    if spec.regime == "std":
        return None
    if spec.regime == "fat":
        return fgsm_rs(spec.attack, spec.fat_alpha)
    return make_attack(spec.attack)


def _make_guard(
    spec: TrainSpec, val_loader: Iterable | None, device: torch.device
) -> OverfitGuard | None:
    if spec.regime != "fat" or not spec.overfit_guard or val_loader is None:
        return None
    for x, y in val_loader:
        return OverfitGuard.for_attack(spec.attack, x.to(device), y.to(device))
    return None


def _length(loader: Iterable) -> int:
    try:
        n = len(loader)  # type: ignore[arg-type]
    except TypeError:
        raise UserError(
            "the training loader has no len(); pass a doublewin BatchLoader or a torch DataLoader"
        ) from None
    if n <= 0:
        raise UserError(
            "the training loader yields no batch; use a smaller batch_size or more training data"
        )
    return int(n)


def _check_finite(spec: TrainSpec, epoch: int, first_bad: torch.Tensor, lr: float) -> None:
    step = int(first_bad.item()) if first_bad.numel() else -1
    if step >= 0:
        _diverged(spec, epoch, step, float("nan"), lr)


def _diverged(spec: TrainSpec, epoch: int, step: int, value: float, lr: float) -> None:
    what = "NaN" if math.isnan(value) else "infinite"
    raise RunFailure(
        f"training loss became {what} in epoch {epoch + 1} at step {step} "
        f"({spec.regime}, lr {lr:.3g}); lower train.lr (e.g. {spec.lr / 10:.3g}) "
        "or add train.warmup_epochs"
    )


def _save(
    path: Path,
    identity: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    run: _Run,
    seconds: float,
) -> None:
    payload = {
        "format": CHECKPOINT_FORMAT,
        **identity,
        "model": cpu_state_dict(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
        "epoch": run.epoch,
        "step": run.step,
        "history": run.history,
        "best": run.best,
        "best_states": run.best_states,
        "guard_best": run.guard_best,
        "last_good": run.last_good,
        "collapsed": run.collapsed,
        "collapse_epoch": run.collapse_epoch,
        "stopped": run.stopped,
        "seconds": seconds,
        "train_seconds": run.train_seconds,
        "images": run.images,
    }
    save_checkpoint(path, payload)


def _resume(
    path: Path,
    identity: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    run: _Run,
    device: torch.device,
) -> None:
    ckpt = load_checkpoint(path, device)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise UserError(
            f"{path}: checkpoint format {ckpt.get('format')!r} is not readable "
            "by this version; delete it to start the run over"
        )
    for key, value in identity.items():
        if ckpt.get(key) != value:
            raise UserError(
                f"{path}: checkpoint of a different run ({key} differs); use a "
                "new work directory or delete the checkpoint to start over"
            )
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    set_rng_state(ckpt["rng"])
    run.epoch, run.step = int(ckpt["epoch"]), int(ckpt["step"])
    run.history, run.best = list(ckpt["history"]), dict(ckpt["best"])
    run.best_states = {
        k: {n: t.cpu() for n, t in v.items()} for k, v in ckpt["best_states"].items()
    }
    run.guard_best = float(ckpt["guard_best"])
    last_good = ckpt["last_good"]
    run.last_good = {n: t.cpu() for n, t in last_good.items()} if last_good else None
    run.collapsed, run.collapse_epoch = bool(ckpt["collapsed"]), ckpt["collapse_epoch"]
    run.stopped = bool(ckpt["stopped"])
    run.seconds, run.train_seconds = float(ckpt["seconds"]), float(ckpt["train_seconds"])
    run.images = int(ckpt["images"])


def _result(model: nn.Module, run: _Run, ckpt_path: Path | None) -> TrainResult:
    last = run.history[-1] if run.history else {}
    metrics = {
        "epochs_run": run.epoch,
        "steps": run.step,
        "best_val_sa": run.best["sa"]["value"],
        "best_val_sa_epoch": run.best["sa"]["epoch"],
        "best_val_ra": run.best["ra"]["value"],
        "best_val_ra_epoch": run.best["ra"]["epoch"],
        "collapsed": run.collapsed,
        "collapse_epoch": run.collapse_epoch,
        "seconds": round(run.seconds, 3),
        "images_per_second": round(run.images / run.train_seconds, 1)
        if run.train_seconds > 0
        else None,
        "final_train_loss": last.get("train_loss"),
        "final_train_acc": last.get("train_acc"),
    }
    return TrainResult(model, dict(run.best_states), list(run.history), metrics, ckpt_path)
