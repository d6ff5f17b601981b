"""What the training loop checks and sets up besides the loop itself: the training attack of a
regime, the FAT overfit guard, the loader's length, the run's identity and its start (resumed
or seeded), the epoch's running sums, and the stop on a non-finite loss."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from doublewin.attacks import PGD, fgsm_rs
from doublewin.core.errors import Diverged, UserError
from doublewin.core.progress import Progress
from doublewin.core.specs import TrainSpec
from doublewin.core.typed import to_dict
from doublewin.train.checkpoint import RunState, cpu_state_dict, resume_run
from doublewin.train.guard import OverfitGuard
from doublewin.train.schedules import Phase


def training_attack(spec: TrainSpec) -> PGD | None:
    if spec.regime == "std":
        return None
    if spec.regime == "fat":
        return fgsm_rs(spec.attack, spec.fat_alpha)
    return PGD.from_spec(spec.attack)


def make_guard(
    spec: TrainSpec, val_loader: Iterable | None, device: torch.device
) -> OverfitGuard | None:
    if spec.regime != "fat" or not spec.overfit_guard or val_loader is None:
        return None
    for x, y in val_loader:
        return OverfitGuard.for_attack(spec.attack, x.to(device), y.to(device))
    return None


def checked_spec(spec: TrainSpec) -> TrainSpec:
    """``spec``, or one UserError for a combination no optimizer runs."""
    if spec.optimizer == "sgd" and spec.nesterov and spec.momentum <= 0:
        raise UserError("train.nesterov needs train.momentum > 0; set momentum: 0.9")
    return spec


def loader_length(loader: Iterable) -> int:
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


def check_finite(spec: TrainSpec, epoch: int, first_bad: torch.Tensor, lr: float) -> None:
    step = int(first_bad.item()) if first_bad.numel() else -1
    if step >= 0:
        diverged(spec, epoch, step, float("nan"), lr)


def diverged(spec: TrainSpec, epoch: int, step: int, value: float, lr: float) -> None:
    what = "NaN" if math.isnan(value) else "infinite"
    raise Diverged(
        f"training loss became {what} in epoch {epoch + 1} at step {step} "
        f"({spec.regime}, lr {lr:.3g}); lower train.lr (e.g. {spec.lr / 10:.3g}) "
        "or add train.warmup_epochs"
    )


def run_identity(
    spec: TrainSpec,
    steps_per_epoch: int,
    mask: Mapping[str, torch.Tensor] | None,
    phase: Phase | None,
) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the spec, the batches per epoch, the
    weights each mask keeps and the phase."""
    identity = {
        "spec": to_dict(spec),
        "steps_per_epoch": steps_per_epoch,
        "mask_kept": {n: int(torch.as_tensor(m).count_nonzero()) for n, m in (mask or {}).items()},
    }
    if phase is not None:
        identity["phase"] = dataclasses.asdict(phase)
    return identity


def start_run(
    ckpt_path: Path | None,
    identity: dict[str, Any],
    loop: Any,
    seed: int,
    *,
    guard: OverfitGuard | None,
    progress: Progress,
) -> RunState:
    """The run state: resumed from ``ckpt_path`` when it holds this run, else a fresh one
    with the attacks' random starts seeded."""
    run = RunState()
    if ckpt_path is not None and ckpt_path.is_file():
        run = resume_run(ckpt_path, identity, loop.model, loop.optimizer, loop.scheduler)
        if guard is not None:
            guard.best = run.guard_best
        progress.note(
            f"resuming {loop.spec.regime} training after epoch {run.epoch} of "
            f"{loop.spec.epochs} from {ckpt_path}"
        )
    else:
        torch.manual_seed(seed)
    if guard is not None and run.last_good is None:
        run.last_good = cpu_state_dict(loop.model)
    return run


@dataclass
class EpochSums:
    """The epoch's running sums, kept on the device: the loop reads them only every
    ``log_every`` steps and at the end, so CUDA never waits for the host inside it."""

    loss: torch.Tensor
    correct: torch.Tensor
    first_bad: torch.Tensor  # the first step whose loss was not finite (-1: none)
    seen: int = 0

    @classmethod
    def zeros(cls, device: torch.device) -> EpochSums:
        return cls(
            torch.zeros((), device=device),
            torch.zeros((), dtype=torch.long, device=device),
            torch.full((), -1, dtype=torch.long, device=device),
        )

    def means(self) -> tuple[float, float]:
        """The mean loss and the accuracy (points) so far."""
        return self.loss.item() / self.seen, 100.0 * self.correct.item() / self.seen
