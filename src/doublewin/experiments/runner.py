"""Runs the jobs of an experiment through the store, in dependency order.

Each job is one store entry; a finished entry is skipped, an unfinished one is (re)done, so a
runner killed at any moment continues where it stopped when started again. With ``jobs > 1``
independent jobs run in parallel worker processes (one per GPU when several are visible,
otherwise sharing the CPU cores); each job's result depends only on its spec, so the order in
which jobs finish never changes a number.
"""

from __future__ import annotations

import concurrent.futures as futures
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from doublewin.core import paths
from doublewin.core.errors import DoublewinError, RunFailure, UserError
from doublewin.core.parsing import resolve_device
from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.core.resources import cpu_cores
from doublewin.experiments.executors import ExecutorOptions, make_pool
from doublewin.experiments.grid import NETWORK_PREFIX, Job
from doublewin.experiments.store import Entry, Store
from doublewin.stages import Inputs, run_stage, stage, ticket_in
from doublewin.tickets import trunk_key

# The key run_job adds to a job's metrics on the way back to the runner (not stored).
COMPUTED_HERE = "_computed_here"
# Stages that train or attack a network: a GPU job on a cluster.
GPU_STAGES = ("pretrain", "tickets", "transfer", "evaluate", "landscape")


@dataclass(frozen=True)
class RunContext:
    """What a job needs besides its spec; picklable, so workers get a copy. ``device`` is
    the job's device (the runner gives each worker job its own GPU when there are several);
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

    computed = []

    def compute(entry: Entry) -> dict[str, Any]:
        computed.append(True)
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
    return {**entry.metrics(), COMPUTED_HERE: bool(computed)}


@dataclass
class RunSummary:
    """What a run did: the jobs it computed and the ones it found finished (ids, so a job
    counted by several calls, as the search makes, counts once), failures, seconds."""

    computed_ids: set[str] = field(default_factory=set)
    reused_ids: set[str] = field(default_factory=set)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def computed(self) -> int:
        return len(self.computed_ids)

    @property
    def done_before(self) -> int:
        return len(self.reused_ids - self.computed_ids)


def run_jobs(
    jobs: Sequence[Job],
    context: RunContext,
    *,
    workers: int = 1,
    progress: Progress = NULL_PROGRESS,
    on_done: Callable[[Job, dict[str, Any]], None] | None = None,
    cost: Callable[[Job], float] | None = None,
    executor: ExecutorOptions = ExecutorOptions(),
) -> RunSummary:
    """Run every unfinished job once its dependencies are finished.

    ``on_done(job, metrics)`` is called in this process after each job (e.g. to refresh
    results.csv). A failing job is recorded and the jobs that depend on it are skipped;
    the others go on. ``cost(job)`` orders ready jobs, costliest first, and weighs them for the ETA. ``executor``:
    where the jobs run (executors.py); anything but one local worker goes through a pool.
    """
    store = context.store
    started = time.time()
    summary = RunSummary()
    todo = {j.id: j for j in jobs}
    ids_in_plan = set(todo)
    finished = {j.id for j in jobs if store.entry(j.stage, j.spec).done}
    summary.reused_ids.update(finished)
    for job_id in finished:
        todo.pop(job_id)
    weight = cost or (lambda job: 1.0)
    # The bar advances by each job's estimated cost (image passes), so its ETA holds when the
    # first jobs are the long pre-trainings; the jobs themselves show as done / total.
    task = progress.task("work (image passes)", sum(weight(j) for j in todo.values()))
    job_count = [0, len(todo)]
    blocked: set[str] = set()

    def ready() -> list[Job]:
        out = []
        for job in todo.values():
            if any(d in blocked for d in job.deps):
                continue
            # A dependency outside the plan (an imported file) is always ready.
            if all(d in finished or d not in ids_in_plan for d in job.deps):
                out.append(job)
        # Costliest first (longest-processing-time order): the long pre-trainings start at
        # once instead of after the cheap jobs, which shortens the run on several workers.
        return sorted(out, key=weight, reverse=True)

    def mark_failed(job: Job, message: str) -> None:
        summary.failed.append((job.id, message))
        blocked.add(job.id)
        # Everything downstream of a failed job is skipped.
        changed = True
        while changed:
            changed = False
            for other in list(todo.values()):
                if other.id not in blocked and any(d in blocked for d in other.deps):
                    blocked.add(other.id)
                    todo.pop(other.id)
                    changed = True

    def complete(job: Job, metrics: dict[str, Any]) -> None:
        finished.add(job.id)
        metrics = dict(metrics)
        if metrics.pop(COMPUTED_HERE, True):
            summary.computed_ids.add(job.id)
        else:
            summary.reused_ids.add(job.id)  # another runner finished it while this one waited
        job_count[0] += 1
        task.advance(weight(job), jobs=f"{job_count[0]}/{job_count[1]}", last=job.stage)
        if on_done:
            on_done(job, metrics)

    if workers <= 1 and executor.kind == "local":
        while True:
            batch = ready()
            if not batch:
                break
            for job in batch:
                todo.pop(job.id)
                try:
                    metrics = run_job(job, context, progress)
                except DoublewinError as exc:
                    if isinstance(exc, UserError):
                        raise
                    mark_failed(job, str(exc))
                    continue
                complete(job, metrics)
    else:
        devices = worker_devices(context.device) if executor.kind == "local" else []
        load = dict.fromkeys(devices, 0)  # jobs running on each GPU
        # Locally the cores are shared among the workers; on a cluster a job asks for one CPU
        # unless --threads says more (the scheduler packs jobs onto the nodes' cores).
        threads = context.threads or (
            max(1, cpu_cores() // workers) if executor.kind == "local" else 1
        )
        with make_pool(executor, workers, threads) as pool:
            running: dict[futures.Future, tuple[Job, str | None]] = {}
            while True:
                started_ids = {j.id for j, _ in running.values()}
                for job in ready():
                    if job.id in started_ids:
                        continue
                    todo.pop(job.id)
                    # Each job goes to the least busy GPU: one per worker when there are
                    # as many workers as GPUs.
                    device = min(load, key=load.__getitem__) if load else None
                    # The job sets its own threads: CPU numbers are bit-identical only at the
                    # same thread count (float reductions change order), wherever it runs.
                    job_context = replace(context, device=device or context.device, threads=threads)
                    if device:
                        load[device] += 1
                    gpu = job.stage in GPU_STAGES and context.device != "cpu"
                    running[pool.submit(_worker_run, job, job_context, gpu=gpu)] = (job, device)
                if not running:
                    break
                pool.flush()
                done, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
                for future in done:
                    job, device = running.pop(future)
                    if device:
                        load[device] -= 1
                    try:
                        metrics = future.result()
                    except UserError:
                        raise  # bad input: stop everything (the pool stops its jobs)
                    except Exception as exc:  # the job failed, or its worker or node died
                        mark_failed(job, f"{type(exc).__name__}: {exc}")
                        continue
                    complete(job, metrics)
    task.close()
    summary.seconds = time.time() - started
    return summary


def _worker_run(job: Job, context: RunContext) -> dict[str, Any]:
    if context.threads:  # a Ray or Slurm job sets its own threads
        torch.set_num_threads(context.threads)
    return run_job(job, context)


def worker_devices(requested: str) -> list[str]:
    """The GPUs worker jobs are spread over: every visible one when ``requested`` is auto or
    cuda, none otherwise (the jobs then all use ``requested``)."""
    if requested in ("auto", "cuda") and torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return []
