"""The engine's run state and its per-epoch checkpoint: one definition, saved and restored.

`RunState` is everything a resumed run needs besides the model, the optimizer, the scheduler
and the RNG; its fields are the checkpoint's keys, so adding a field adds it to both the file
and the resume. The checkpoint is written atomically and read with ``weights_only=True``: it
holds only tensors and plain containers, so loading it never unpickles code. It also records
the run's identity (spec, batches per epoch, mask counts): a checkpoint of another run is
refused instead of resumed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from doublewin.core.atomic import atomic_path
from doublewin.core.errors import UserError

CHECKPOINT_FORMAT = 1


def _no_best() -> dict[str, dict[str, Any]]:
    return {"sa": {"value": None, "epoch": None}, "ra": {"value": None, "epoch": None}}


@dataclass
class RunState:
    """A training run between epochs. ``best``: the best validation SA/RA (points) and their
    1-based epochs; ``best_states``: the weights at those epochs (CPU); ``guard_best`` and
    ``last_good``: the FAT overfit guard's best accuracy and the weights it restores;
    ``seconds``: wall time, ``train_seconds`` and ``images``: the training steps' share."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, dict[str, Any]] = field(default_factory=_no_best)
    best_states: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    guard_best: float = -1.0
    last_good: dict[str, torch.Tensor] | None = None
    collapsed: bool = False
    collapse_epoch: int | None = None
    stopped: bool = False
    seconds: float = 0.0
    train_seconds: float = 0.0
    images: int = 0

    def metrics(self) -> dict[str, Any]:
        """What a finished run reports (accuracies in points, times in seconds)."""
        last = self.history[-1] if self.history else {}
        rate = self.images / self.train_seconds if self.train_seconds > 0 else None
        return {
            "epochs_run": self.epoch,
            "steps": self.step,
            "best_val_sa": self.best["sa"]["value"],
            "best_val_sa_epoch": self.best["sa"]["epoch"],
            "best_val_ra": self.best["ra"]["value"],
            "best_val_ra_epoch": self.best["ra"]["epoch"],
            "collapsed": self.collapsed,
            "collapse_epoch": self.collapse_epoch,
            "seconds": round(self.seconds, 3),
            "images_per_second": None if rate is None else round(rate, 1),
            "final_train_loss": last.get("train_loss"),
            "final_train_acc": last.get("train_acc"),
        }


def save_run(
    path: Path,
    identity: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    run: RunState,
) -> None:
    """Write the checkpoint of ``run`` atomically (never half-written)."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        **identity,
        "model": cpu_state_dict(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
        **{f.name: getattr(run, f.name) for f in dataclasses.fields(run)},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def resume_run(
    path: Path,
    identity: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
) -> RunState:
    """Restore model, optimizer, scheduler and RNG from ``path``; returns the run state.

    A damaged file, another format version or another run's checkpoint is a UserError."""
    ckpt = load_checkpoint(path)
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
    optimizer.load_state_dict(ckpt["optimizer"])  # moves its tensors to the parameters' device
    scheduler.load_state_dict(ckpt["scheduler"])
    set_rng_state(ckpt["rng"])
    return RunState(**{f.name: ckpt[f.name] for f in dataclasses.fields(RunState)})


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint onto the CPU; a damaged file is a UserError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(
            f"{path}: cannot read the training checkpoint ({type(exc).__name__}); "
            "delete it to start the run over"
        ) from None


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def cpu_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the model's state on the CPU, in contiguous memory format."""
    return {
        k: v.detach().to("cpu", memory_format=torch.contiguous_format, copy=True)
        for k, v in model.state_dict().items()
    }
