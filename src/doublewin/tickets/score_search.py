"""The score search HYDRA and HARP share: the scores (and HARP's keep rates) of a `ScoredModel`
trained on the source task with θp frozen, epoch by epoch, resumable.

SGD on the scores (and rates, and BatchNorm's affine parameters with ``train_bn``) with
momentum and weight decay, the learning rate set per epoch by the authors' cosine rule
lr · ½(1 + cos(π(e − 1)/E)) for the 0-based epoch e, under the robust loss of the spec
(train/robust_loss.py). With a ``budget`` (HARP) the loss adds γ_e · max(kept/target − 1, 0),
γ_e = γ · (e + 1), frozen at the first epoch whose end is within the budget (the authors'
``frozen_gamma``). After every epoch the search's state — scores, rates, BatchNorm state,
optimizer, RNG, history — is written atomically to ``checkpoint``, so a killed search resumes
from its last finished epoch and ends with the same ticket.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from doublewin.core.atomic import atomic_path
from doublewin.core.errors import RunFailure, UserError
from doublewin.core.hashing import canonical
from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.core.seeds import stream
from doublewin.core.ticket_parts import HarpSpec, ScoreSearchSpec
from doublewin.tickets.score_masks import ScoredModel
from doublewin.train.checkpoint import load_checkpoint, rng_state, set_rng_state
from doublewin.train.robust_loss import attack_passes, robust_loss

PENALTY_MET = 4  # the penalty counts as met when it rounds to 0 at this many decimals


class Budget(Protocol):
    """What HARP's penalty reads: the kept share (in the budget's unit) at the given keep rates,
    differentiable in them, and the target share."""

    target: float

    def kept(self, rates: torch.Tensor) -> torch.Tensor: ...


def penalty(budget: Budget, rates: torch.Tensor) -> torch.Tensor:
    """HARP's budget penalty max(kept/target − 1, 0): zero at or under the budget."""
    return torch.clamp(budget.kept(rates) / budget.target - 1.0, min=0.0)


def epoch_lr(spec: ScoreSearchSpec, epoch: int) -> float:
    """The authors' cosine rule for the 0-based ``epoch``."""
    return spec.lr * 0.5 * (1.0 + math.cos((epoch - 1) / spec.epochs * math.pi))


@dataclass
class SearchState:
    """The search between epochs: epochs done, optimizer steps, the per-epoch history, and the
    penalty weight once frozen."""

    epoch: int = 0
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    frozen_gamma: float | None = None

    @property
    def last_loss(self) -> float:
        return float(self.history[-1]["loss"]) if self.history else float("nan")


@dataclass(frozen=True)
class SearchRun:
    """Where one search runs: the source task's batches, the seed of its random starts, the
    device, the checkpoint it resumes from, and its progress."""

    train_loader: Iterable
    seed: int
    device: torch.device
    checkpoint: Path | None = None
    progress: Progress = NULL_PROGRESS


def run_search(
    wrapped: ScoredModel,
    run: SearchRun,
    spec: ScoreSearchSpec,
    facts: dict[str, Any],
    budget: Budget | None = None,
) -> SearchState:
    """Train ``wrapped``'s scores for ``spec.epochs`` epochs; returns the search's state.
    ``facts`` (``method`` and ``sparsity`` first, the method's own besides) are what a
    checkpoint must match, with the spec, the seed and the batches per epoch, to be resumed.
    The global RNG is left as found (the attacks draw from a fork of it)."""
    train_loader, seed, device, checkpoint = run.train_loader, run.seed, run.device, run.checkpoint
    identity = search_identity(spec, **facts, seed=seed, batches=loader_length(train_loader))
    label = " ".join([facts["method"], *facts.get("pattern", "").split()])
    label += f" {100 * facts['sparsity']:.2f}%"
    optimizer = torch.optim.SGD(
        wrapped.trainable(), lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay
    )
    identity = {"identity": json.dumps(identity, sort_keys=True, default=str)}
    devices = [device] if device.type == "cuda" else []
    task = run.progress.task(label, spec.epochs)
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=stream("score-search", seed))))
        state = SearchState()
        if checkpoint is not None and checkpoint.is_file():
            state = _resume(checkpoint, identity, wrapped, optimizer)
            task.advance(state.epoch)
        for epoch in range(state.epoch, spec.epochs):
            _epoch(wrapped, train_loader, optimizer, spec, budget, state, epoch)
            if checkpoint is not None:
                _save(checkpoint, identity, wrapped, optimizer, state)
            task.advance(1, loss=state.last_loss, **_shown(state))
    task.close()
    return state


