"""`find_tickets`: one ticket file per requested sparsity, by any method, from a weights file.

Every method scores the pre-trained weights θp themselves (nothing is re-initialized):
``imp`` (iterative magnitude pruning with rewinding, imp.py), ``omp`` (one-shot global
magnitude), ``random`` (global uniform, seeded), ``snip`` and ``grasp`` (gradient scores on
``score_batches`` source batches; on PGD examples when ``train.regime`` is ``at``),
``synflow`` (data-free, iterative), ``gem-miner`` (score search on frozen θp), and the
robust-pruning methods ``hydra``, ``harp`` and ``lwm`` (learned.py). ``supertickets`` and
``search-then-prune`` train a supernet from θp and write each rung's own network beside its
ticket (supertickets.py).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from doublewin.core import paths
from doublewin.core.errors import UserError
from doublewin.core.hashing import spec_hash
from doublewin.core.logs import JsonlLog
from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.core.specs import TicketSpec
from doublewin.core.ticket_parts import NETWORK_METHODS, OWN_OPTIONS
from doublewin.core.typed import to_dict
from doublewin.data import stage_data
from doublewin.models import load_model, replace_head
from doublewin.tickets.drawing import Draw, Source
from doublewin.tickets.files import save_ticket
from doublewin.tickets.imp import run_imp
from doublewin.tickets.ladder import check_rungs, imp_ladder, imp_rounds, ticket_ladder
from doublewin.tickets.learned import (
    LEARNED_METHODS,
    gem_miner_tickets,
    learned_tickets,
    source_attack,
)
from doublewin.tickets.mask import Mask
from doublewin.tickets.patterned import Pattern, nm_scope
from doublewin.tickets.pruning import magnitude_scores, prune_to_sparsity
from doublewin.tickets.scores import grasp_scores, random_scores, snip_scores
from doublewin.tickets.supertickets import draw_network_tickets
from doublewin.tickets.synflow import synflow_mask


def trunk_key(spec: TicketSpec) -> str:
    """Identity of an IMP run without its length, so more rounds continue the same trunk:
    the canonical hash of the spec with ``rounds`` and ``sparsities`` at their defaults, so a
    new spec field with a neutral default leaves every trunk where it is."""
    defaults = TicketSpec()
    return spec_hash(
        "imp-trunk",
        dataclasses.replace(spec, rounds=defaults.rounds, sparsities=defaults.sparsities),
    )


def find_tickets(
    spec: TicketSpec,
    weights_path: str | Path,
    *,
    workdir: str | Path,
    device: str | torch.device = "cpu",
    progress: Progress = NULL_PROGRESS,
    data_root: str | Path | None = None,
    log: JsonlLog | None = None,
    trunk: str | Path | None = None,
    reference: str | Path | None = None,
) -> list[Path]:
    """Write one ticket per target sparsity into ``workdir``; returns their paths (ascending).

    ``trunk`` (IMP only): folder for the rungs, shared by runs that differ only in the number of
    rounds (default ``workdir/imp-trunk``). ``reference`` (search-then-prune only): the folder
    of the SuperTickets whose MACs its rungs match (default: ``spec.macs_of``).
    """
    device = torch.device(device)
    model, meta = load_model(weights_path, device=device)

    def loaders() -> tuple[Any, Any]:
        train_loader, val_loader, _, info = stage_data(
            spec, resolution_default=meta.input_size, device=device, root=data_root
        )
        if info.num_classes != meta.num_classes:
            # θp's head belongs to another task: a fresh head for the source task at hand.
            replace_head(model, info.num_classes, seed=spec.seed)
            model.to(device)
        return train_loader, val_loader

    source = Source(meta.arch, meta.content_hash, int(spec.data.resolution or meta.input_size))
    return draw_tickets(
        spec,
        model,
        source,
        loaders,
        workdir=workdir,
        device=device,
        progress=progress,
        log=log,
        trunk=trunk,
        reference=reference,
    )


def draw_tickets(
    spec: TicketSpec,
    model: torch.nn.Module,
    source: Source,
    loaders: Callable[[], tuple[Any, Any]],
    *,
    workdir: str | Path,
    device: str | torch.device = "cpu",
    progress: Progress = NULL_PROGRESS,
    log: JsonlLog | None = None,
    trunk: str | Path | None = None,
    reference: str | Path | None = None,
) -> list[Path]:
    """`find_tickets` on a model already built (holding θp, on ``device``): ``loaders()``
    gives the source task's (train, val) loaders when a method needs data."""
    device = torch.device(device)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    spec, left_out = nm_scope(spec, model)
    if left_out:
        progress.note(
            f"N:M {spec.nm[0]}:{spec.nm[1]} leaves dense the layers whose input size is not a "
            f"multiple of {spec.nm[1]}: {', '.join(left_out)}"
        )
    scope_mask = Mask.dense(model, spec.scope)
    check_rungs(spec, scope_mask.num_total, source.arch)
    pattern = Pattern.of(spec, model, scope_mask, source.input_size)
    draw = Draw(
        spec,
        model,
        source,
        loaders,
        workdir,
        device,
        progress,
        log,
        scope_mask,
        pattern,
        recorded_spec(spec),
    )
    if spec.method in NETWORK_METHODS:
        return draw_network_tickets(
            spec,
            model,
            source.arch,
            loaders,
            workdir=workdir,
            recorded=draw.recorded,
            device=device,
            reference=Path(reference or spec.macs_of) if (reference or spec.macs_of) else None,
            progress=progress,
            log=log,
        )
    if spec.method == "imp":
        return _imp_tickets(draw, Path(trunk) if trunk else workdir / paths.IMP_TRUNK_DIR)
    targets = ticket_ladder(spec)
    if spec.method in ("omp", "random", "snip", "grasp"):
        return _one_shot_tickets(draw, targets)
    if spec.method == "synflow":
        return _synflow_tickets(draw, targets)
    if spec.method in LEARNED_METHODS:
        return learned_tickets(draw, targets)
    if spec.method == "gem-miner":
        return gem_miner_tickets(draw, targets)
    raise UserError(
        f"tickets.method {spec.method!r}: use imp, omp, random, snip, grasp, synflow, gem-miner, "
        "supertickets, search-then-prune, hydra, harp or lwm"
    )


