"""One job of an experiment run through the store: what it needs besides its spec
(`RunContext`), the files its spec's references name, and `run_job`, which computes its entry
unless it is finished. The scheduler (scheduler.py) calls `run_job` here or in a worker.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doublewin.core import paths
from doublewin.core.errors import RunFailure, UserError
from doublewin.core.parsing import resolve_device
from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.experiments.plan.grid import NETWORK_PREFIX, Job
from doublewin.experiments.store.store import Entry, Store
from doublewin.stages import Inputs, run_stage, stage, ticket_in
from doublewin.tickets import trunk_key

# The key run_job adds to a job's metrics on the way back to the scheduler (not stored).
COMPUTED_HERE = "_computed_here"


@dataclass(frozen=True)
class RunContext:
    """What a job needs besides its spec; picklable, so workers get a copy. ``device`` is
    the job's device (the scheduler gives each worker job its own GPU when there are several);
    ``imports`` maps a weights reference to an imported file."""

    store_root: Path
    device: str = "auto"
    data_root: str | None = None
    imports: Mapping[str, str] = field(default_factory=dict)  # weights ref -> file path
    ticket_files: Mapping[str, str] = field(default_factory=dict)  # mask ref -> file path
    threads: int | None = None
    compile: bool = False  # torch.compile the training forward (GPU runs)

    @property
    def store(self) -> Store:
        return Store(self.store_root)


def weights_file(ref: str, context: RunContext) -> Path:
    """The weights file a spec's ``weights`` reference names: an imported file, a pretrain
    entry's weights, the network a SuperTicket brings (``network:tickets-<hash>@<sparsity>``),
    or a path."""
    if ref in context.imports:
        return Path(context.imports[ref])
    if ref.startswith(NETWORK_PREFIX):
        return _rung_file(ref[len(NETWORK_PREFIX) :], context, "networks")
    if ref.startswith("pretrain-"):
        path = context.store_root / ref / paths.WEIGHTS
        if not path.is_file():
            raise RunFailure(
                f"{path}: pre-trained weights missing; the pretrain stage "
                "did not finish — run the experiment again"
            )
        return path
    path = Path(ref)
    if path.is_file():
        return path
    raise UserError(
        f"weights {ref!r}: no such file or store entry; pass a weights file "
        "(doublewin pretrain / import-weights)"
    )


def ticket_file(ref: str, context: RunContext) -> Path | None:
    """The ticket file of ``tickets-<hash>@<sparsity>`` (or a path); None for the dense model."""
    if not ref:
        return None
    if ref in context.ticket_files:
        return Path(context.ticket_files[ref])
    if "@" not in ref:
        path = Path(ref)
        if path.is_file():
            return path
        raise UserError(f"ticket {ref!r}: no such file; pass a ticket file")
    return _rung_file(ref, context, "tickets")


def _rung_file(ref: str, context: RunContext, what: str) -> Path:
    """The ticket (``what``: ``tickets``) or network (``networks``) of a finished tickets
    entry at a rung, ``tickets-<hash>@<sparsity>``."""
    entry_id, _, sparsity = ref.partition("@")
    folder = context.store_root / entry_id
    metrics_file = folder / paths.METRICS
    if not metrics_file.is_file():
        raise RunFailure(f"{folder}: tickets stage not finished; run the experiment again")
    metrics = json.loads(metrics_file.read_text())
    path = ticket_in(folder, metrics, float(sparsity), what)
    if path is None:
        made = ", ".join(sorted(metrics.get(what, {}))) or "none"
        raise RunFailure(
            f"{folder}: no ticket at sparsity {float(sparsity):.4f}; the tickets stage "
            f"produced {made}"
        )
    return path


def inputs_for(job: Job, context: RunContext) -> Inputs:
    """The files ``job`` reads, resolved from its spec's references."""
    spec = job.spec
    weights = weights_file(spec.weights, context) if getattr(spec, "weights", "") else None
    if job.stage == "transfer":
        return Inputs(weights=weights, ticket=ticket_file(spec.ticket, context))
    if job.stage == "landscape":
        # The landscape trains its transfer run again: the transfer spec names the files.
        return Inputs(
            weights=weights_file(spec.transfer.weights, context),
            ticket=ticket_file(spec.transfer.ticket, context),
        )
    if job.stage == "tickets":
        # IMP rungs live in a trunk shared by every ladder length of the same IMP run, so
        # asking for more rounds later continues from the rungs already found.
        trunk = context.store_root / paths.IMP_TRUNKS_DIR / trunk_key(spec)
        # search-then-prune reads the MACs of its SuperTickets (a store entry, or a folder).
        reference = None
        if spec.macs_of:
            entry = context.store_root / spec.macs_of
            reference = entry if entry.is_dir() else Path(spec.macs_of)
        return Inputs(weights=weights, trunk=trunk, reference=reference)
    return Inputs(weights=weights)


def run_job(job: Job, context: RunContext, progress: Progress = NULL_PROGRESS) -> dict[str, Any]:
    """Compute ``job`` unless its entry is finished; returns its metrics."""
    definition = stage(job.stage)
    device = resolve_device(context.device)

    computed = False

    def compute(entry: Entry) -> dict[str, Any]:
        nonlocal computed
        computed = True
        return run_stage(
            job.stage,
            job.spec,
            inputs_for(job, context),
            entry.path,
            device=device,
            data_root=context.data_root,
            progress=progress,
            compile=context.compile,
        )

    entry = context.store.get_or_run(job.stage, job.spec, compute, resumable=definition.resumable)
    # Whether this call computed the entry or found it finished by another runner: the run's
    # summary counts each once, under the right heading (never part of the stored metrics).
    return {**entry.metrics(), COMPUTED_HERE: computed}
