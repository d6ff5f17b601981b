"""The tickets of the methods that learn a mask on frozen θp — Gem-Miner, HYDRA, HARP — and
the layer-wise magnitude baseline (LWM), one file per sparsity (a resumed call skips the files
already written; HYDRA's and HARP's searches also resume from their per-epoch checkpoint).

``lwm`` is HYDRA with its scores never trained: each layer keeps the same share of its
weights, by magnitude. The rung's ticket is the mask after the score phase; the authors'
fine-tuning of the weights under that mask is the transfer stage.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from doublewin.attacks import PGD
from doublewin.core import paths
from doublewin.core.specs import TicketSpec
from doublewin.tickets.allocation import uniform_counts
from doublewin.tickets.channel_search import harp_channel_mask
from doublewin.tickets.drawing import Draw
from doublewin.tickets.files import save_ticket
from doublewin.tickets.gem_miner import gem_miner_mask
from doublewin.tickets.harp import harp_mask
from doublewin.tickets.hydra import SearchResult, hydra_mask
from doublewin.tickets.score_masks import layerwise_magnitude_mask

LEARNED_METHODS = ("hydra", "harp", "lwm")


def learned_tickets(draw: Draw, targets: list[float]) -> list[Path]:
    """One ticket per sparsity of ``targets``; a file already written is kept (a resumed call
    skips it), and a search cut short resumes from its checkpoint."""
    spec, model, scope_mask = draw.spec, draw.model, draw.scope_mask
    out = []
    train_loader = None
    for s in targets:
        path = draw.workdir / paths.ticket(s)
        out.append(path)
        if path.is_file():
            continue
        if spec.method == "lwm":
            params = dict(model.named_parameters())
            mask = layerwise_magnitude_mask(params, scope_mask, uniform_counts(scope_mask, s))
            save_ticket(path, draw.make_ticket(mask, s, {}))
            continue
        if train_loader is None:
            train_loader, _ = draw.loaders()
        checkpoint = draw.workdir / paths.score_search_checkpoint(s)
        result = _search(draw, s, train_loader, checkpoint)
        save_ticket(path, draw.make_ticket(result.mask, s, result.info()))
        with contextlib.suppress(FileNotFoundError):
            checkpoint.unlink()  # the ticket is written: the search's state is no longer needed
    return out


def _search(draw: Draw, sparsity: float, train_loader: Any, checkpoint: Path) -> SearchResult:
    spec, model, scope_mask, pattern = draw.spec, draw.model, draw.scope_mask, draw.pattern
    common = {
        "device": draw.device,
        "seed": spec.seed,
        "checkpoint": checkpoint,
        "progress": draw.progress,
    }
    if spec.method == "hydra":
        return hydra_mask(model, scope_mask, sparsity, train_loader, spec=spec.hydra, **common)
    if spec.pattern == "channel":
        assert pattern.cost is not None
        return harp_channel_mask(
            model,
            scope_mask,
            pattern.groups,
            pattern.cost,
            sparsity,
            train_loader,
            spec=spec.harp,
            channel_score=spec.channel_score,
            round_to=spec.channel_round,
            **common,
        )
    return harp_mask(model, scope_mask, sparsity, train_loader, spec=spec.harp, **common)


def source_attack(spec: TicketSpec) -> PGD | None:
    """The attack scores and masks are computed on when ``train.regime`` is adversarial."""
    return None if spec.train.regime == "std" else PGD.from_spec(spec.train.attack)


def gem_miner_tickets(draw: Draw, targets: list[float]) -> list[Path]:
    """Gem-Miner's tickets (gem_miner.py), adversarial with an adversarial ``train.regime``."""
    spec = draw.spec
    train_loader, _ = draw.loaders()
    attack = source_attack(spec)
    out = []
    for s in targets:
        path = draw.workdir / paths.ticket(s)
        out.append(path)
        if path.is_file():
            continue
        result = gem_miner_mask(
            draw.model,
            draw.scope_mask,
            s,
            train_loader,
            spec=spec.gem_miner,
            device=draw.device,
            seed=spec.seed,
            attack=attack,
            attack_steps=attack.steps if attack is not None else 0,
            progress=draw.progress,
        )
        info = {
            "epochs": result.epochs,
            "steps": result.steps,
            "source_passes": result.passes,
            "freeze_epochs": list(result.freeze_epochs),
            "final_loss": result.final_loss,
            "gem_sparsity": result.gem_sparsity,
        }
        save_ticket(path, draw.make_ticket(result.mask, s, info))
    return out
