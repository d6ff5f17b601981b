"""Iterative magnitude pruning (IMP) with rewinding, one saved rung per round.

A round trains m ⊙ θ on the source task (ST or AT, the training engine), prunes
``prune_rate`` of the still-kept weights by global magnitude, and rewinds the weights to the
rewind target: θp (``rewind_to: pretrained``, the paper) or θ after ``rewind_steps`` training
steps of the first trained round (``rewind_to: step``). ``order: official`` reproduces the
official script: θp itself is pruned by magnitude once before the first training round, so
rung 1 costs no training.

Every rung is written as a ticket file (``rung-KK.safetensors``) the moment it is reached, and
each round trains in its own folder with the engine's per-epoch checkpoint, so a killed run
continues inside the round it was in and never redoes a finished rung. The folder (the trunk)
does not depend on the number of rounds: asking for more rounds later continues the same
trunk.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from doublewin.core import paths
from doublewin.core.atomic import atomic_path
from doublewin.core.logs import JsonlLog
from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.core.specs import TicketSpec
from doublewin.tickets.files import load_ticket, save_ticket
from doublewin.tickets.mask import Mask
from doublewin.tickets.pruning import magnitude_scores, prune_fraction_of_remaining
from doublewin.tickets.ticket import Ticket
from doublewin.train import train

RUNG_FILE = re.compile(paths.RUNG_PATTERN)

# make_ticket(mask, round_index) -> Ticket: the caller knows the metadata (arch, hashes).
TicketMaker = Callable[[Mask, int], Ticket]


def rung_path(trunk: Path, k: int) -> Path:
    return trunk / paths.rung(k)


def finished_rungs(trunk: Path) -> list[int]:
    """Round numbers (1-based) whose ticket files exist, ascending."""
    if not trunk.is_dir():
        return []
    return sorted(int(m.group(1)) for p in trunk.iterdir() if (m := RUNG_FILE.match(p.name)))


class _CaptureAfterSteps:
    """Engine callback that keeps a copy of the weights after ``steps`` optimizer steps."""

    def __init__(self, steps: int):
        self.steps = steps
        self.state: dict[str, torch.Tensor] | None = None

    def on_step_end(self, state: Any) -> None:
        if self.state is None and state.step == self.steps:
            self.state = {k: v.detach().cpu().clone() for k, v in state.model.state_dict().items()}

    def on_epoch_end(self, state: Any) -> None:
        pass


def run_imp(
    model: nn.Module,
    spec: TicketSpec,
    rounds: int,
    *,
    trunk: Path,
    make_loaders: Callable[[], tuple[Any, Any]],
    make_ticket: TicketMaker,
    device: torch.device,
    scope_mask: Mask,
    progress: Progress = NULL_PROGRESS,
    log: JsonlLog | None = None,
    prune: Callable[[dict[str, torch.Tensor], Mask, int], Mask] | None = None,
) -> list[Path]:
    """Run IMP on ``model`` (holding θp) up to ``rounds`` rungs; returns the rung files.

    ``make_loaders()`` gives (train, val) loaders of the source task (called only when a
    round needs training); ``scope_mask`` is the dense mask over the parameters to prune;
    ``prune(weights, mask, k)`` the next rung's mask after round k (default: ``prune_rate``
    of the kept weights by global magnitude; channel and N:M tickets: patterned.py).
    """
    trunk.mkdir(parents=True, exist_ok=True)
    theta_p = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    rewind_state = _load_rewind(trunk) if spec.rewind_to == "step" else theta_p
    done = [k for k in finished_rungs(trunk) if k <= rounds]
    mask = load_ticket(rung_path(trunk, done[-1])).mask if done else scope_mask.clone()
    start = (done[-1] + 1) if done else 1
    if done:
        progress.note(
            f"IMP: rungs 1–{done[-1]} already found in {trunk}; continuing at round {start}"
        )
    loaders: tuple[Any, Any] | None = None
    task = progress.task(f"IMP {spec.train.regime}", rounds)
    task.advance(start - 1)
    for k in range(start, rounds + 1):
        if spec.order == "official" and k == 1:
            weights = theta_p  # prune θp itself once before any training
        else:
            if loaders is None:
                loaders = make_loaders()
            weights, rewind_state = _train_round(
                model,
                spec,
                k,
                mask,
                loaders,
                rewind_state if rewind_state is not None else theta_p,
                rewind_state is None,
                trunk=trunk,
                device=device,
                progress=progress,
                log=log,
            )
        if prune is not None:
            mask = prune(weights, mask, k)
        else:
            mask = prune_fraction_of_remaining(
                magnitude_scores(weights, mask), mask, spec.prune_rate
            )
        save_ticket(rung_path(trunk, k), make_ticket(mask, k))
        _clean_round(trunk / paths.imp_round_dir(k))
        if log is not None:
            log.write("rung", step=k, round=k, sparsity=mask.sparsity)
        task.advance(1, sparsity=mask.sparsity)
    task.close()
    _load(model, theta_p, device)
    return [rung_path(trunk, k) for k in range(1, rounds + 1)]


def _train_round(
    model: nn.Module,
    spec: TicketSpec,
    k: int,
    mask: Mask,
    loaders: tuple[Any, Any],
    start: dict[str, torch.Tensor],
    capturing: bool,
    *,
    trunk: Path,
    device: torch.device,
    progress: Progress,
    log: JsonlLog | None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
    """Round ``k``: train from ``start`` (the rewind point) under ``mask``. Returns the trained
    weights and the rewind state: with ``rewind_to: step`` the one this round captured when
    ``capturing`` (none was saved yet), else ``start`` itself when it is the saved one."""
    _load(model, start, device)
    capture = (
        _CaptureAfterSteps(spec.rewind_steps) if spec.rewind_to == "step" and capturing else None
    )
    result = train(
        model,
        spec.train,
        loaders[0],
        loaders[1],
        mask=mask,
        workdir=trunk / paths.imp_round_dir(k),
        device=device,
        seed=spec.seed + k,
        progress=progress,
        callbacks=(capture,) if capture else (),
        log=log,
    )
    rewind_state = None if capturing else start
    if capture is not None:
        rewind_state = capture.state or {
            k2: v.detach().cpu().clone() for k2, v in model.state_dict().items()
        }
        _save_rewind(trunk, rewind_state)
    weights = {n: p.detach().cpu() for n, p in model.state_dict().items()}
    if log is not None:
        log.write(
            "imp_round",
            step=k,
            round=k,
            best_val_sa=result.metrics.get("best_val_sa"),
            best_val_ra=result.metrics.get("best_val_ra"),
        )
    return weights, rewind_state


def _load(model: nn.Module, state: dict[str, torch.Tensor], device: torch.device) -> None:
    model.load_state_dict({k: v.to(device) for k, v in state.items()})


def _save_rewind(trunk: Path, state: dict[str, torch.Tensor]) -> None:
    with atomic_path(trunk / paths.REWIND_STATE) as tmp:
        torch.save(state, tmp)


def _load_rewind(trunk: Path) -> dict[str, torch.Tensor] | None:
    path = trunk / paths.REWIND_STATE
    return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None


def _clean_round(folder: Path) -> None:
    """A finished round's training checkpoint is no longer needed (its rung file is)."""
    checkpoint = folder / paths.CHECKPOINT
    if checkpoint.is_file():
        checkpoint.unlink()
