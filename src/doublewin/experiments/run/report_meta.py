"""What a run's report says besides its rows: the pre-trainings with their source accuracies,
the grid's settings and ladders, the compute spent, the landscapes, and what the search or the
seeds on demand ran (`run_meta`); `write_run_report` writes report/ with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from doublewin.analysis.report import write_report
from doublewin.core import paths
from doublewin.core.typed import to_dict
from doublewin.experiments.plan.experiment import Experiment, load_experiment
from doublewin.experiments.plan.grid import expand, plan_ladders
from doublewin.experiments.plan.pretrainings import Pretraining
from doublewin.experiments.run.folder import Plan, store_root, unique_jobs
from doublewin.experiments.run.results import compute_meta
from doublewin.experiments.store.store import Store

LANDSCAPE_LABELS = ("pretraining", "dataset", "fraction", "regime", "seed", "sparsity", "rung")
LANDSCAPE_METRICS = ("sharpness", "hessian_top", "centre_loss", "radius")
# What the report shows of a finished pre-training's metrics.
PRETRAIN_METRICS = ("source_sa", "source_ra", "collapsed", "content_hash")


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
    jobs = unique_jobs(expand(experiment))
    meta: dict[str, Any] = {
        "landscapes": landscape_meta(experiment, store),
        "name": experiment.name,
        "arch": experiment.arch,
        "seeds": list(experiment.seeds),
        "pretrainings": [pretraining_meta(p, store) for p in experiment.pretrainings],
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
        meta["search"] = search_meta(search)
    return meta


def pretraining_meta(p: Pretraining, store: Store) -> dict[str, Any]:
    """A pre-training as the report names it: trained here (its spec, kind and, once
    finished, its source accuracies) or imported (its weights file)."""
    item: dict[str, Any] = {"label": p.label, "ref": p.ref}
    if p.spec is None:
        item["weights"] = str(p.path)
        return item
    # The report reads a pre-training's kind from its regime: std, fat, at or control.
    item["regime"] = p.kind
    item["spec"] = to_dict(p.spec)
    entry = store.entry("pretrain", p.spec)
    if entry.done:
        metrics = entry.metrics()
        item.update({k: metrics.get(k) for k in PRETRAIN_METRICS})
    return item


def search_meta(search: Any) -> dict[str, Any]:
    """What ``--search extreme`` ran (a `SearchOutcome`): its transfer runs against the full
    grid's, and per ladder the extreme, the notes and every rung judged."""
    return {
        "transfer_runs": search.transfer_runs,
        "full_grid_transfer_runs": search.full_grid_transfer_runs,
        "ladders": [
            {
                "key": list(s.key),
                "extreme": s.extreme,
                "notes": s.notes,
                "evaluated": {f"{s.sparsities[r]:.6f}": v for r, v in sorted(s.results.items())},
            }
            for s in search.ladders
        ],
    }


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
