"""A run folder and what its experiment plans there: the `Plan` (every job of the grid and
which are finished in the store), the store's place, the resolved experiment.yaml, and the
context its jobs run in (`context_for`).

Layout (see docs/experiments.md)::

    runs/<name>/experiment.yaml      the resolved experiment (overrides applied)
    runs/<name>/store/<stage>-<hash>/ spec.json, artifacts, metrics.json, log.jsonl, DONE
    runs/<name>/results.csv          one row per finished transfer run
    runs/<name>/report/              report.md, report.html, figures/
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from doublewin.core import paths
from doublewin.core.atomic import atomic_write_text
from doublewin.core.errors import UserError
from doublewin.experiments.plan.experiment import Experiment, load_experiment
from doublewin.experiments.plan.grid import Job, expand
from doublewin.experiments.run.job import RunContext
from doublewin.experiments.store.store import Store


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
    jobs = tuple(unique_jobs(expand(experiment)))
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


def unique_jobs(jobs: Iterable[Job]) -> list[Job]:
    # Two grid cells can map to the same spec (e.g. identical pre-trainings); run it once.
    seen: set[str] = set()
    out = []
    for job in jobs:
        if job.id not in seen:
            seen.add(job.id)
            out.append(job)
    return out