def _imp_tickets(draw: Draw, trunk: Path) -> list[Path]:
    """IMP's rungs, found in ``trunk`` (shared by every ladder length of the run); the wanted
    ones copied into the work folder."""
    spec = draw.spec
    rounds = imp_rounds(spec)
    ladder = ticket_ladder(spec) if spec.pattern == "nm" else imp_ladder(spec.prune_rate, rounds)
    rungs = run_imp(
        draw.model,
        spec,
        rounds,
        trunk=trunk,
        make_loaders=draw.loaders,
        make_ticket=lambda mask, k: draw.make_ticket(mask, ladder[k - 1], {"round": k}),
        device=draw.device,
        scope_mask=draw.scope_mask,
        progress=draw.progress,
        log=draw.log,
        prune=draw.pattern.imp_pruner() if spec.pattern != "unstructured" else None,
    )
    wanted = ticket_ladder(spec)
    out: list[Path] = []
    for k, path in enumerate(rungs, 1):
        target = ladder[k - 1]
        if target in wanted:
            destination = draw.workdir / paths.ticket(target)
            if Path(path).resolve() != destination.resolve():
                shutil.copyfile(path, destination)
            out.append(destination)
    return out


def _one_shot_tickets(draw: Draw, targets: list[float]) -> list[Path]:
    """OMP, random, SNIP and GraSP: one score per weight (or channel), each rung its
    sparsity's share of the lowest scores pruned."""
    spec, model, scope_mask = draw.spec, draw.model, draw.scope_mask
    params = {n: p.detach() for n, p in model.named_parameters()}
    # Channels rank by filter norms (OMP) or one random score each; per-weight scores
    # otherwise (SNIP and GraSP summed over each filter for channels).
    own = spec.pattern == "channel" and spec.method in ("omp", "random")
    scores = None if own else _one_shot_scores(spec, model, scope_mask, draw.loaders, draw.device)
    out = []
    for s in targets:
        if spec.pattern == "unstructured":
            mask = prune_to_sparsity(scores, scope_mask, s)  # type: ignore[arg-type]
        else:
            mask = draw.pattern.one_shot(scores, scope_mask, s, params)
        out.append(save_ticket(draw.workdir / paths.ticket(s), draw.make_ticket(mask, s)))
    return out


def _synflow_tickets(draw: Draw, targets: list[float]) -> list[Path]:
    """SynFlow, data-free, one rung at a time: a resumed call skips the finished files."""
    size = draw.source.input_size
    out = []
    for s in targets:
        path = draw.workdir / paths.ticket(s)
        if not path.is_file():
            mask = synflow_mask(
                draw.model,
                draw.scope_mask,
                s,
                input_shape=(3, size, size),
                iterations=draw.spec.synflow.iterations,
                bn=draw.spec.synflow.bn,
                device=draw.device,
                progress=draw.progress,
            )
            save_ticket(path, draw.make_ticket(mask, s))
        out.append(path)
    return out


def recorded_spec(spec: TicketSpec) -> dict[str, Any]:
    """The spec a ticket file records: every field, but the pattern fields at their
    defaults and the options of methods other than its own are left out, so an unstructured
    ticket's file is byte for byte what it was before patterns (and HYDRA, HARP) existed."""
    out = to_dict(spec)
    defaults = TicketSpec()
    for key in (
        "pattern",
        "channel_score",
        "channel_ratio",
        "nm",
        "channel_budget",
        "channel_round",
    ):
        if getattr(spec, key) == getattr(defaults, key):
            out.pop(key, None)
    for key, methods in OWN_OPTIONS.items():
        if spec.method not in methods and getattr(spec, key) == getattr(defaults, key):
            out.pop(key, None)
    return out


def _one_shot_scores(
    spec: TicketSpec,
    model: torch.nn.Module,
    scope_mask: Mask,
    loaders: Callable[[], tuple[Any, Any]],
    device: torch.device,
) -> dict[str, torch.Tensor]:
    weights = dict(model.named_parameters())
    if spec.method == "omp":
        return magnitude_scores(weights, scope_mask)
    if spec.method == "random":
        return random_scores(scope_mask, spec.seed)
    train_loader, _ = loaders()
    if spec.method == "snip":
        return snip_scores(
            model,
            scope_mask,
            train_loader,
            score_batches=spec.score_batches,
            device=device,
            attack=source_attack(spec),
        )
    return grasp_scores(
        model,
        scope_mask,
        train_loader,
        score_batches=spec.score_batches,
        device=device,
        temperature=spec.grasp_temperature,
        attack=source_attack(spec),
    )
