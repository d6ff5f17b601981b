"""The SuperTickets search: one training run of a supernet in which the γ-L1 penalty shrinks the
architecture and, for a two-in-one run, progressive pruning sparsifies its weights.

The run is cut into phases at the epochs where something happens (a shrink check every
``shrink_interval`` epochs, a prune every ``prune_interval``, the end): each phase is one call
of the training engine, with the whole run's learning-rate schedule (train.schedules.Phase),
the mask of the moment and the γ-L1 penalty with its warm-up. Between phases the network is
shrunk (shrink.py) and pruned (progressive.py), and the search is saved, so a killed search
resumes from its last phase boundary (and inside a phase from the engine's epoch checkpoint)
to the same ticket. Momentum buffers start again at each phase (the authors carry them through a
shrink); docs/paper.md lists it.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from doublewin.core import paths
from doublewin.core.atomic import atomic_path
from doublewin.core.logs import JsonlLog
from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.core.specs import TicketSpec
from doublewin.models.supernet import path_key
from doublewin.models.supernets import build_supernet, gates, searchable_cells
from doublewin.tickets.mask import Mask
from doublewin.tickets.progressive import prune_globally, step_sparsity
from doublewin.tickets.shrink import (
    SearchMasks,
    channel_macs,
    dead_channels,
    dead_macs,
    mac_penalties,
    rho_at,
    shrink,
)
from doublewin.train import train
from doublewin.train.schedules import Phase


@dataclass
class Search:
    """A search between two phases: the masks, the epochs done, the prunes taken and what
    happened at each boundary (``events``: shrinks and prunes, for the ticket's record)."""

    masks: SearchMasks
    epoch: int = 0
    prunes: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)


def run_search(
    model: nn.Module,
    spec: TicketSpec,
    target: float | None,
    *,
    folder: Path,
    train_loader: Any,
    device: torch.device,
    progress: Progress = NULL_PROGRESS,
    log: JsonlLog | None = None,
) -> tuple[nn.Module, Search]:
    """Search ``model`` (the supernet at θp) for ``spec.supertickets.epochs`` epochs in ``folder``;
    ``target``: the sparsity a two-in-one run prunes to (None: the γ-L1 search alone, as
    search-then-prune's first step). Returns the shrunk, pruned network and its search."""
    st = spec.supertickets
    total = st.epochs
    # The penalties are the supernet's, fixed for the run (HR-NAS computes them once).
    penalties, per_channel = mac_penalties(model), channel_macs(model)
    restored = _restore(folder, device)
    if restored is not None:
        model, search = restored
        progress.note(f"SuperTickets: resuming the search after epoch {search.epoch} of {total}")
    else:
        masks = SearchMasks(Mask.dense(model, spec.scope), {}, _origins(model))
        search = Search(masks)
    while search.epoch < total:
        start = search.epoch
        end = _next_boundary(start, total, st.shrink_interval, st.prune_interval, target)
        steps = len(train_loader)
        phase_spec = dataclasses.replace(spec.train, epochs=end - start, select_from_epoch=1)
        train(
            model,
            phase_spec,
            train_loader,
            None,
            mask=search.masks.mask,
            workdir=folder / paths.phase_dir(start),
            device=device,
            seed=spec.seed + start,
            progress=progress,
            log=log,
            phase=Phase(start, total),
            penalty=_penalty(model, penalties, spec, start * steps, steps),
        )
        search.epoch = end
        _boundary(model, spec, search, target, per_channel, log)
        _save(folder, model, search)
        shutil.rmtree(folder / paths.phase_dir(start), ignore_errors=True)
    return model, search


