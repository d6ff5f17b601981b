"""`doublewin run`, `doublewin report` and `doublewin demo`: the experiment grid end to end."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from doublewin.cli import options as opt
from doublewin.cli.app import app, console, print_json
from doublewin.cli.outputs import check_writable
from doublewin.cli.progress import RichProgress
from doublewin.cli.run_options import (
    AddressOption,
    ExecutorOption,
    ExperimentSetOption,
    GpusOption,
    JobsOption,
    OutOption,
    PartitionOption,
    PerGpuOption,
    SearchOption,
    SeedsOption,
    TimeOption,
    check_options,
    check_spread,
)
from doublewin.core import paths
from doublewin.core.errors import RunFailure, UserError
from doublewin.core.foreign import present
from doublewin.core.parsing import resolve_device
from doublewin.core.resources import (
    check_jobs,
    check_threads,
    check_workers_per_gpu,
    fitting_jobs,
)
from doublewin.experiments.run.executors import ExecutorOptions, require_executor

if TYPE_CHECKING:
    from doublewin.experiments.run.folder import Plan


@app.command("run")
def run_command(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML.")],
    overrides: ExperimentSetOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and its estimated cost; run nothing.")
    ] = False,
    jobs: JobsOption = None,
    workers_per_gpu: PerGpuOption = None,
    search: SearchOption = None,
    assume_spread: Annotated[
        float | None,
        typer.Option(
            "--assume-spread",
            help="With --dry-run: the per-seed spread of ticket − dense (points) the expected "
            "cost of seeds on demand assumes [default: 1.0, docs/verdict.md].",
        ),
    ] = None,
    seeds: SeedsOption = None,
    out: OutOption = None,
    device: opt.Device = "auto",
    data_root: opt.DataRoot = None,
    compile: opt.Compile = False,
    threads: opt.Threads = None,
    executor: ExecutorOption = "local",
    address: AddressOption = None,
    partition: PartitionOption = None,
    time_minutes: TimeOption = None,
    gpus: GpusOption = None,
    as_json: opt.Json = False,
) -> None:
    """Run every stage of an experiment through the store; killed and restarted, it resumes."""
    present(experiment, "an experiment YAML", "pass the path of an experiment YAML")
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.cli.dry_run import print_plan
    from doublewin.experiments.run.folder import make_plan

    check_options(
        executor,
        {"--address": address, "--partition": partition, "--time": time_minutes, "--gpus": gpus},
        search=search,
        seeds=seeds,
        overrides=list(overrides or ()),
        dry_run=dry_run,
        assume_spread=assume_spread,
    )
    require_executor(executor)
    jobs = _workers(executor, jobs, workers_per_gpu, threads, device)
    plan = make_plan(
        experiment, [*(overrides or ()), *(["seeds=auto"] if seeds else [])], run_dir=out
    )
    if plan.experiment.transfers_nothing and not as_json:
        console.print(plan.experiment.transfers_nothing, highlight=False, markup=False)
    check_spread(assume_spread, plan.experiment.on_demand)
    if dry_run:
        options = {"workers": jobs, "threads": threads, "spread": assume_spread}
        print_plan(plan, device, search, as_json, **options)
        return
    _execute(
        plan,
        jobs=jobs,
        device=device,
        data_root=data_root,
        search=search,
        as_json=as_json,
        compile=compile,
        threads=threads,
        executor=ExecutorOptions(
            kind=executor,  # type: ignore[arg-type]
            address=address,
            partition=partition,
            **({} if time_minutes is None else {"time_minutes": time_minutes}),
            **({} if gpus is None else {"gpus": gpus}),
        ),
    )


@app.command("demo")
def demo_command(
    quick: Annotated[
        bool, typer.Option("--quick", help="Toy size: the same pipeline in about a minute.")
    ] = False,
    vit: Annotated[
        bool,
        typer.Option(
            "--vit", help="The demo on a small timm ViT (configs/demo-vit.yaml; needs timm)."
        ),
    ] = False,
    out: OutOption = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            min=1,
            help="Worker processes (default: one per GPU, else one per CPU core up to 4).",
        ),
    ] = None,
    workers_per_gpu: PerGpuOption = None,
    landscapes: Annotated[
        bool,
        typer.Option(
            "--landscapes",
            help="Add the paper's Figure 6 (loss landscapes of the IMP tickets near 73.79%) "
            "to the demo: about 3 more minutes on 2 CPU cores.",
        ),
    ] = False,
    overrides: ExperimentSetOption = None,
    device: opt.Device = "auto",
    compile: opt.Compile = False,
    threads: opt.Threads = None,
    as_json: opt.Json = False,
) -> None:
    """Run the shipped demo experiment on the embedded data, then write its report."""
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.experiments.run.demo import demo_config, landscape_overrides
    from doublewin.experiments.run.folder import make_plan

    if quick and vit:
        raise UserError("--quick and --vit are two demos; pass one of them")
    if landscapes and (quick or vit):
        raise UserError("--landscapes adds Figure 6 to the full demo; leave out --quick / --vit")
    jobs = _workers("local", jobs, workers_per_gpu, threads, device)
    config = demo_config(quick, vit)
    extra = landscape_overrides() if landscapes else []
    plan = make_plan(config, [*extra, *(overrides or ())], run_dir=out)
    _execute(
        plan,
        jobs=jobs,
        device=device,
        data_root=None,
        search=None,
        as_json=as_json,
        compile=compile,
        threads=threads,
    )


@app.command("report")
def report_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")], as_json: opt.Json = False
) -> None:
    """Write results.csv, report.md and report.html (with figures) for a run directory."""
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.analysis.results_table import (
        kept_columns,
        read_results_csv,
        write_results_csv,
    )
    from doublewin.experiments.run.folder import make_plan
    from doublewin.experiments.run.report_meta import write_run_report
    from doublewin.experiments.run.results import collect_rows

    resolved = run_dir / paths.EXPERIMENT
    if not resolved.is_file():
        raise UserError(f"{resolved} not found; pass a run directory made by doublewin run")
    plan = make_plan(resolved, run_dir=run_dir)
    if not plan.store_root.is_dir() and not plan.experiment.store:
        raise UserError(
            f"{run_dir}: no job of this run has finished yet ({plan.store_root} is not there), "
            "so there is nothing to report; run `doublewin run` on its experiment again"
        )
    if not plan.store_root.is_dir():
        raise UserError(
            f"{plan.store_root}: the run's store is not there (store: in {resolved}); run "
            "the report from the folder the run was started in, or fix that path"
        )
    rows = collect_rows(plan.jobs, plan.store)
    table = run_dir / paths.RESULTS
    earlier = read_results_csv(table) if table.is_file() else []
    before = len(earlier)
    if not rows and not before and not plan.experiment.transfers_nothing:
        raise UserError(
            f"{run_dir}: no transfer of this run has finished yet, so there is nothing to "
            "report; run `doublewin run` on its experiment again"
        )
    rows = kept_columns(rows, earlier)  # a column the user added to results.csv stays
    if len(rows) < before:
        # Never replace a table with a smaller one: the store read is not the one it came from.
        raise UserError(
            f"{plan.store_root} holds {len(rows)} finished transfer(s) but {table} has "
            f"{before} rows; {table.name} is left as it is. Point store: in {resolved} at "
            "the run's store"
        )
    check_writable(table, folder=False, option="RUN_DIR")
    check_writable(run_dir / paths.REPORT_DIR, folder=True, option="RUN_DIR")
    write_results_csv(rows, table)
    report = write_run_report(run_dir, rows, plan)
    if as_json:
        print_json(
            {
                "rows": len(rows),
                "results": str(run_dir / paths.RESULTS),
                "markdown": str(report.markdown),
                "html": str(report.html),
                "figures": [str(f) for f in report.figures],
            }
        )
        return
    console.print(f"{len(rows)} transfer runs → {run_dir / paths.RESULTS}")
    console.print(f"report: {report.markdown}  {report.html}")


def _workers(
    executor: str, jobs: int | None, per_gpu: int | None, threads: int | None, device: str
) -> int:
    """The jobs a run starts at once. Locally: --jobs, else as doublewin demo (one worker
    per GPU, else per core up to 4, as many as the cores hold at --threads), each checked
    against this machine's cores and GPUs; on a cluster the scheduler decides (--jobs or 1)."""
    if executor != "local":
        return jobs or 1
    # deferred: the demo's defaults look at the GPUs (torch)
    from doublewin.experiments.run.demo import demo_jobs

    check_workers_per_gpu(per_gpu, jobs, device)
    if jobs is not None:
        check_jobs(jobs, device)
    else:
        jobs = fitting_jobs(demo_jobs(device, per_gpu), threads)
    check_threads(threads, workers=jobs)
    return jobs


