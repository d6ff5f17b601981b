"""``doublewin run``: an experiment file → its run directory, resumably.

Layout (see docs/experiments.md)::

    runs/<name>/experiment.yaml      the resolved experiment (overrides applied)
    runs/<name>/store/<stage>-<hash>/ spec.json, artifacts, metrics.json, log.jsonl, DONE
    runs/<name>/results.csv          one row per finished transfer run
    runs/<name>/report/              report.md, report.html, figures/

results.csv is rewritten (atomically) after every finished transfer, so a killed run never
loses a finished result and the table always matches the store.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from doublewin.analysis.report import write_report
from doublewin.analysis.results_table import kept_columns, write_results_csv
from doublewin.core import paths
from doublewin.core.atomic import atomic_write_text
from doublewin.core.errors import UserError
from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.core.typed import to_dict
from doublewin.experiments.executors import ExecutorOptions
from doublewin.experiments.experiment import Experiment, load_experiment
from doublewin.experiments.grid import Job, expand, plan_ladders
from doublewin.experiments.on_demand import seeds_on_demand
from doublewin.experiments.passes import job_passes
from doublewin.experiments.results import (
    collect_rows,
    compute_meta,
    keeps_finished_rows,
    result_row,
)
from doublewin.experiments.runner import RunContext, RunSummary, run_jobs
from doublewin.experiments.search import search_extreme
from doublewin.experiments.store import Store

RESULTS_WRITE_INTERVAL_S = 5.0
LANDSCAPE_LABELS = ("pretraining", "dataset", "fraction", "regime", "seed", "sparsity", "rung")
LANDSCAPE_METRICS = ("sharpness", "hessian_top", "centre_loss", "radius")


@dataclass(frozen=True)
class Plan:
    """What a run would do: every job of the grid and which are already finished."""

    experiment: Experiment
    run_dir: Path
    jobs: tuple[Job, ...]
    done: frozenset[str]

    @property
    def store_root(self) -> Path:
        return store_root(self.experiment, self.run_dir)

    @property
    def store(self) -> Store:
        return Store(self.store_root)

    def counts(self) -> dict[str, dict[str, int]]:
        total = Counter(j.stage for j in self.jobs)
        done = Counter(j.stage for j in self.jobs if j.id in self.done)
        return {
            stage: {
                "total": total[stage],
                "done": done[stage],
                "to_run": total[stage] - done[stage],
            }
            for stage in total
        }

    def pending(self) -> list[Job]:
        return [j for j in self.jobs if j.id not in self.done]

    def search(self, asked: str | None = None) -> str | None:
        """The adaptive search to run: the one asked for (``--search``), else the
        experiment's own ``search:`` (None: the fixed grid)."""
        return asked if asked is not None else self.experiment.search


@dataclass
class RunOutcome:
    plan: Plan
    summary: RunSummary
    rows: list[dict[str, Any]]
    search: Any = None  # SearchOutcome when --search extreme ran
    on_demand: Any = None  # OnDemandOutcome when seeds were added on demand
    report: Any = None
    notes: list[str] = field(default_factory=list)


def store_root(experiment: Experiment, run_dir: Path) -> Path:
    return Path(experiment.store).expanduser() if experiment.store else run_dir / paths.STORE_DIR


def default_run_dir(experiment: Experiment, base: str | Path = "runs") -> Path:
    return Path(base) / experiment.name


def make_plan(
    source: str | Path | Mapping[str, Any],
    overrides: Iterable[str] = (),
    *,
    run_dir: str | Path | None = None,
) -> Plan:
    """Parse the experiment and expand its grid; reads the store, writes nothing."""
    experiment = load_experiment(source, overrides)
    folder = Path(run_dir) if run_dir else default_run_dir(experiment)
    jobs = tuple(_unique(expand(experiment)))
    store = Store(store_root(experiment, folder))
    done = frozenset(j.id for j in jobs if store.entry(j.stage, j.spec).done)
    return Plan(experiment, folder, jobs, done)