def _next_boundary(
    epoch: int, total: int, shrink_interval: int, prune_interval: int, target: float | None
) -> int:
    """The next epoch after ``epoch`` at which the network is checked for shrinking or (when
    there is a ``target``) pruned, or the last."""
    intervals = (shrink_interval,) + ((prune_interval,) if target is not None else ())
    return min([total] + [(epoch // i + 1) * i for i in intervals])


def _penalty(
    model: nn.Module,
    penalties: dict[tuple[str, int], float],
    spec: TicketSpec,
    offset: int,
    steps_per_epoch: int,
) -> Callable[[int], torch.Tensor]:
    """ρ(step) × Σ penalty × Σ|γ| over the paths of the network as it is in this phase."""
    terms = [(penalties[p], bn.weight) for p, bn in gates(model).items()]

    def penalty(step: int) -> torch.Tensor:
        rho = rho_at(spec.supertickets, offset + step, steps_per_epoch)
        total = sum(weight * gamma.abs().sum() for weight, gamma in terms)
        return rho * total  # type: ignore[return-value]

    return penalty


def _boundary(
    model: nn.Module,
    spec: TicketSpec,
    search: Search,
    target: float | None,
    per_channel: dict[tuple[str, int], float],
    log: JsonlLog | None,
) -> None:
    """Shrink, then prune, as due at the epoch ``search.epoch`` (the authors' order)."""
    st, epoch, last = spec.supertickets, search.epoch, search.epoch == spec.supertickets.epochs
    event: dict[str, Any] = {"epoch": epoch}
    if epoch % st.shrink_interval == 0 or last:
        dead = dead_channels(model, st.shrink_threshold)
        macs = dead_macs(dead, per_channel)
        event["dead_macs"] = macs
        if any(bool(d.any()) for d in dead.values()) and (macs >= st.shrink_min_macs or last):
            channels, removed = shrink(
                model, st.shrink_threshold, search.masks, reuse_mask=st.reuse_mask
            )
            event.update(shrunk_channels=channels, removed_paths=removed)
    if target is not None and (last or epoch % st.prune_interval == 0):
        if not last:
            search.prunes += 1
        sparsity = target if last else step_sparsity(search.prunes, st.prune_step, target)
        regrown = prune_globally(
            model, search.masks, sparsity, scope=spec.scope, regrowth=st.regrowth
        )
        event.update(prune=sparsity, regrown=regrown, final=last)
    search.events.append(event)
    if log is not None:
        log.write("supertickets", step=epoch, **event)


def _origins(model: nn.Module) -> dict[tuple[str, int], torch.Tensor]:
    """Each path's hidden channels as channels of the supernet (all of them, at the start)."""
    return {p: torch.arange(bn.num_features) for p, bn in gates(model).items()}


def _save(folder: Path, model: nn.Module, search: Search) -> None:
    """The search between phases, atomically; tensors and plain values only."""
    masks = search.masks
    state = {
        "description": json.dumps(model.describe()),  # type: ignore[operator]
        "weights": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "mask": {k: v.cpu() for k, v in masks.mask.items()},
        "dormant": {k: v.cpu() for k, v in masks.dormant.items()},
        "pruned": {k: v.cpu() for k, v in masks.pruned.items()},
        "origin": {f"{name}|{k}": v for (name, k), v in masks.origin.items()},
        "epoch": search.epoch,
        "prunes": search.prunes,
        "events": json.dumps(search.events),
    }
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / paths.SEARCH_STATE) as tmp:
        torch.save(state, tmp)


def _restore(folder: Path, device: torch.device) -> tuple[nn.Module, Search] | None:
    path = folder / paths.SEARCH_STATE
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = build_supernet(json.loads(state["description"]))
    model.load_state_dict(state["weights"])
    model.to(device)
    origin = {}
    for key, value in state["origin"].items():
        name, _, k = key.rpartition("|")
        origin[(name, int(k))] = value
    masks = SearchMasks(
        Mask({k: v.to(device) for k, v in state["mask"].items()}),
        {k: v.to(device) for k, v in state["dormant"].items()},
        origin,
        {k: v.to(device) for k, v in state["pruned"].items()},
    )
    return model, Search(masks, state["epoch"], state["prunes"], json.loads(state["events"]))


def supernet_channels(model: nn.Module, masks: SearchMasks) -> dict[str, list[int]]:
    """``cells.3.paths.k5`` → the supernet channels that path's hidden channels are."""
    out = {}
    for name, cell in searchable_cells(model):
        for k in cell.kernels():
            out[f"{name}.paths.{path_key(k)}"] = [int(i) for i in masks.origin[(name, k)]]
    return out