def _execute(
    plan: Plan,
    *,
    jobs: int,
    device: str,
    data_root: str | None,
    search: str | None,
    as_json: bool,
    compile: bool = False,
    threads: int | None = None,
    executor: ExecutorOptions | None = None,
) -> None:
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.experiments.run.execute import execute

    resolve_device(device)  # an impossible device stops here, before anything is written
    check_writable(plan.run_dir, folder=True)
    if plan.experiment.store:
        check_writable(plan.store_root, folder=True, option="store:")
    counts = plan.counts()
    if not as_json:
        todo = ", ".join(f"{c['to_run']} {stage}" for stage, c in counts.items())
        console.print(
            f"[bold]{plan.experiment.name}[/]: {todo} to run "
            f"({len(plan.done)} of {len(plan.jobs)} jobs already done) → "
            f"{plan.run_dir}"
        )
    with RichProgress(enabled=not as_json) as progress:
        outcome = execute(
            plan,
            workers=jobs,
            device=device,
            data_root=data_root,
            progress=progress,
            search=search,
            compile=compile,
            threads=threads,
            executor=executor,
        )
    summary = outcome.summary
    if as_json:
        print_json(_outcome_json(plan, outcome))
    else:
        _print_outcome(plan, outcome)
    if summary.failed:
        first_id, message = summary.failed[0]
        raise RunFailure(
            f"{len(summary.failed)} job(s) failed, first {first_id}: {message}; "
            "fix it and run again (finished work is kept)"
        )


