"""Runs the jobs of an experiment through the store, in dependency order.

Each job is one store entry; a finished entry is skipped, an unfinished one is (re)done, so a
runner killed at any moment continues where it stopped when started again. With ``jobs > 1``
independent jobs run in parallel worker processes (one per GPU when several are visible,
otherwise sharing the CPU cores); each job's result depends only on its spec, so the order in
which jobs finish never changes a number.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doublewin.errors import DoublewinError, RunFailure, UserError
from doublewin.experiments.experiment import Job
from doublewin.experiments.store import Entry, Store
from doublewin.progress import NULL_PROGRESS, Progress


@dataclass(frozen=True)
class RunContext:
    """What a stage needs besides its spec; picklable, so workers get a copy."""

    store_root: Path
    device: str = "auto"
    data_root: str | None = None
    imports: Mapping[str, str] = field(default_factory=dict)  # weights ref -> file path
    threads: int | None = None
    compile: bool = False  # torch.compile the training forward (GPU runs)

    @property
    def store(self) -> Store:
        return Store(self.store_root)


StageFunction = Callable[[Job, RunContext, Entry, Progress], dict[str, Any]]
_STAGES: dict[str, tuple[StageFunction, bool]] = {}


def register_stage(name: str, *, resumable: bool) -> Callable[[StageFunction], StageFunction]:
    """Register the function that computes one job of stage ``name`` into its store entry."""

    def wrap(fn: StageFunction) -> StageFunction:
        _STAGES[name] = (fn, resumable)
        return fn

    return wrap


def stage_function(name: str) -> tuple[StageFunction, bool]:
    if not _STAGES:
        import doublewin.experiments.stages  # noqa: F401  (registers the stages)
    if name not in _STAGES:
        raise UserError(f"no stage called {name!r}; stages: {', '.join(sorted(_STAGES))}")
    return _STAGES[name]


def run_job(job: Job, context: RunContext, progress: Progress = NULL_PROGRESS) -> dict[str, Any]:
    """Compute ``job`` unless its entry is finished; returns its metrics."""
    fn, resumable = stage_function(job.stage)
    store = context.store
    entry = store.get_or_run(
        job.stage, job.spec, lambda e: fn(job, context, e, progress), resumable=resumable
    )
    return entry.metrics()


@dataclass
class RunSummary:
    done_before: int = 0
    computed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


def pending(jobs: Sequence[Job], store: Store) -> list[Job]:
    """The jobs whose entries are not finished."""
    return [j for j in jobs if not store.entry(j.stage, j.spec).done]


def run_jobs(
    jobs: Sequence[Job],
    context: RunContext,
    *,
    workers: int = 1,
    progress: Progress = NULL_PROGRESS,
    on_done: Callable[[Job, dict[str, Any]], None] | None = None,
    cost: Callable[[Job], float] | None = None,
) -> RunSummary:
    """Run every unfinished job once its dependencies are finished.

    ``on_done(job, metrics)`` is called in this process after each job (e.g. to refresh
    results.csv). A failing job is recorded and the jobs that depend on it are skipped;
    the others go on. ``cost(job)`` weighs jobs for the progress bar's ETA.
    """
    store = context.store
    started = time.time()
    summary = RunSummary()
    todo = {j.id: j for j in jobs}
    ids_in_plan = set(todo)
    finished = {j.id for j in jobs if store.entry(j.stage, j.spec).done}
    summary.done_before = len(finished)
    for job_id in finished:
        todo.pop(job_id)
    weight = cost or (lambda job: 1.0)
    task = progress.task(f"jobs ({len(todo)} to run)", sum(weight(j) for j in todo.values()))
    blocked: set[str] = set()

    def ready() -> list[Job]:
        out = []
        for job in todo.values():
            if any(d in blocked for d in job.deps):
                continue
            # A dependency outside the plan (an imported file) is always ready.
            if all(d in finished or d not in ids_in_plan for d in job.deps):
                out.append(job)
        return out

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

    if workers <= 1:
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
                finished.add(job.id)
                summary.computed += 1
                task.advance(weight(job), last=job.stage)
                if on_done:
                    on_done(job, metrics)
    else:
        with _pool(workers, context) as pool:
            running: dict[futures.Future, Job] = {}
            while True:
                for job in ready():
                    if job.id in {j.id for j in running.values()}:
                        continue
                    todo.pop(job.id)
                    running[pool.submit(_worker_run, job, context)] = job
                if not running:
                    break
                done, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
                for future in done:
                    job = running.pop(future)
                    try:
                        metrics = future.result()
                    except UserError:
                        for other in running:
                            other.cancel()
                        raise
                    except (DoublewinError, futures.process.BrokenProcessPool) as exc:
                        mark_failed(job, str(exc))
                        continue
                    finished.add(job.id)
                    summary.computed += 1
                    task.advance(weight(job), last=job.stage)
                    if on_done:
                        on_done(job, metrics)
    task.close()
    summary.seconds = time.time() - started
    return summary


def _worker_run(job: Job, context: RunContext) -> dict[str, Any]:
    return run_job(job, context)


def _init_worker(threads: int, devices: list[str], counter: Any) -> None:
    import torch

    torch.set_num_threads(max(1, threads))
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    if devices:
        # One GPU per worker: stages resolve "auto" to the device this variable names.
        os.environ["DOUBLEWIN_WORKER_DEVICE"] = devices[index % len(devices)]


def _pool(workers: int, context: RunContext) -> futures.ProcessPoolExecutor:
    import torch

    ctx = multiprocessing.get_context("spawn")  # CUDA and threads do not survive fork
    devices: list[str] = []
    if context.device in ("auto", "cuda") and torch.cuda.is_available():
        devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    threads = context.threads or max(1, (os.cpu_count() or 1) // workers)
    counter = ctx.Value("i", 0)
    return futures.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(threads, devices, counter),
    )


def worker_device(requested: str) -> str:
    """The device a stage should use: a worker's assigned GPU when ``requested`` is auto."""
    assigned = os.environ.get("DOUBLEWIN_WORKER_DEVICE")
    if assigned and requested in ("auto", "cuda"):
        return assigned
    return requested


def failure_summary(failed: Iterable[tuple[str, str]]) -> str:
    lines = [f"{job_id}: {message}" for job_id, message in failed]
    return "\n".join(lines)


__all__ = [
    "RunContext",
    "RunSummary",
    "register_stage",
    "run_job",
    "run_jobs",
    "pending",
    "worker_device",
    "failure_summary",
    "RunFailure",
]