def context_for(
    plan: Plan,
    *,
    device: str = "auto",
    data_root: str | None = None,
    threads: int | None = None,
    compile: bool = False,
) -> RunContext:
    imports = {}
    for p in plan.experiment.pretrainings:
        if p.path is None:
            continue
        if not p.path.is_file():
            raise UserError(
                f"pretrain.runs.{p.label}.weights: {p.path} not found; pass a "
                "weights file from doublewin import-weights or doublewin pretrain"
            )
        if not p.weights_hash:
            raise UserError(
                f"pretrain.runs.{p.label}.weights: {p.path} is not a doublewin "
                "weights file; convert it with doublewin import-weights"
            )
        imports[p.ref] = str(p.path.resolve())
    ticket_files = {
        f.ref: str(f.path) for p in plan.experiment.pretrainings for f in p.ticket_files
    }
    return RunContext(
        store_root=plan.store_root,
        device=device,
        data_root=data_root,
        imports=imports,
        ticket_files=ticket_files,
        threads=threads,
        compile=compile,
    )


def write_resolved(plan: Plan) -> None:
    """runs/<name>/experiment.yaml: the experiment as it ran (overrides applied). A ``store:``
    is recorded as the absolute folder it resolved to (relative paths are taken from the
    folder the run starts in), so `doublewin report RUN_DIR` finds it from anywhere."""
    raw = dict(plan.experiment.raw)
    if plan.experiment.store:
        raw["store"] = str(plan.store_root.resolve())
    text = yaml.safe_dump(json.loads(json.dumps(raw, default=str)), sort_keys=False)
    atomic_write_text(plan.run_dir / paths.EXPERIMENT, text)


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
    executor = executor or ExecutorOptions()
    if executor.kind == "slurm" and executor.folder is None:
        executor = dataclasses.replace(executor, folder=plan.run_dir / paths.SLURM_DIR)
    context = context_for(
        plan, device=device, data_root=data_root, threads=threads, compile=compile
    )
    earlier = keeps_finished_rows(plan.run_dir, plan.jobs)
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    write_resolved(plan)
    store = plan.store
    results_path = plan.run_dir / paths.RESULTS

    rows_by_job: dict[str, dict[str, Any]] = {}
    last_write = [0.0]

    def refresh(job: Job | None = None, metrics: Any = None) -> list[dict[str, Any]]:
        """Add a finished transfer's row; rewrite results.csv at most every few seconds (the
        store holds every result, so the table can always be rebuilt from it)."""
        if job is not None:
            if job.stage != "transfer":
                return []
            rows_by_job[job.id] = result_row(job, metrics, job.id)
            if time.monotonic() - last_write[0] < RESULTS_WRITE_INTERVAL_S:
                return []
        else:
            rows_by_job.clear()
            rows_by_job.update({r["job"]: r for r in collect_rows(plan.jobs, store)})
        order = {j.id: i for i, j in enumerate(plan.jobs)}
        rows = sorted(rows_by_job.values(), key=lambda r: order.get(r["job"], 0))
        rows = kept_columns(rows, earlier)  # a column the user added stays
        if rows:  # a run that has finished no transfer yet leaves no empty table behind
            write_results_csv(rows, results_path)
        last_write[0] = time.monotonic()
        return rows

    def cost(job: Job) -> float:
        try:
            return max(1.0, job_passes(job))
        except UserError:
            return 1.0

    total = RunSummary()

    def run_some(jobs: list[Job]) -> list[dict[str, Any]]:
        wanted = _with_dependencies(jobs, plan.jobs)
        summary = run_jobs(
            wanted,
            context,
            workers=workers,
            progress=progress,
            on_done=refresh,
            cost=cost,
            executor=executor,
        )
        total.reused_ids |= summary.reused_ids
        total.computed_ids |= summary.computed_ids
        total.failed.extend(summary.failed)
        total.seconds += summary.seconds
        return refresh()

    outcome_search = on_demand = None
    search = plan.search(search)
    if search not in (None, "extreme"):
        raise UserError(f"--search {search}: unknown search; use --search extreme")
    try:
        refresh()  # results.csv matches the store from the start, whatever stopped a last run
        if search == "extreme":
            outcome_search = search_extreme(
                plan.jobs, run_some, plan.experiment.verdict, plan.experiment.anchor_rungs
            )
        elif plan.experiment.on_demand:
            on_demand = seeds_on_demand(
                plan.jobs, run_some, plan.experiment.verdict, plan.experiment.controls
            )
        if search == "extreme" or plan.experiment.on_demand:
            # The transfers were chosen; the landscapes asked for run whatever they found.
            run_some([j for j in plan.jobs if j.stage == "landscape"])
        else:
            run_some(list(plan.jobs))
    except KeyboardInterrupt:
        refresh()  # results.csv holds every finished transfer before the run stops
        raise
    rows = refresh()
    outcome = RunOutcome(plan, total, rows, outcome_search, on_demand)
    if report:
        outcome.report = write_run_report(
            plan.run_dir, rows, plan, search=outcome_search, on_demand=on_demand
        )
    return outcome


