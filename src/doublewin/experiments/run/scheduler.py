"""Runs the jobs of an experiment through the store, in dependency order.

Each job is one store entry; a finished entry is skipped, an unfinished one is (re)done, so a
scheduler killed at any moment continues where it stopped when started again. With ``jobs > 1``
independent jobs run in parallel worker processes (one per GPU when several are visible,
otherwise sharing the CPU cores); each job's result depends only on its spec, so the order in
which jobs finish never changes a number.
"""

from __future__ import annotations

import concurrent.futures as futures
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from doublewin.core.errors import DoublewinError, UserError
from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.core.resources import cpu_cores
from doublewin.experiments.plan.grid import Job
from doublewin.experiments.run.executors import ExecutorOptions, Pool, make_pool
from doublewin.experiments.run.job import COMPUTED_HERE, RunContext, run_job

# Stages that train or attack a network: a GPU job on a cluster.
GPU_STAGES = ("pretrain", "tickets", "transfer", "evaluate", "landscape")


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


class Scheduler:
    """Runs every unfinished job once its dependencies are finished, here or in a pool.

    ``on_done(job, metrics)`` is called in this process after each job (e.g. to refresh
    results.csv). A failing job is recorded and the jobs that depend on it are skipped; the
    others go on. ``cost(job)`` orders ready jobs, costliest first, and weighs them for the
    ETA. ``executor``: where the jobs run (executors.py); anything but one local worker goes
    through a pool. ``summary`` adds up every call of `run` (the search runs in waves)."""

    def __init__(
        self,
        context: RunContext,
        *,
        workers: int = 1,
        progress: Progress = NULL_PROGRESS,
        on_done: Callable[[Job, dict[str, Any]], None] | None = None,
        cost: Callable[[Job], float] | None = None,
        executor: ExecutorOptions = ExecutorOptions(),
    ):
        self.context, self.workers, self.progress = context, workers, progress
        self.on_done, self.executor = on_done, executor
        self.weight = cost or (lambda job: 1.0)
        self.summary = RunSummary()
        self.todo: dict[str, Job] = {}
        self.finished: set[str] = set()
        self.blocked: set[str] = set()
        self.planned: set[str] = set()
        self.jobs_done = 0

    def run(self, jobs: Sequence[Job]) -> RunSummary:
        """Run ``jobs`` (those finished in the store are counted as reused)."""
        started = time.time()
        store = self.context.store
        self.todo = {j.id: j for j in jobs}
        self.planned = set(self.todo)
        self.finished = {j.id for j in jobs if store.entry(j.stage, j.spec).done}
        self.blocked = set()
        self.summary.reused_ids.update(self.finished)
        for job_id in self.finished:
            self.todo.pop(job_id)
        # The bar advances by each job's estimated cost (image passes), so its ETA holds when
        # the first jobs are the long pre-trainings; the jobs themselves show as done / total.
        self.task = self.progress.task(
            "work (image passes)", sum(self.weight(j) for j in self.todo.values())
        )
        self.jobs_done, self.jobs_total = 0, len(self.todo)
        if self.workers <= 1 and self.executor.kind == "local":
            self._run_here()
        else:
            self._run_in_pool()
        self.task.close()
        self.summary.seconds += time.time() - started
        return self.summary

    def _ready(self) -> list[Job]:
        out = []
        for job in self.todo.values():
            if any(d in self.blocked for d in job.deps):
                continue
            # A dependency outside the plan (an imported file) is always ready.
            if all(d in self.finished or d not in self.planned for d in job.deps):
                out.append(job)
        # Costliest first (longest-processing-time order): the long pre-trainings start at
        # once instead of after the cheap jobs, which shortens the run on several workers.
        return sorted(out, key=self.weight, reverse=True)

    def _fail(self, job: Job, message: str) -> None:
        """Record the failure; everything downstream of ``job`` is skipped."""
        self.summary.failed.append((job.id, message))
        self.blocked.add(job.id)
        changed = True
        while changed:
            changed = False
            for other in list(self.todo.values()):
                if other.id not in self.blocked and any(d in self.blocked for d in other.deps):
                    self.blocked.add(other.id)
                    self.todo.pop(other.id)
                    changed = True

    def _complete(self, job: Job, metrics: dict[str, Any]) -> None:
        self.finished.add(job.id)
        metrics = dict(metrics)
        if metrics.pop(COMPUTED_HERE, True):
            self.summary.computed_ids.add(job.id)
        else:  # another runner finished it while this one waited
            self.summary.reused_ids.add(job.id)
        self.jobs_done += 1
        self.task.advance(
            self.weight(job), jobs=f"{self.jobs_done}/{self.jobs_total}", last=job.stage
        )
        if self.on_done:
            self.on_done(job, metrics)

    def _run_here(self) -> None:
        """One job at a time in this process."""
        while batch := self._ready():
            for job in batch:
                self.todo.pop(job.id)
                try:
                    metrics = run_job(job, self.context, self.progress)
                except UserError:
                    raise
                except DoublewinError as exc:
                    self._fail(job, str(exc))
                    continue
                self._complete(job, metrics)

    def _run_in_pool(self) -> None:
        """Every ready job submitted to the pool; each finished one frees its GPU."""
        local = self.executor.kind == "local"
        load = dict.fromkeys(worker_devices(self.context.device) if local else [], 0)
        # Locally the cores are shared among the workers; on a cluster a job asks for one CPU
        # unless --threads says more (the scheduler packs jobs onto the nodes' cores).
        threads = self.context.threads or (max(1, cpu_cores() // self.workers) if local else 1)
        with make_pool(self.executor, self.workers, threads) as pool:
            running: dict[futures.Future, tuple[Job, str | None]] = {}
            while True:
                for job in self._ready():
                    self.todo.pop(job.id)
                    # Each job goes to the least busy GPU: one per worker when there are as
                    # many workers as GPUs.
                    device = min(load, key=load.__getitem__) if load else None
                    if device:
                        load[device] += 1
                    running[self._submit(pool, job, device, threads)] = (job, device)
                if not running:
                    break
                pool.flush()
                done, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
                for future in done:
                    job, device = running.pop(future)
                    if device:
                        load[device] -= 1
                    self._collect(job, future)

    def _submit(self, pool: Pool, job: Job, device: str | None, threads: int) -> futures.Future:
        # The job sets its own threads: CPU numbers are bit-identical only at the same thread
        # count (float reductions change order), wherever it runs.
        context = replace(self.context, device=device or self.context.device, threads=threads)
        gpu = job.stage in GPU_STAGES and self.context.device != "cpu"
        return pool.submit(_worker_run, job, context, gpu=gpu)

    def _collect(self, job: Job, future: futures.Future) -> None:
        try:
            metrics = future.result()
        except UserError:
            raise  # bad input: stop everything (the pool stops its jobs)
        except Exception as exc:  # the job failed, or its worker or node died
            self._fail(job, f"{type(exc).__name__}: {exc}")
            return
        self._complete(job, metrics)


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
