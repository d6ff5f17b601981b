"""``doublewin run --dry-run``: the plan, per stage, with its cost in image passes, time and
disk, and what seeds on demand would spend."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from doublewin.cli.app import console, print_json
from doublewin.core.parsing import resolve_device
from doublewin.experiments.cost import GPU_REFERENCE_DEVICE, estimate, gpu_seconds
from doublewin.experiments.disk import plan_bytes
from doublewin.experiments.on_demand import on_demand_cost
from doublewin.experiments.results import collect_rows
from doublewin.experiments.run import Plan


def print_plan(plan: Plan, device: str, search: str | None, as_json: bool) -> None:
    dev = str(resolve_device(device))
    pending = plan.pending()
    cost = estimate(pending, plan.experiment.arch, dev)
    counts = plan.counts()
    per_stage = {
        stage: estimate([j for j in pending if j.stage == stage], plan.experiment.arch, dev)
        for stage in counts
    }
    result = {
        "experiment": plan.experiment.name,
        "run_dir": str(plan.run_dir),
        "device": dev,
        "stages": {
            stage: {
                **c,
                "passes": round(per_stage[stage].passes),
                "hours": round(per_stage[stage].seconds / 3600, 3),
                "disk_bytes": plan_bytes(
                    [j for j in pending if j.stage == stage], plan.experiment.arch
                ),
            }
            for stage, c in counts.items()
        },
        "total_passes": round(cost.passes),
        "total_hours": round(cost.seconds / 3600, 3),
        "measured_rates": cost.rates,
        "disk_bytes": plan_bytes(pending, plan.experiment.arch),
    }
    on_gpu = gpu_seconds(pending, plan.experiment.arch)
    if on_gpu is not None:
        result["one_gpu_hours"] = round(on_gpu / 3600, 3)
        result["one_gpu_reference"] = GPU_REFERENCE_DEVICE
    if search == "extreme":
        result["search_note"] = (
            "--search extreme runs a subset of the transfer jobs "
            "(bisection per ladder); the transfer cost above is the "
            "full grid's upper bound"
        )
    if plan.experiment.on_demand:
        result["seeds_on_demand"] = _on_demand_note(plan)
    if as_json:
        print_json(result)
        return
    table = Table(title=f"plan: {plan.experiment.name} → {plan.run_dir}")
    for column in ("stage", "jobs", "done", "to run", "image passes", "est. time", "disk"):
        table.add_column(column, justify="right")
    for stage, c in result["stages"].items():
        table.add_row(
            stage,
            str(c["total"]),
            str(c["done"]),
            str(c["to_run"]),
            f"{c['passes']:.3g}",
            _duration(c["hours"] * 3600),
            _size(c["disk_bytes"]),
        )
    console.print(table)
    rates = ", ".join(f"{k}: {v:,.0f} img/s" for k, v in cost.rates.items())
    console.print(f"disk: about {_size(result['disk_bytes'])} in the store")
    console.print(
        f"estimated {_duration(cost.seconds)} on {dev} "
        f"(measured forward+backward rates: {rates or 'none needed'})"
    )
    if on_gpu is not None and not dev.startswith("cuda"):
        console.print(f"on {GPU_REFERENCE_DEVICE}: about {_duration(on_gpu)}")
    if search == "extreme":
        console.print(result["search_note"])
    if plan.experiment.on_demand:
        console.print(result["seeds_on_demand"]["note"])


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
        f"at most {cost.most} more up to {seeds.max}; {expected}. The transfer row "  # type: ignore[union-attr]
        "above counts every seed up to max."
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
