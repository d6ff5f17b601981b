"""``doublewin run``: a plan run into its folder, resumably: the fixed grid, the extreme search
or the seeds on demand through one scheduler, results.csv kept in step, then the report.

results.csv is rewritten (atomically) as transfers finish, so a killed run never loses a
finished result and the table always matches the store.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from doublewin.analysis.results_table import kept_columns, write_results_csv
from doublewin.core import paths
from doublewin.core.errors import UserError
from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.experiments.adaptive.on_demand import seeds_on_demand
from doublewin.experiments.adaptive.search import search_extreme
from doublewin.experiments.estimate.passes import job_passes
from doublewin.experiments.plan.grid import Job
from doublewin.experiments.run.executors import ExecutorOptions
from doublewin.experiments.run.folder import Plan, context_for, write_resolved
from doublewin.experiments.run.report_meta import write_run_report
from doublewin.experiments.run.results import collect_rows, keeps_finished_rows, result_row
from doublewin.experiments.run.scheduler import RunSummary, Scheduler

RESULTS_WRITE_INTERVAL_S = 5.0
SEARCHES = ("extreme",)


@dataclass
class RunOutcome:
    plan: Plan
    summary: RunSummary
    rows: list[dict[str, Any]]
    search: Any = None  # SearchOutcome when --search extreme ran
    on_demand: Any = None  # OnDemandOutcome when seeds were added on demand
    report: Any = None
    notes: list[str] = field(default_factory=list)


class ResultsFile:
    """The run's results.csv, one row per finished transfer in plan order. A row is added as
    its job finishes and the file rewritten at most every RESULTS_WRITE_INTERVAL_S; the store
    holds every result, so `rebuild` can always make the table from it. ``earlier``: the rows
    of the table found in the folder, whose extra columns stay."""

    def __init__(self, plan: Plan, earlier: list[dict[str, Any]]):
        self.plan, self.earlier = plan, earlier
        self.order = {j.id: i for i, j in enumerate(plan.jobs)}
        self.rows_by_job: dict[str, dict[str, Any]] = {}
        self.written_at = 0.0

    def add(self, job: Job, metrics: Any) -> None:
        """A finished job's row (the scheduler's ``on_done``); only transfers have one."""
        if job.stage != "transfer":
            return
        self.rows_by_job[job.id] = result_row(job, metrics, job.id)
        if time.monotonic() - self.written_at >= RESULTS_WRITE_INTERVAL_S:
            self.write()

    def rebuild(self) -> list[dict[str, Any]]:
        """Every finished transfer's row read from the store, written out; the rows."""
        self.rows_by_job = {r["job"]: r for r in collect_rows(self.plan.jobs, self.plan.store)}
        return self.write()

    def write(self) -> list[dict[str, Any]]:
        rows = sorted(self.rows_by_job.values(), key=lambda r: self.order.get(r["job"], 0))
        rows = kept_columns(rows, self.earlier)  # a column the user added stays
        if rows:  # a run that has finished no transfer yet leaves no empty table behind
            write_results_csv(rows, self.plan.run_dir / paths.RESULTS)
        self.written_at = time.monotonic()
        return rows


def execute(
    plan: Plan,
    *,
    workers: int = 1,
    device: str = "auto",
    data_root: str | None = None,
    progress: Progress = NULL_PROGRESS,
    search: str | None = None,
    threads: int | None = None,
    report: bool = True,
    compile: bool = False,
    executor: ExecutorOptions | None = None,
) -> RunOutcome:
    """Run the plan (or the adaptive search over it), refresh results.csv, write the report.

    Interrupted (Ctrl-C, SIGTERM), it stops the jobs, rewrites results.csv from the store and
    re-raises: every finished entry is kept for the next run of the same command."""
    search = plan.search(search)
    if search is not None and search not in SEARCHES:
        raise UserError(f"--search {search}: unknown search; use --search extreme")
    executor = executor or ExecutorOptions()
    if executor.kind == "slurm" and executor.folder is None:
        executor = dataclasses.replace(executor, folder=plan.run_dir / paths.SLURM_DIR)
    context = context_for(
        plan, device=device, data_root=data_root, threads=threads, compile=compile
    )
    results = ResultsFile(plan, keeps_finished_rows(plan.run_dir, plan.jobs))
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    write_resolved(plan)
    scheduler = Scheduler(
        context,
        workers=workers,
        progress=progress,
        on_done=results.add,
        cost=_weight,
        executor=executor,
    )

    def run_some(jobs: list[Job]) -> list[dict[str, Any]]:
        scheduler.run(with_dependencies(jobs, plan.jobs))
        return results.rebuild()

    try:
        # results.csv matches the store from the start, whatever stopped a last run.
        results.rebuild()
        found = _run_plan(plan, search, run_some)
    except KeyboardInterrupt:
        results.rebuild()  # results.csv holds every finished transfer before the run stops
        raise
    rows = results.rebuild()
    outcome = RunOutcome(plan, scheduler.summary, rows, *found)
    if report:
        outcome.report = write_run_report(plan.run_dir, rows, plan, *found)
    return outcome


def _run_plan(
    plan: Plan, search: str | None, run: Callable[[list[Job]], list[dict[str, Any]]]
) -> tuple[Any, Any]:
    """The fixed grid, the extreme search or the seeds on demand, through ``run``; returns
    (the search's outcome, the seeds on demand's outcome), None for what did not run."""
    experiment = plan.experiment
    if search is None and not experiment.on_demand:
        run(list(plan.jobs))
        return None, None
    found_search = on_demand = None
    if search == "extreme":
        found_search = search_extreme(plan.jobs, run, experiment.verdict, experiment.anchor_rungs)
    else:
        on_demand = seeds_on_demand(plan.jobs, run, experiment.verdict, experiment.controls)
    # The transfers were chosen; the landscapes asked for run whatever they found.
    run([j for j in plan.jobs if j.stage == "landscape"])
    return found_search, on_demand


def _weight(job: Job) -> float:
    """A job's share of the progress bar and its place in the queue: its image passes."""
    try:
        return max(1.0, job_passes(job))
    except UserError:
        return 1.0


def with_dependencies(jobs: Iterable[Job], universe: Iterable[Job]) -> list[Job]:
    """``jobs`` and every job of ``universe`` they depend on, in ``universe``'s order (so
    upstream stages come first)."""
    by_id = {j.id: j for j in universe}
    wanted: dict[str, Job] = {}
    stack = list(jobs)
    while stack:
        job = stack.pop()
        if job.id in wanted:
            continue
        wanted[job.id] = job
        stack.extend(by_id[d] for d in job.deps if d in by_id)
    order = {j.id: i for i, j in enumerate(universe)}
    return sorted(wanted.values(), key=lambda j: order.get(j.id, 0))
