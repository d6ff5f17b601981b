"""SuperTickets' ladders: each rung is its own ticket, with its own network.

``supertickets`` (two-in-one, You et al. ECCV 2022): per target sparsity, one search of the
supernet at θp that shrinks the architecture and prunes the weights together (search.py), ending
with a prune to exactly the target. ``search-then-prune`` (the baseline it claims to beat): one
γ-L1 search without pruning, then per rung the searched network shrunk to the MACs of the
SuperTicket at that rung (the channels of lowest |γ| first, HR-NAS's
``cal_mask_network_slimming_by_flops``) and pruned to the rung by the tickets spec's IMP:
``prune_rate`` of the kept weights per round of ``train.epochs``, rewinding to the shrunk
network's weights, the last round to exactly the target.

Each rung is written as two files: the network (``paths.network``: a weights file whose
``extra.architecture`` is the shrunk description, its pruned weights at zero) and the ticket
(``paths.ticket``: the mask over that network's covered weights, with the architecture, the
supernet channels each path kept, and the MACs in its ``extra``). Its sparsity is that of the
network's covered weights, the authors' ratio.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from doublewin.core import paths
from doublewin.core.errors import UserError
from doublewin.core.logs import JsonlLog
from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.core.specs import TicketSpec
from doublewin.models import WeightsMeta, get_normalization, head_module, save_weights
from doublewin.models.supernet import network_macs
from doublewin.models.supernets import gates, is_supernet
from doublewin.tickets.files import load_ticket, save_ticket
from doublewin.tickets.imp import run_imp
from doublewin.tickets.ladder import ticket_ladder
from doublewin.tickets.macs import model_macs
from doublewin.tickets.mask import Mask
from doublewin.tickets.pruning import (
    magnitude_scores,
    prune_fraction_of_remaining,
    prune_to_sparsity,
)
from doublewin.tickets.search import Search, run_search, supernet_channels
from doublewin.tickets.shrink import SearchMasks, channel_macs, shrink
from doublewin.tickets.ticket import Ticket, make_info
from doublewin.train import evaluate, train
from doublewin.train.batchnorm import recalibrate_bn

Loaders = Callable[[], tuple[Any, Any]]
SOURCE_BN_BATCHES = 10  # the authors' bn_calibration_steps before each validation


def draw_network_tickets(
    spec: TicketSpec,
    model: nn.Module,
    arch: str,
    loaders: Loaders,
    *,
    workdir: Path,
    recorded: dict[str, Any],
    device: torch.device,
    reference: Path | None = None,
    progress: Progress = NULL_PROGRESS,
    log: JsonlLog | None = None,
) -> list[Path]:
    """The ticket files of ``spec``'s ladder (each with its network beside it), drawn from
    ``model`` (the supernet holding θp); ``reference``: for search-then-prune, the folder of
    the SuperTickets whose MACs its rungs match."""
    if not is_supernet(model):
        raise UserError(
            f"tickets.method {spec.method} searches a supernet; {arch} is not one: pre-train "
            "supernet8, supernet_cifar or supernet_imagenet (doublewin models)"
        )
    writer = _RungWriter(spec, arch, workdir, recorded, loaders, device)
    if not all(writer.done(t) for t in ticket_ladder(spec)):
        writer.loaded()  # first: a source task of other classes gives θp its head here
    writer.supernet = model.describe()  # type: ignore[operator]
    writer.supernet_covered = Mask.dense(model, spec.scope).num_total
    if spec.method == "supertickets":
        return _two_in_one(spec, model, writer, progress, log)
    return _search_then_prune(spec, model, writer, _reference_macs(spec, reference), progress, log)


def _two_in_one(
    spec: TicketSpec, model: nn.Module, writer: _RungWriter, progress: Progress, log: Any
) -> list[Path]:
    out = []
    for target in ticket_ladder(spec):
        if not writer.done(target):
            folder = writer.workdir / paths.search_dir(target)
            net, search = run_search(
                copy.deepcopy(model),
                spec,
                target,
                folder=folder,
                train_loader=writer.loaded()[0],
                device=writer.device,
                progress=progress,
                log=log,
            )
            if spec.supertickets.retrain_epochs:
                retrain = dataclasses.replace(
                    spec.train, epochs=spec.supertickets.retrain_epochs, select_from_epoch=1
                )
                train(
                    net,
                    retrain,
                    writer.loaded()[0],
                    None,
                    mask=search.masks.mask,
                    workdir=folder / paths.TRAIN_DIR,
                    device=writer.device,
                    seed=spec.seed,
                    progress=progress,
                    log=log,
                )
            record = _search_record(net, search, search.masks)
            writer.write(net, search.masks.mask, target, record)
            shutil.rmtree(folder, ignore_errors=True)
        out.append(writer.workdir / paths.ticket(target))
    return out


def _search_then_prune(
    spec: TicketSpec,
    model: nn.Module,
    writer: _RungWriter,
    budgets: dict[float, int],
    progress: Progress,
    log: Any,
) -> list[Path]:
    targets = ticket_ladder(spec)
    if all(writer.done(t) for t in targets):
        return [writer.workdir / paths.ticket(t) for t in targets]
    searched, search = run_search(
        copy.deepcopy(model),
        spec,
        None,
        folder=writer.workdir / paths.search_dir(None),
        train_loader=writer.loaded()[0],
        device=writer.device,
        progress=progress,
        log=log,
    )
    per_channel = channel_macs(searched)
    out = []
    for target in targets:
        if not writer.done(target):
            net, masks = copy.deepcopy(searched), copy.deepcopy(search.masks)
            threshold = slimming_threshold(net, per_channel, budgets[target])
            if threshold is not None:
                shrink(net, threshold, masks, reuse_mask=True)
            mask = _imp_to(spec, net, target, writer, progress, log)
            # The channels this rung's network kept: the search's, less the budget's cut.
            record = {**_search_record(net, search, masks), "macs_budget": budgets[target]}
            writer.write(net, mask, target, record)
        out.append(writer.workdir / paths.ticket(target))
    # Every rung is written: the shared search's state is no longer needed.
    shutil.rmtree(writer.workdir / paths.search_dir(None), ignore_errors=True)
    return out


def slimming_threshold(
    model: nn.Module, per_channel: dict[tuple[str, int], float], budget: int
) -> float | None:
    """The |γ| at or under which removing every channel brings ``model`` to at most ``budget``
    MACs: channels go in ascending |γ| until the MACs removed reach the excess (HR-NAS's
    ``cal_mask_network_slimming_by_flops``). None when the network is within budget."""
    excess = network_macs(model.describe()) - budget  # type: ignore[operator]
    if excess <= 0:
        return None
    values, costs = [], []
    for p, bn in gates(model).items():
        values.append(bn.weight.detach().abs().cpu())
        costs.append(torch.full((bn.num_features,), per_channel[p], dtype=torch.float64))
    order = torch.argsort(torch.cat(values), stable=True)
    removed = torch.cumsum(torch.cat(costs)[order], 0)
    reach = int(torch.nonzero(removed >= excess)[0]) if bool((removed >= excess).any()) else -1
    return float(torch.cat(values)[order][reach])


def _imp_to(
    spec: TicketSpec,
    net: nn.Module,
    target: float,
    writer: _RungWriter,
    progress: Progress,
    log: Any,
) -> Mask:
    """IMP on ``net`` to exactly ``target``: rounds of ``prune_rate`` rewinding to ``net``'s
    weights, the last round to the target."""
    rounds = rounds_to(target, spec.prune_rate)
    imp_spec = dataclasses.replace(spec, rewind_to="pretrained", order="train-first")

    def prune(weights: dict[str, torch.Tensor], mask: Mask, k: int) -> Mask:
        scores = magnitude_scores(weights, mask)
        if k < rounds:
            return prune_fraction_of_remaining(scores, mask, spec.prune_rate)
        return prune_to_sparsity(scores, mask, target)

    def rung(mask: Mask, k: int) -> Ticket:
        return Ticket(mask, make_info(mask, arch=writer.arch, method="imp", weights_hash=""))

    trunk = writer.workdir / paths.imp_dir(target)
    rungs = run_imp(
        net,
        imp_spec,
        rounds,
        trunk=trunk,
        make_loaders=writer.loaded,
        make_ticket=rung,
        device=writer.device,
        scope_mask=Mask.dense(net, spec.scope),
        progress=progress,
        log=log,
        prune=prune,
    )
    mask = load_ticket(rungs[-1]).mask.to(writer.device)
    mask.apply_to(net)
    shutil.rmtree(trunk, ignore_errors=True)
    return mask


def rounds_to(target: float, prune_rate: float) -> int:
    """IMP rounds search-then-prune takes to ``target``: enough rounds of ``prune_rate`` to
    reach it, the last one pruning to exactly the target."""
    return max(1, math.ceil(math.log(1 - target) / math.log(1 - prune_rate) - 1e-9))


def source_trainings(spec: TicketSpec) -> list[tuple[int, int]]:
    """The training runs a tickets job of a network method does, as (epochs, how many): the
    dry run's cost. Two-in-one: one search (and its retraining) per rung; search-then-prune:
    one search, then per rung its IMP rounds of ``train.epochs``."""
    st, rungs = spec.supertickets, ticket_ladder(spec)
    if spec.method == "supertickets":
        return [(st.epochs + st.retrain_epochs, len(rungs))]
    rounds = sum(rounds_to(t, spec.prune_rate) for t in rungs)
    return [(st.epochs, 1), (spec.train.epochs, rounds)]


def _reference_macs(spec: TicketSpec, reference: Path | None) -> dict[float, int]:
    """Target sparsity → the MACs of the SuperTicket at that rung in ``reference``."""
    if reference is None or not Path(reference).is_dir():
        raise UserError(
            "search-then-prune shrinks each rung to the MACs of the SuperTicket at that rung; "
            "set macs_of to the folder of a finished supertickets run (--set macs_of=DIR)"
        )
    budgets = {}
    for target in ticket_ladder(spec):
        path = Path(reference) / paths.ticket(target)
        if not path.is_file():
            raise UserError(
                f"{reference}: no SuperTicket at sparsity {target:.4f} to match the MACs of; "
                "draw supertickets at the same sparsities first"
            )
        budgets[target] = int(load_ticket(path).info.extra["macs"])
    return budgets


def _search_record(net: nn.Module, search: Search, masks: SearchMasks) -> dict[str, Any]:
    return {"supernet_channels": supernet_channels(net, masks), "events": search.events}


class _RungWriter:
    """Writes one rung's network and ticket, with what both record; holds the source loaders
    (made once, on first use)."""

    def __init__(
        self,
        spec: TicketSpec,
        arch: str,
        workdir: Path,
        recorded: dict[str, Any],
        loaders: Loaders,
        device: torch.device,
    ) -> None:
        self.spec, self.arch, self.workdir = spec, arch, Path(workdir)
        self.recorded, self.make_loaders, self.device = recorded, loaders, device
        self.supernet: dict[str, Any] = {}
        self.supernet_covered = 0
        self._loaders: tuple[Any, Any] | None = None

    def loaded(self) -> tuple[Any, Any]:
        if self._loaders is None:
            self._loaders = self.make_loaders()
        return self._loaders

    def done(self, target: float) -> bool:
        ticket = self.workdir / paths.ticket(target)
        return ticket.is_file() and (self.workdir / paths.network(target)).is_file()

    def write(self, net: nn.Module, mask: Mask, target: float, record: dict[str, Any]) -> None:
        description = net.describe()  # type: ignore[operator]
        size = int(description["input_size"])
        mean, std = get_normalization(net)
        meta = WeightsMeta(
            arch=self.arch,
            num_classes=head_module(net).out_features,
            mean=mean,
            std=std,
            input_size=size,
            dataset=self.spec.data.name,
            regime=self.spec.train.regime,
            source=self.spec.method,
            extra={"architecture": description},
        )
        network_hash = save_weights(self.workdir / paths.network(target), net, meta)
        macs, kept_macs = model_macs(net, size, mask)
        extra = {
            "network": paths.network(target),
            "architecture": description,
            "macs": macs,
            "kept_macs": kept_macs,
            "supernet_macs": network_macs(self.supernet),
            "supernet_sparsity": 1 - mask.num_kept / self.supernet_covered,
            "source_sa": self.source_sa(net),
            **record,
        }
        info = make_info(
            mask,
            arch=self.arch,
            method=self.spec.method,
            weights_hash=network_hash,
            target_sparsity=target,
            scope=self.spec.scope,
            spec=self.recorded,
            extra=extra,
        )
        save_ticket(self.workdir / paths.ticket(target), Ticket(mask, info))

    def source_sa(self, net: nn.Module) -> float:
        """SA on the source validation split, BatchNorm re-estimated on a copy first (the
        authors validate so: ``bn_calibration_steps``)."""
        train_loader, val_loader = self.loaded()
        probe = copy.deepcopy(net)
        recalibrate_bn(probe, train_loader, SOURCE_BN_BATCHES, device=self.device)
        return float(evaluate(probe, val_loader, device=self.device)["sa"])