def _epoch(
    wrapped: ScoredModel,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    spec: ScoreSearchSpec,
    budget: Budget | None,
    state: SearchState,
    epoch: int,
) -> None:
    lr = epoch_lr(spec, epoch)
    for group in optimizer.param_groups:
        group["lr"] = lr
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    gamma = gamma_of(spec, epoch, state.frozen_gamma)
    wrapped.train()
    device = wrapped.scores[0].device
    total, batches = 0.0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        loss = robust_loss(wrapped, x, y, spec)
        objective = loss
        if budget is not None:
            objective = loss + gamma * penalty(budget, wrapped.rates())
        if not torch.isfinite(objective):
            raise RunFailure(
                f"the score search's loss became {float(objective)} at step {state.step}; "
                "lower the method's lr"
            )
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()
        state.step += 1
        total, batches = total + float(loss.detach()), batches + 1
    record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, "loss": total / max(batches, 1)}
    if budget is not None:
        with torch.no_grad():
            rates = wrapped.rates()
            met = round(float(penalty(budget, rates)), PENALTY_MET) == 0.0
            record.update(kept=float(budget.kept(rates)), gamma=gamma, penalty_met=met)
        if met and state.frozen_gamma is None:
            state.frozen_gamma = gamma
    state.history.append(record)
    state.epoch = epoch + 1


def gamma_of(spec: ScoreSearchSpec, epoch: int, frozen: float | None) -> float:
    """HARP's penalty weight in the 0-based ``epoch``: γ·(e + 1), or γ without
    ``gamma_dynamic``; the frozen value once the budget was met."""
    if not isinstance(spec, HarpSpec):
        return 0.0
    if frozen is not None:
        return frozen
    return spec.gamma * (epoch + 1) if spec.gamma_dynamic else spec.gamma


def loader_length(loader: Iterable) -> int:
    """Batches per epoch (0 when the loader cannot tell)."""
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return 0


def search_passes(spec: ScoreSearchSpec, steps: int) -> int:
    """Source forward/backward passes of ``steps`` search steps (attack steps included)."""
    return steps * (1 + attack_passes(spec))


def search_identity(spec: ScoreSearchSpec, **facts: Any) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the method's options and the run's facts."""
    return {"spec": canonical(spec), **facts}


def _shown(state: SearchState) -> dict[str, Any]:
    last = state.history[-1] if state.history else {}
    return {"kept": round(last["kept"], 4)} if "kept" in last else {}


def _save(
    path: Path,
    identity: dict[str, Any],
    wrapped: ScoredModel,
    optimizer: torch.optim.Optimizer,
    state: SearchState,
) -> None:
    payload = {
        **identity,
        "search": wrapped.search_state(),
        "optimizer": optimizer.state_dict(),
        "rng": rng_state(),
        "epoch": state.epoch,
        "step": state.step,
        "history": json.dumps(state.history),
        "frozen_gamma": state.frozen_gamma,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _resume(
    path: Path, identity: dict[str, Any], wrapped: ScoredModel, optimizer: torch.optim.Optimizer
) -> SearchState:
    saved = load_checkpoint(path)
    if saved.get("identity") != identity["identity"]:
        raise UserError(
            f"{path}: the checkpoint of another score search (other options, sparsity or "
            "data); delete it to start the search over"
        )
    wrapped.load_state_dict(saved["search"], strict=False)
    optimizer.load_state_dict(saved["optimizer"])
    set_rng_state(saved["rng"])
    return SearchState(
        epoch=int(saved["epoch"]),
        step=int(saved["step"]),
        history=json.loads(saved["history"]),
        frozen_gamma=saved["frozen_gamma"],
    )