def _outcome_json(plan: Plan, outcome: Any) -> dict[str, Any]:
    """What a run did, for --json."""
    summary = outcome.summary
    result: dict[str, Any] = {
        "run_dir": str(plan.run_dir),
        "computed": summary.computed,
        "reused": summary.done_before,
        "failed": summary.failed,
        "seconds": round(summary.seconds, 1),
        "transfer_runs": len(outcome.rows),
    }
    if outcome.search is not None:
        result["search"] = {
            "transfer_runs": outcome.search.transfer_runs,
            "full_grid_transfer_runs": outcome.search.full_grid_transfer_runs,
            "extreme": {
                " / ".join(str(k) for k in s.key): s.extreme for s in outcome.search.ladders
            },
        }
    if outcome.report is not None:
        result["report"] = str(outcome.report.html)
    return result


def _print_outcome(plan: Plan, outcome: Any) -> None:
    """What a run did, in words."""
    summary = outcome.summary
    console.print(
        f"done in {summary.seconds:.0f} s: {summary.computed} jobs computed, "
        f"{summary.done_before} reused; results: "
        f"{plan.run_dir / paths.RESULTS}"
    )
    if outcome.search is not None:
        s = outcome.search
        console.print(
            f"extreme search: {s.transfer_runs} transfer runs instead of "
            f"{s.full_grid_transfer_runs} for the full grid"
        )
        for ladder in s.ladders:
            extreme = "none" if ladder.extreme is None else f"{ladder.extreme:.2%}"
            console.print(
                f"  {' / '.join(str(k) for k in ladder.key if k != '')}: "
                f"extreme double-win sparsity {extreme}" + "".join(f"; {n}" for n in ladder.notes)
            )
    if outcome.report is not None:
        console.print(f"report: {outcome.report.html}")
