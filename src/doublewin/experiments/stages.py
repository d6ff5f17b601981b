"""The stage functions the runner calls: each computes one job into its store entry.

References between stages are entry ids (see experiment.py); this module turns them into
files: ``pretrain-<hash>`` → ``<store>/pretrain-<hash>/weights.safetensors``,
``weights-<hash>`` → the imported file the experiment names, ``tickets-<hash>@<sparsity>`` →
the ticket file the tickets entry lists in its metrics under ``tickets``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from doublewin.errors import RunFailure, UserError
from doublewin.experiments.experiment import Job
from doublewin.experiments.pretraining import pretrain
from doublewin.experiments.runner import RunContext, register_stage, worker_device
from doublewin.experiments.store import Entry
from doublewin.experiments.transfer import transfer
from doublewin.logs import JsonlLog
from doublewin.parsing import resolve_device
from doublewin.progress import Progress

WEIGHTS_FILE = "weights.safetensors"


def weights_file(ref: str, context: RunContext) -> Path:
    """The weights file a spec's ``weights`` reference names."""
    if ref in context.imports:
        return Path(context.imports[ref])
    if ref.startswith("pretrain-"):
        path = context.store_root / ref / WEIGHTS_FILE
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
    """The ticket file of ``tickets-<hash>@<sparsity>``; None for the dense baseline."""
    if not ref:
        return None
    entry_id, sep, sparsity = ref.partition("@")
    if not sep:
        path = Path(ref)
        if path.is_file():
            return path
        raise UserError(f"ticket {ref!r}: no such file; pass a ticket file")
    folder = context.store_root / entry_id
    index = _tickets_index(folder)
    target = float(sparsity)
    for key, relative in index.items():
        if abs(float(key) - target) < 5e-7:
            return folder / relative
    raise RunFailure(
        f"{folder}: no ticket at sparsity {target:.4f}; the tickets stage "
        f"produced {', '.join(sorted(index)) or 'none'}"
    )


def _tickets_index(folder: Path) -> dict[str, str]:
    import json

    metrics = folder / "metrics.json"
    if not metrics.is_file():
        raise RunFailure(f"{folder}: tickets stage not finished; run the experiment again")
    return dict(json.loads(metrics.read_text()).get("tickets", {}))


def stage_device(context: RunContext) -> Any:
    return resolve_device(worker_device(context.device))


@register_stage("pretrain", resumable=True)
def run_pretrain(job: Job, context: RunContext, entry: Entry, progress: Progress) -> dict[str, Any]:
    log = JsonlLog(entry.path / "log.jsonl")
    try:
        result = pretrain(
            job.spec,
            entry.path / WEIGHTS_FILE,
            workdir=entry.path / "train",
            device=stage_device(context),
            data_root=context.data_root,
            progress=progress,
            log=log,
            compile=context.compile,
        )
    finally:
        log.close()
    return {**result.metrics, "collapsed": result.collapsed}


@register_stage("tickets", resumable=True)
def run_tickets(job: Job, context: RunContext, entry: Entry, progress: Progress) -> dict[str, Any]:
    from doublewin.tickets import find_tickets, load_ticket, trunk_key

    log = JsonlLog(entry.path / "log.jsonl")
    # IMP rungs live in a trunk shared by every ladder length of the same IMP run, so asking
    # for more rounds later continues from the rungs already found.
    trunk = context.store_root / "imp-trunks" / trunk_key(job.spec)
    try:
        paths = find_tickets(
            job.spec,
            weights_file(job.spec.weights, context),
            workdir=entry.path,
            device=stage_device(context),
            progress=progress,
            data_root=context.data_root,
            log=log,
            trunk=trunk,
        )
    finally:
        log.close()
    index: dict[str, str] = {}
    achieved: dict[str, float] = {}
    for path in paths:
        info = load_ticket(path).info
        target = info.target_sparsity if info.target_sparsity is not None else info.sparsity
        key = f"{target:.6f}"
        index[key] = str(Path(path).resolve().relative_to(entry.path.resolve()))
        achieved[key] = round(float(info.sparsity), 6)
    return {"tickets": index, "achieved_sparsity": achieved}


@register_stage("transfer", resumable=True)
def run_transfer(job: Job, context: RunContext, entry: Entry, progress: Progress) -> dict[str, Any]:
    spec = job.spec
    log = JsonlLog(entry.path / "log.jsonl")
    try:
        result = transfer(
            spec,
            weights_file(spec.weights, context),
            ticket_file(spec.ticket, context),
            workdir=entry.path,
            device=stage_device(context),
            data_root=context.data_root,
            progress=progress,
            log=log,
            compile=context.compile,
        )
    finally:
        log.close()
    return dict(result.metrics)
