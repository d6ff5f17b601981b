"""The engine's own callbacks: what happens between steps and after each epoch of a run.

After every step: the progress bar and the step log (every ``log_every`` steps). After every
epoch, in this order: the FAT overfit guard (a collapsed epoch's weights are discarded, so
they can be neither best), validation with the best-SA and best-RA states, the epoch log, the
caller's callbacks, and last the checkpoint, so it holds everything the epoch did.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from doublewin.core import distributed
from doublewin.core.logs import JsonlLog
from doublewin.core.progress import Progress
from doublewin.core.specs import TrainSpec
from doublewin.train.callbacks import Callback, TrainState
from doublewin.train.checkpoint import RunState, cpu_state_dict, save_run
from doublewin.train.evaluation import evaluate
from doublewin.train.guard import OverfitGuard


class _EpochOnly:
    def on_step_end(self, state: TrainState) -> None:
        pass


class StepProgress:
    """The progress bar, advanced by the batches done, and the JSONL ``step`` lines, each
    time the loop reads the running loss from the device."""

    def __init__(self, task: Any, log: JsonlLog | None, done: int = 0):
        self.task, self.log = task, log
        self.batches = self.advanced = 0  # of the epoch in progress
        if done:
            task.advance(done)

    def on_step_end(self, state: TrainState) -> None:
        self.batches = state.batch
        if state.loss is None:
            return
        self.task.advance(state.batch - self.advanced, loss=state.loss, acc=state.acc)
        self.advanced = state.batch
        if self.log is not None:
            self.log.write(
                "step",
                step=state.step,
                epoch=state.epoch + 1,
                train_loss=state.loss,
                train_acc=state.acc,
                lr=state.lr,
            )

    def on_epoch_end(self, state: TrainState) -> None:
        loss, acc = state.record["train_loss"], state.record["train_acc"]
        self.task.advance(self.batches - self.advanced, loss=loss, acc=acc)
        self.batches = self.advanced = 0


class GuardCheck(_EpochOnly):
    """The FAT overfit guard (guard.py): on a collapse, the last good weights come back and
    the run stops."""

    def __init__(self, guard: OverfitGuard, run: RunState):
        self.guard, self.run = guard, run

    def on_epoch_end(self, state: TrainState) -> None:
        run, guard = self.run, self.guard
        accuracy = guard.accuracy(state.model)
        state.record["guard_ra"] = accuracy
        if guard.collapsed(accuracy):
            run.collapsed, run.collapse_epoch, run.stopped = True, run.epoch, True
            state.record["collapsed"] = True
            assert run.last_good is not None
            state.model.load_state_dict(run.last_good)
            return
        guard.best = max(guard.best, accuracy)
        run.guard_best = guard.best
        run.last_good = cpu_state_dict(state.model)


class Validation(_EpochOnly):
    """Validation SA (and RA with ``spec.val_attack`` when ``spec.val_ra``) every
    ``spec.val_every`` epochs, the last and from ``spec.select_from_epoch`` on; the weights of
    the best epochs are kept in the run state."""

    def __init__(
        self,
        spec: TrainSpec,
        loader: Iterable,
        run: RunState,
        *,
        device: torch.device,
        precision: str,
        progress: Progress,
    ):
        self.spec, self.loader, self.run = spec, loader, run
        self.device, self.precision, self.progress = device, precision, progress

    def on_epoch_end(self, state: TrainState) -> None:
        spec, run = self.spec, self.run
        if state.record.get("collapsed"):
            return  # the guard restored the last good weights: nothing new to validate
        due = run.epoch % spec.val_every == 0 or run.epoch == spec.epochs
        if not due or run.epoch < spec.select_from_epoch:
            return
        result = evaluate(
            state.model,
            self.loader,
            attack=spec.val_attack if spec.val_ra else None,
            device=self.device,
            precision=self.precision,
            progress=self.progress,
            label="validating",
        )
        state.record["val_sa"], state.record["val_ra"] = result["sa"], result["ra"]
        for key in ("sa", "ra"):
            value, best = result[key], run.best[key]
            if value is not None and (best["value"] is None or value > best["value"]):
                run.best[key] = {"value": value, "epoch": run.epoch}
                run.best_states[key] = cpu_state_dict(state.model)


class EpochLog(_EpochOnly):
    """One JSONL ``epoch`` line with the epoch's record."""

    def __init__(self, log: JsonlLog):
        self.log = log

    def on_epoch_end(self, state: TrainState) -> None:
        self.log.write("epoch", step=state.step, **state.record)


class Checkpointing(_EpochOnly):
    """The run's checkpoint after every epoch (rank 0), with the wall time so far."""

    def __init__(
        self,
        path: Path,
        identity: dict[str, Any],
        parts: tuple[Any, Any],
        run: RunState,
    ):
        self.path, self.identity, self.run = path, identity, run
        self.optimizer, self.scheduler = parts
        self.started = time.perf_counter()

    def on_epoch_end(self, state: TrainState) -> None:
        elapsed = self.run.seconds + time.perf_counter() - self.started
        save_run(
            self.path,
            self.identity,
            state.model,
            self.optimizer,
            self.scheduler,
            dataclasses.replace(self.run, seconds=elapsed),
        )


def standard_callbacks(
    spec: TrainSpec,
    run: RunState,
    *,
    task: Any,
    log: JsonlLog | None,
    guard: OverfitGuard | None,
    validation: tuple[Iterable, torch.device, str, Progress] | None,
    checkpoint: tuple[Path, dict[str, Any]] | None,
    parts: tuple[Any, Any],
    callbacks: Sequence[Callback] = (),
) -> list[Callback]:
    """The callbacks of one run, in the order they run (the module doc): the caller's
    ``callbacks`` after the engine's and before the checkpoint. ``validation``: the loader,
    device, precision and progress of validation (None: no validation); ``checkpoint``: the
    file and the run's identity (None: none written); ``parts``: the optimizer and scheduler
    the checkpoint holds."""
    out: list[Callback] = [StepProgress(task, log, done=run.step)]
    if guard is not None:
        out.append(GuardCheck(guard, run))
    if validation is not None:
        loader, device, precision, progress = validation
        out.append(
            Validation(spec, loader, run, device=device, precision=precision, progress=progress)
        )
    if log is not None:
        out.append(EpochLog(log))
    out += list(callbacks)
    if checkpoint is not None and distributed.is_main():
        out.append(Checkpointing(*checkpoint, parts, run))
    return out
