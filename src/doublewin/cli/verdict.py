"""`doublewin verdict RESULTS.csv`: the verdicts, extremes and findings of any results table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from doublewin.cli import options as opt
from doublewin.cli.app import app, console, print_json
from doublewin.core import paths
from doublewin.core.errors import UserError
from doublewin.core.foreign import RESULTS_TABLE, present


@app.command("verdict")
def verdict_command(
    results: Annotated[
        Path, typer.Argument(help="A results table with the columns of docs/report.md.")
    ],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML of verdict options (rule, margin_floor, st_metrics, …) or a file with "
            "verdict: and pretrainings: sections (docs/verdict.md). Default: the run's own "
            "settings for a results.csv in a run folder, else doublewin's defaults.",
        ),
    ] = None,
    unit: Annotated[
        str,
        typer.Option(
            "--unit",
            help="The accuracies' scale: points (0–100), fraction (0–1, converted), or auto "
            "(points; a table whose accuracies are all at most 1 is refused).",
        ),
    ] = "auto",
    as_json: opt.Json = False,
) -> None:
    """Judge every ticket of a results table: double-win, not, or inconclusive, with intervals;
    each ladder's extreme double-win sparsity; the paper's findings."""
    present(results, *RESULTS_TABLE)
    if unit not in ("auto", "points", "fraction"):
        raise UserError(f"--unit {unit}: use points, fraction or auto")
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.analysis.judge import judge_table, judgement, judgement_lines, load_verdict_file

    run_file = results.parent / paths.EXPERIMENT
    if config is None and run_file.is_file():
        # A table in a run folder is judged by that run's settings and what its store holds
        # (landscapes, pre-trainings), as its report is.
        verdict_config, meta = _run_settings(results.parent)
        settings = f"the run's settings ({run_file})"
    else:
        verdict_config, meta = load_verdict_file(config)
        settings = (
            f"the settings of {config}"
            if config is not None
            else "doublewin's default settings (docs/verdict.md); --config FILE for others"
        )
    notes: list[str] = []
    data = judge_table(results, verdict_config, meta, unit=unit, notes=notes)
    if as_json:
        print_json({"settings": settings, "notes": notes, **judgement(data)})
        return
    for note in notes:  # first: how the table was read
        console.print(f"{note}.", highlight=False, markup=False, soft_wrap=True)
    console.print(f"Judged by {settings}.", highlight=False, markup=False, soft_wrap=True)
    for line in judgement_lines(data):
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def _run_settings(run_dir: Path) -> tuple[object, dict[str, object]]:
    """The verdict settings and report metadata of the run in ``run_dir``."""
    # deferred: the experiment machinery loads torch
    from doublewin.experiments.plan.experiment import load_experiment
    from doublewin.experiments.run.folder import store_root
    from doublewin.experiments.run.report_meta import run_meta
    from doublewin.experiments.store.store import Store

    experiment = load_experiment(run_dir / paths.EXPERIMENT)
    return experiment.verdict, run_meta(experiment, Store(store_root(experiment, run_dir)))
