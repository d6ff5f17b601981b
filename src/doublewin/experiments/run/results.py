"""One results row per finished transfer job: its grid labels, every spec field, its metrics.

Rows are what the verdict and the report read (the vocabulary is core/results.py). Timing
columns change from run to run; everything else is a function of the spec alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from doublewin.analysis.results_table import read_results_csv
from doublewin.core import paths
from doublewin.core.errors import UserError
from doublewin.core.results import LABEL_COLUMNS
from doublewin.core.typed import to_dict
from doublewin.experiments.estimate.passes import job_passes
from doublewin.experiments.plan.grid import Job
from doublewin.experiments.store.store import Store


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping → dotted keys (``train.attack.eps``); sequences become strings."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            out[name] = " ".join(str(v) for v in value)
        else:
            out[name] = value
    return out


def result_row(job: Job, metrics: Mapping[str, Any], job_id: str | None = None) -> dict[str, Any]:
    """The results.csv row of one finished transfer job."""
    row: dict[str, Any] = {column: job.labels.get(column, "") for column in LABEL_COLUMNS}
    row["sparsity_target"] = row["sparsity"]
    for key, value in metrics.items():
        if isinstance(value, (int, float, str, bool)) or value is None:
            row[key] = value
    # The verdict groups tickets by their ladder rung; the achieved sparsity is kept aside.
    row["sparsity_achieved"] = metrics.get("sparsity", row["sparsity"])
    row["sparsity"] = job.labels.get("sparsity", 0.0)
    row["job"] = job_id or job.id
    row.update({f"spec.{k}": v for k, v in flatten(to_dict(job.spec)).items()})
    return row


def collect_rows(jobs: Iterable[Job], store: Store) -> list[dict[str, Any]]:
    """Rows of every finished transfer job among ``jobs``, in plan order."""
    rows = []
    for job in jobs:
        if job.stage != "transfer":
            continue
        entry = store.entry(job.stage, job.spec)
        if entry.done:
            rows.append(result_row(job, entry.metrics(), job.id))
    return rows


def keeps_finished_rows(run_dir: Path, jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """The rows of the run folder's results.csv (whose columns a user may have added to), or
    one UserError when it holds finished runs ``jobs`` do not make: the folder belongs to
    another experiment, whose table the run would shrink."""
    table = run_dir / paths.RESULTS
    if not table.is_file():
        return []
    try:
        rows = read_results_csv(table)
    except UserError:
        return []  # a damaged table is rebuilt from the store
    planned = {job.id for job in jobs}
    dropped = [row for row in rows if row.get("job") and row["job"] not in planned]
    if dropped:
        first = dropped[0]
        raise UserError(
            f"{run_dir}: holds {len(dropped)} finished runs of another experiment that "
            f"this one does not plan (e.g. {first.get('pretraining')} {first.get('method')} "
            f"{first.get('regime')} seed {first.get('seed')}); pass --out for a new run "
            "folder, or remove that one"
        )
    return rows


def compute_meta(jobs: Sequence[Job], store: Store) -> dict[str, dict[str, float]]:
    """Per stage, the finished jobs of the plan: how many, their wall seconds (each job's own
    measurement) and their image passes."""
    out: dict[str, dict[str, float]] = {}
    for job in jobs:
        entry = store.entry(job.stage, job.spec)
        if not entry.done:
            continue
        metrics = entry.metrics()
        seconds = metrics.get("job_seconds", metrics.get("seconds"))
        stage = out.setdefault(job.stage, {"jobs": 0, "seconds": 0.0, "passes": 0.0, "timed": 0})
        stage["jobs"] += 1
        stage["passes"] += job_passes(job)
        if isinstance(seconds, (int, float)):
            stage["seconds"] += float(seconds)
            stage["timed"] += 1
    return out
