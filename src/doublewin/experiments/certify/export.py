"""``doublewin export --run RUN --ticket NAME``: a run's ticket (or a fine-tuned model of it)
exported with its certificate, its Hugging Face model card, and the certificate's SHA-256,
sparsity and pattern in the weights' safetensors metadata (docs/certificate.md).

The export is written into a temporary folder and renamed into place: a failure leaves
nothing. A ticket the run did not certify double-win exports only when asked, and its
certificate says what it is.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from doublewin.core import paths
from doublewin.core.atomic import atomic_folder, atomic_write_text
from doublewin.core.errors import UserError
from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.core.specs import DataSpec, EvaluateSpec
from doublewin.experiments.certify.document import assemble, claim_block
from doublewin.experiments.certify.named import NamedTicket, find_ticket
from doublewin.models import load_weights, read_weights_meta, save_weights
from doublewin.stages import Environment, Inputs
from doublewin.stages.evaluate import measure
from doublewin.tickets import TicketWeightsWarning, load_ticket
from doublewin.tickets.card import model_card
from doublewin.tickets.certificate import stamp, write_certificate
from doublewin.tickets.export import Exported, write_export

Checkpoint = Literal["best_sa", "best_ra"]


@dataclass(frozen=True)
class FineTuned:
    """Which fine-tuned model of the ticket to export: a transfer's seed and regime, and the
    checkpoint the run kept (``transfer.save_models``)."""

    seed: int
    regime: Literal["st", "at"] = "at"
    checkpoint: Checkpoint = "best_ra"


@dataclass(frozen=True)
class Certified:
    out: Path
    document: dict[str, Any]
    sha256: str
    exported: Exported


def export_certified(
    run_dir: Path,
    name: str,
    out: Path,
    *,
    downstream: str | None = None,
    fine_tuned: FineTuned | None = None,
    autoattack: int = 0,
    limit: int | None = None,
    uncertified: bool = False,
    license: str | None = None,
    device: torch.device = torch.device("cpu"),
    data_root: str | Path | None = None,
    progress: Progress = NULL_PROGRESS,
) -> Certified:
    """Export the ticket ``name`` of the run in ``run_dir`` into ``out``, certified.

    ``autoattack``: standard AutoAttack on the first N test points of the model's own
    evaluation (fills ``autoattack_acc``); ``limit``: that evaluation on the first N test
    images only (default: the whole test split the run measured on)."""
    named = find_ticket(run_dir, name, downstream)
    claim = claim_block(named, data_root)
    if not claim["certified"] and not uncertified:
        raise UserError(
            f"{name} on {claim['dataset']} ({claim['fraction']:g}) is not certified "
            f"double-win (its verdict: {claim['verdict'] or 'undetermined'}); pass "
            "--uncertified to export it with a certificate that says so"
        )
    weights, tuned, tuned_hash = named.weights, None, None
    if fine_tuned is not None:
        weights, tuned = _fine_tuned(named, fine_tuned)
        tuned_hash = read_weights_meta(weights).content_hash  # type: ignore[union-attr]
    spec = evaluation_spec(named, tuned, autoattack=autoattack, limit=limit)
    pretrained = read_weights_meta(named.weights)
    info = load_ticket(named.ticket).info
    env = Environment(device, data_root, progress)
    with atomic_folder(out) as folder:
        with warnings.catch_warnings():
            # Fine-tuned weights descend from θp, the weights the ticket was drawn from.
            warnings.simplefilter("ignore", TicketWeightsWarning)
            exported = write_export(weights, named.ticket, folder, out=out)
        measured = measure(spec, Inputs(weights=folder / paths.WEIGHTS), env)
        document = assemble(
            named,
            folder=folder,
            exported=exported,
            info=info,
            claim=claim,
            measured=measured,
            evaluate_spec=spec,
            pretrained=pretrained,  # type: ignore[arg-type]
            fine_tuned=tuned,
            fine_tuned_hash=tuned_hash,
        )
        sha256 = write_certificate(folder, document)
        state, meta = load_weights(folder / paths.WEIGHTS)
        save_weights(folder / paths.WEIGHTS, state, meta, stamp=stamp(document, sha256))
        atomic_write_text(folder / paths.MODEL_CARD, model_card(document, license=license))
        exported = dataclasses.replace(exported, files=sorted(p.name for p in folder.iterdir()))
    return Certified(out, document, sha256, exported)


def _fine_tuned(named: NamedTicket, chosen: FineTuned) -> tuple[Path, dict[str, Any]]:
    """The fine-tuned weights the run kept for ``chosen``, and the certificate's record of
    them (with the run's own test SA/RA of that checkpoint)."""
    job = named.transfers.get((chosen.regime, chosen.seed))
    if job is None:
        seeds = sorted(s for r, s in named.transfers if r == chosen.regime)
        raise UserError(
            f"--seed {chosen.seed}: the run transferred {named.name} with seeds "
            f"{', '.join(map(str, seeds))} under {chosen.regime.upper()}; pass one of them"
        )
    entry = named.store.entry("transfer", job.spec)
    path = entry.path / paths.BEST_WEIGHTS[chosen.checkpoint.removeprefix("best_")]
    if not entry.done or not path.is_file():
        raise UserError(
            f"{named.name}: the run kept no fine-tuned weights of seed {chosen.seed} "
            f"({chosen.checkpoint}); set transfer.save_models: {chosen.checkpoint} (or both) "
            "in the experiment and run it again"
        )
    metrics = entry.metrics()
    which = chosen.checkpoint.removeprefix("best_")
    record = {
        "seed": chosen.seed,
        "regime": chosen.regime,
        "checkpoint": chosen.checkpoint,
        "test": {m: metrics.get(f"{m}_best_{which}") for m in ("sa", "ra")},
    }
    return path, record


def evaluation_spec(
    named: NamedTicket,
    fine_tuned: dict[str, Any] | None,
    *,
    autoattack: int,
    limit: int | None,
) -> EvaluateSpec:
    """How the exported model measures itself: a fine-tuned model on its transfer's test
    split, a ticket on its pre-training's source test split; both under the run's test
    attack."""
    if fine_tuned is not None:
        data = named.transfers[(fine_tuned["regime"], fine_tuned["seed"])].spec.data
    elif named.pretraining.spec is not None:
        data = named.pretraining.spec.data
    else:
        meta = read_weights_meta(named.weights)
        if meta is None or not meta.dataset:
            raise UserError(
                f"{named.weights}: records no source dataset, so the ticket cannot be "
                "measured on its source task; export a fine-tuned model of it (--seed)"
            )
        data = DataSpec(name=meta.dataset, resolution=meta.input_size, augment="none")
    if limit is not None:
        data = dataclasses.replace(data, test_limit=min(limit, data.test_limit or limit))
    return EvaluateSpec(data=data, attack=named.experiment.eval_attack, autoattack=autoattack)
