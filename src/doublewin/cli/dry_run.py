"""``doublewin run --dry-run``: the plan, per stage, with its cost in image passes, time and
disk, the wall time on the workers the run will use, and what the savers (seeds on demand, the
extreme search) are expected to spend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.table import Table

from doublewin.cli.app import console, print_json
from doublewin.core.parsing import resolve_device
from doublewin.core.resources import cpu_cores
from doublewin.experiments.adaptive.on_demand import on_demand_cost
from doublewin.experiments.estimate.cost import (
    GPU_REFERENCE_DEVICE,
    RUN_OVERHEAD_S,
    gpu_seconds,
    job_seconds,
)
from doublewin.experiments.estimate.passes import job_passes
from doublewin.experiments.estimate.savers import (
    DEFAULT_SPREAD,
    SaverEstimate,
    expected_on_demand,
    expected_search,
    seeds_by_outcome,
)
from doublewin.experiments.estimate.schedule import makespan
from doublewin.experiments.run.folder import Plan
from doublewin.experiments.run.results import collect_rows
from doublewin.experiments.store.disk import plan_bytes


@dataclass(frozen=True)
class Estimate:
    """A plan's estimated cost on the run's device and workers: seconds of each pending job,
    the wall time of the fixed grid and with the savers, one reference GPU's time."""

    plan: Plan
    device: str
    workers: int
    threads: int
    seconds: dict[str, float]
    savers: list[SaverEstimate]
    fixed_wall: float
    wall: float
    on_gpu: float | None


def print_plan(
    plan: Plan,
    device: str,
    search: str | None,
    as_json: bool,
    *,
    workers: int = 1,
    threads: int | None = None,
    spread: float | None = None,
) -> None:
    """The plan per stage with its estimated cost (``as_json``: the same as JSON)."""
    found = estimate(plan, device, search, workers=workers, threads=threads, spread=spread)
    result = _as_json(found)
    if as_json:
        print_json(result)
        return
    _print_estimate(found, result)


