"""What the training loop checks and sets up besides the loop itself: the training attack of a
regime, the FAT overfit guard, the loader's length, and the stop on a non-finite loss."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from doublewin.attacks import PGD, fgsm_rs
from doublewin.core.errors import Diverged, UserError
from doublewin.core.specs import TrainSpec
from doublewin.train.guard import OverfitGuard


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
