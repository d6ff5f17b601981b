"""`find_tickets`: one ticket file per requested sparsity, by any method, from a weights file.

Every method scores the pre-trained weights θp themselves (nothing is re-initialized):
``imp`` (iterative magnitude pruning with rewinding, imp.py), ``omp`` (one-shot global
magnitude), ``random`` (global uniform, seeded), ``snip`` and ``grasp`` (gradient scores on
``score_batches`` source batches; on PGD examples when ``train.regime`` is ``at``),
``synflow`` (data-free, iterative) and ``gem-miner`` (score search on frozen θp).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import torch

from doublewin.errors import UserError
from doublewin.experiments.specs import TicketSpec
from doublewin.experiments.typed import to_dict
from doublewin.logs import JsonlLog
from doublewin.progress import NULL_PROGRESS, Progress
from doublewin.tickets.files import Ticket, make_info, save_ticket
from doublewin.tickets.mask import Mask
from doublewin.tickets.pruning import imp_ladder, magnitude_scores, prune_to_sparsity


def target_sparsities(spec: TicketSpec) -> list[float]:
    """The ladder of a spec: its ``sparsities``, or the IMP ladder 1 − (1 − rate)^k."""
    if spec.sparsities:
        return sorted(spec.sparsities)
    return imp_ladder(spec.prune_rate, spec.rounds)


def imp_rounds(spec: TicketSpec) -> int:
    """IMP rounds needed: ``rounds``, or enough to reach the largest requested sparsity (each
    requested sparsity must be a rung of the ladder)."""
    if not spec.sparsities:
        return spec.rounds
    ladder = imp_ladder(spec.prune_rate, 200)
    rounds = 0
    for s in spec.sparsities:
        match = [k for k, v in enumerate(ladder, 1) if abs(v - s) < 5e-7]
        if not match:
            raise UserError(
                f"tickets.sparsities: {s} is not a rung of the IMP ladder "
                f"1 − {1 - spec.prune_rate:g}^k; leave sparsities empty and set "
                "rounds, or change prune_rate"
            )
        rounds = max(rounds, match[0])
    return rounds


def trunk_key(spec: TicketSpec) -> str:
    """Identity of an IMP run without its length, so more rounds continue the same trunk."""
    data = to_dict(dataclasses.replace(spec, rounds=1, sparsities=()))
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def ticket_name(sparsity: float) -> str:
    return f"ticket-{sparsity:.6f}.safetensors"


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
) -> list[Path]:
    """Write one ticket per target sparsity into ``workdir``; returns their paths (ascending).

    ``trunk`` (IMP only): folder for the rungs, shared by runs that differ only in the number of
    rounds (default ``workdir/imp-trunk``).
    """
    from doublewin.models import load_model

    device = torch.device(device)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    model, meta = load_model(weights_path, device=device)
    scope_mask = Mask.dense(model, spec.scope)
    spec_dict = to_dict(spec)

    def make_ticket(mask: Mask, target: float, extra: dict[str, Any] | None = None) -> Ticket:
        return Ticket(
            mask,
            make_info(
                mask,
                arch=meta.arch,
                method=spec.method,
                weights_hash=meta.content_hash,
                target_sparsity=target,
                scope=spec.scope,
                spec=spec_dict,
                extra=extra,
            ),
        )

    def loaders() -> tuple[Any, Any]:
        from doublewin.data import prepare_data
        from doublewin.models import replace_head

        train_loader, val_loader, _, info = prepare_data(
            spec.data,
            resolution_default=meta.input_size,
            batch_size=spec.train.batch_size,
            device=device,
            seed=spec.seed,
            root=data_root,
        )
        if info.num_classes != meta.num_classes:
            # θp's head belongs to another task: a fresh head for the source task at hand.
            replace_head(model, info.num_classes, seed=spec.seed)
            model.to(device)
        return train_loader, val_loader

    out: list[Path] = []
    if spec.method == "imp":
        rounds = imp_rounds(spec)
        ladder = imp_ladder(spec.prune_rate, rounds)
        trunk_dir = Path(trunk) if trunk else workdir / "imp-trunk"
        rungs = _imp(
            model,
            spec,
            rounds,
            trunk_dir,
            loaders,
            make_ticket,
            ladder,
            device,
            scope_mask,
            progress,
            log,
        )
        wanted = target_sparsities(spec)
        for k, path in enumerate(rungs, 1):
            target = ladder[k - 1]
            if any(abs(target - w) < 5e-7 for w in wanted):
                destination = workdir / ticket_name(target)
                if Path(path).resolve() != destination.resolve():
                    shutil.copyfile(path, destination)
                out.append(destination)
        return out

    targets = target_sparsities(spec)
    if spec.method in ("omp", "random", "snip", "grasp"):
        scores = _one_shot_scores(spec, model, scope_mask, loaders, device)
        for s in targets:
            mask = prune_to_sparsity(scores, scope_mask, s)
            out.append(save_ticket(workdir / ticket_name(s), make_ticket(mask, s)))
        return out
    if spec.method == "synflow":
        from doublewin.tickets.synflow import synflow_mask

        size = meta.input_size if not spec.data.resolution else spec.data.resolution
        for s in targets:
            path = workdir / ticket_name(s)
            if not path.is_file():  # one file per sparsity: a resumed call skips finished ones
                mask = synflow_mask(
                    model,
                    scope_mask,
                    s,
                    input_shape=(3, size, size),
                    iterations=spec.synflow.iterations,
                    bn=spec.synflow.bn,
                    device=device,
                    progress=progress,
                )
                save_ticket(path, make_ticket(mask, s))
            out.append(path)
        return out
    if spec.method == "gem-miner":
        from doublewin.tickets.gem_miner import gem_miner_mask

        train_loader, _ = loaders()
        attack = _attack(spec)
        for s in targets:
            path = workdir / ticket_name(s)
            if not path.is_file():
                result = gem_miner_mask(
                    model,
                    scope_mask,
                    s,
                    train_loader,
                    spec=spec.gem_miner,
                    device=device,
                    seed=spec.seed,
                    attack=attack,
                    progress=progress,
                )
                save_ticket(
                    path,
                    make_ticket(
                        result.mask,
                        s,
                        {
                            "epochs": result.epochs,
                            "steps": result.steps,
                            "final_loss": result.final_loss,
                        },
                    ),
                )
            out.append(path)
        return out
    raise UserError(
        f"tickets.method {spec.method!r}: use imp, omp, random, snip, grasp, synflow or gem-miner"
    )


def _imp(
    model, spec, rounds, trunk_dir, loaders, make_ticket, ladder, device, scope_mask, progress, log
) -> list[Path]:
    from doublewin.tickets.imp import run_imp

    return run_imp(
        model,
        spec,
        rounds,
        trunk=trunk_dir,
        make_loaders=loaders,
        make_ticket=lambda mask, k: make_ticket(mask, ladder[k - 1], {"round": k}),
        device=device,
        scope_mask=scope_mask,
        progress=progress,
        log=log,
    )


def _attack(spec: TicketSpec):
    if spec.train.regime == "std":
        return None
    from doublewin.attacks import make_attack

    return make_attack(spec.train.attack)


def _one_shot_scores(
    spec: TicketSpec, model, scope_mask: Mask, loaders, device
) -> dict[str, torch.Tensor]:
    weights = dict(model.named_parameters())
    if spec.method == "omp":
        return magnitude_scores(weights, scope_mask)
    if spec.method == "random":
        from doublewin.tickets.scores import random_scores

        return random_scores(scope_mask, spec.seed)
    from doublewin.tickets.scores import grasp_scores, snip_scores

    train_loader, _ = loaders()
    if spec.method == "snip":
        return snip_scores(
            model,
            scope_mask,
            train_loader,
            score_batches=spec.score_batches,
            device=device,
            attack=_attack(spec),
        )
    return grasp_scores(
        model,
        scope_mask,
        train_loader,
        score_batches=spec.score_batches,
        device=device,
        temperature=spec.grasp_temperature,
        attack=_attack(spec),
    )