def estimate(
    plan: Plan,
    device: str,
    search: str | None,
    *,
    workers: int = 1,
    threads: int | None = None,
    spread: float | None = None,
) -> Estimate:
    dev = str(resolve_device(device))
    threads = threads or max(1, cpu_cores() // max(1, workers))
    pending = plan.pending()
    arch = plan.experiment.arch
    seconds = {j.id: job_seconds(j, arch, dev, threads) for j in pending}
    savers = _savers(plan, search, spread or DEFAULT_SPREAD)
    fixed_wall = RUN_OVERHEAD_S + makespan(pending, seconds, workers)
    wall = fixed_wall
    if savers:
        # The savers run a share of the transfers: each planned transfer weighs by that share.
        share = savers[-1].share
        scaled = {k: v * (share if _is_transfer(k) else 1.0) for k, v in seconds.items()}
        wall = RUN_OVERHEAD_S + makespan(pending, scaled, workers)
    on_gpu = gpu_seconds(pending, arch)
    return Estimate(plan, dev, workers, threads, seconds, savers, fixed_wall, wall, on_gpu)


def _as_json(found: Estimate) -> dict[str, Any]:
    plan, seconds, savers = found.plan, found.seconds, found.savers
    pending, arch = plan.pending(), plan.experiment.arch
    result: dict[str, Any] = {
        "experiment": plan.experiment.name,
        "run_dir": str(plan.run_dir),
        "device": found.device,
        "workers": found.workers,
        "threads_per_job": found.threads,
        "stages": {
            stage: {
                **c,
                "passes": round(sum(job_passes(j) for j in pending if j.stage == stage)),
                "worker_hours": round(
                    sum(seconds[j.id] for j in pending if j.stage == stage) / 3600, 3
                ),
                "disk_bytes": plan_bytes([j for j in pending if j.stage == stage], arch),
            }
            for stage, c in plan.counts().items()
        },
        "total_passes": round(sum(job_passes(j) for j in pending)),
        "worker_hours": round(sum(seconds.values()) / 3600, 3),
        "wall_hours": round(found.wall / 3600, 3),
        "fixed_grid_wall_hours": round(found.fixed_wall / 3600, 3),
        "disk_bytes": plan_bytes(pending, arch),
    }
    if found.on_gpu is not None:
        result["one_gpu_hours"] = round(found.on_gpu / 3600, 3)
        result["one_gpu_reference"] = GPU_REFERENCE_DEVICE
        if savers:
            transfers = gpu_seconds([j for j in pending if j.stage == "transfer"], arch) or 0.0
            with_savers = found.on_gpu - (1 - savers[-1].share) * transfers
            result["one_gpu_hours_with_savers"] = round(with_savers / 3600, 3)
    for saver in savers:
        result.setdefault("savers", []).append(
            {
                "expected_transfer_runs": round(saver.expected),
                "full_grid": saver.full_grid,
                "basis": saver.basis,
            }
        )
    if plan.experiment.on_demand:
        result["seeds_on_demand"] = _on_demand_note(plan)
    busy = _busy_note()
    if busy:
        result["note"] = busy
    return result


def _print_estimate(found: Estimate, result: dict[str, Any]) -> None:
    _print_table(found.plan, result)
    console.print(f"disk: about {_size(result['disk_bytes'])} in the store", highlight=False)
    console.print(
        f"estimated {_duration(found.wall)} of wall time on {found.device} with "
        f"{found.workers} worker(s) of {found.threads} thread(s) "
        f"({_duration(sum(found.seconds.values()))} of work"
        + (f"; the fixed grid {_duration(found.fixed_wall)}" if found.savers else "")
        + ")",
        highlight=False,
    )
    for saver in found.savers:
        console.print(
            f"expected {saver.expected:.0f} of the fixed grid's {saver.full_grid} transfer runs "
            f"({saver.share:.0%}), from {saver.basis}",
            highlight=False,
        )
    if found.on_gpu is not None and not found.device.startswith("cuda"):
        saved = result.get("one_gpu_hours_with_savers")
        console.print(
            f"on {GPU_REFERENCE_DEVICE}: about {_duration(found.on_gpu)} for the fixed grid"
            + (f", {_duration(saved * 3600)} expected with the savers" if saved else ""),
            highlight=False,
        )
    if found.plan.experiment.on_demand:
        console.print(result["seeds_on_demand"]["note"], highlight=False)
    if "note" in result:
        console.print(result["note"], highlight=False)


def _busy_note() -> str:
    """A warning when some speeds were timed beside other work (they read slow)."""
    from doublewin.experiments.estimate.rates import BUSY_PROBES  # deferred: it imports torch

    if not BUSY_PROBES:
        return ""
    return (
        f"note: {len(BUSY_PROBES)} speed(s) were timed while other processes kept the CPU "
        "busy, so the time above may be high; they are not kept: run the dry run again "
        "on an idle machine"
    )


def _is_transfer(job_id: str) -> bool:
    return job_id.startswith("transfer-")


def _savers(plan: Plan, search: str | None, spread: float) -> list[SaverEstimate]:
    """The savers this run uses, each alone and, last, together."""
    experiment = plan.experiment
    search = plan.search(search)
    out = []
    on_demand = None
    if experiment.on_demand:
        on_demand = expected_on_demand(plan.jobs, experiment.verdict, experiment.controls, spread)
        out.append(on_demand)
    if search == "extreme":
        alone = expected_search(plan.jobs, anchors=experiment.anchor_rungs)
        out.append(alone)
        if on_demand is not None:
            seeds = seeds_by_outcome(experiment.verdict, spread)
            both = expected_search(plan.jobs, seeds_per_cell=seeds, anchors=experiment.anchor_rungs)
            basis = f"both: {alone.basis}; {on_demand.basis}"
            out.append(SaverEstimate(both.expected, both.full_grid, basis))
    return out


def _print_table(plan: Plan, result: dict[str, Any]) -> None:
    table = Table(title=f"plan: {plan.experiment.name} → {plan.run_dir}")
    for column in ("stage", "jobs", "done", "to run", "image passes", "work", "disk"):
        table.add_column(column, justify="right")
    for stage, c in result["stages"].items():
        table.add_row(
            stage,
            str(c["total"]),
            str(c["done"]),
            str(c["to_run"]),
            f"{c['passes']:.3g}",
            _duration(c["worker_hours"] * 3600),
            _size(c["disk_bytes"]),
        )
    console.print(table)


def _on_demand_note(plan: Plan) -> dict[str, Any]:
    """The transfer runs seeds on demand would spend: the first look everywhere, the most the
    plan's max could add, and what the verdicts of finished results expect."""
    seeds = plan.experiment.verdict.seeds
    rows = collect_rows(plan.jobs, plan.store)
    cost = on_demand_cost(plan.jobs, rows, plan.experiment.verdict, plan.experiment.controls)
    expected = (
        f"the verdicts so far expect about {cost.expected} more for the {cost.judged} of "
        f"{cost.cells} (ticket, regime) cells judged"
        if cost.expected is not None
        else "how many more is known once the first look has run"
    )
    note = (
        f"seeds on demand ({seeds.spending}, {seeds.min}–{seeds.max} seeds, step "  # type: ignore[union-attr]
        f"{seeds.step}): {cost.first_look} transfer runs of the first {seeds.min} seeds, "  # type: ignore[union-attr]
        f"at most {cost.most} more up to {seeds.max}; {expected}."  # type: ignore[union-attr]
    )
    return {
        "first_look": cost.first_look,
        "most": cost.most,
        "expected": cost.expected,
        "note": note,
    }


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