def write_run_report(
    run_dir: Path,
    rows: list[dict[str, Any]],
    plan: Plan | None = None,
    search: Any = None,
    on_demand: Any = None,
) -> Any:
    """report/ from the rows and what the plan knows about the pre-trainings."""
    experiment = plan.experiment if plan else load_experiment(run_dir / paths.EXPERIMENT)
    meta = run_meta(experiment, Store(store_root(experiment, run_dir)), search, on_demand)
    return write_report(
        rows, run_dir / paths.REPORT_DIR, meta=meta, verdict_config=experiment.verdict
    )


def run_meta(
    experiment: Experiment, store: Store, search: Any = None, on_demand: Any = None
) -> dict[str, Any]:
    """What the report says about the run besides the rows."""
    jobs = _unique(expand(experiment))
    pretrainings = []
    for p in experiment.pretrainings:
        item: dict[str, Any] = {"label": p.label, "ref": p.ref}
        if p.spec is not None:
            # The report reads a pre-training's kind from its regime: std, fat, at or control.
            item["regime"] = p.kind
            item["spec"] = to_dict(p.spec)
            entry = store.entry("pretrain", p.spec)
            if entry.done:
                metrics = entry.metrics()
                item.update(
                    {
                        k: metrics.get(k)
                        for k in ("source_sa", "source_ra", "collapsed", "content_hash")
                    }
                )
        else:
            item["weights"] = str(p.path)
        pretrainings.append(item)
    meta: dict[str, Any] = {
        "landscapes": landscape_meta(experiment, store),
        "name": experiment.name,
        "arch": experiment.arch,
        "seeds": list(experiment.seeds),
        "pretrainings": pretrainings,
        "datasets": list(experiment.datasets),
        "fractions": list(experiment.fractions),
        "verdict": to_dict(experiment.verdict),
        "compute": compute_meta(jobs, store),
        "ladders": plan_ladders(jobs),
    }
    if on_demand is not None:
        meta["on_demand"] = {
            "transfer_runs": on_demand.transfer_runs,
            "fixed_max_runs": on_demand.fixed_max_runs,
            "fixed_min_runs": on_demand.fixed_min_runs,
            "waves": on_demand.waves,
        }
    if search is not None:
        meta["search"] = {
            "transfer_runs": search.transfer_runs,
            "full_grid_transfer_runs": search.full_grid_transfer_runs,
            "ladders": [
                {
                    "key": list(s.key),
                    "extreme": s.extreme,
                    "notes": s.notes,
                    "evaluated": {
                        f"{s.sparsities[r]:.6f}": v for r, v in sorted(s.results.items())
                    },
                }
                for s in search.ladders
            ],
        }
    return meta


def landscape_meta(experiment: Experiment, store: Store) -> list[dict[str, Any]]:
    """Every finished landscape of the run: its labels, sharpness measures and grid file."""
    out = []
    for job in expand(experiment):
        if job.stage != "landscape":
            continue
        entry = store.entry(job.stage, job.spec)
        if not entry.done:
            continue
        metrics = entry.metrics()
        item = {k: job.labels.get(k) for k in LANDSCAPE_LABELS}
        item.update({k: metrics.get(k) for k in LANDSCAPE_METRICS})
        item["grid"] = str(entry.path / paths.LANDSCAPE_GRID)
        out.append(item)
    return out


def _unique(jobs: Iterable[Job]) -> list[Job]:
    # Two grid cells can map to the same spec (e.g. identical pre-trainings); run it once.
    seen: set[str] = set()
    out = []
    for job in jobs:
        if job.id not in seen:
            seen.add(job.id)
            out.append(job)
    return out


def _with_dependencies(jobs: Iterable[Job], universe: Iterable[Job]) -> list[Job]:
    by_id = {j.id: j for j in universe}
    wanted: dict[str, Job] = {}
    stack = list(jobs)
    while stack:
        job = stack.pop()
        if job.id in wanted:
            continue
        wanted[job.id] = job
        stack.extend(by_id[d] for d in job.deps if d in by_id)
    # Keep plan order so upstream stages come first.
    order = {j.id: i for i, j in enumerate(universe)}
    return sorted(wanted.values(), key=lambda j: order.get(j.id, 0))
