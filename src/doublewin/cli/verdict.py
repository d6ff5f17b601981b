"""`doublewin verdict RESULTS.csv`: the verdicts, extremes and findings of any results table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from doublewin.cli.app import JsonFlag, app, console, print_json
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
            "verdict: and pretrainings: sections (docs/verdict.md).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Judge every ticket of a results table: double-win, not, or inconclusive, with intervals;
    each ladder's extreme double-win sparsity; the paper's findings."""
    present(results, *RESULTS_TABLE)
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.analysis.judge import judge_table, judgement, judgement_lines, load_verdict_file

    verdict_config, meta = load_verdict_file(config)
    data = judge_table(results, verdict_config, meta)
    if as_json:
        print_json(judgement(data))
        return
    for line in judgement_lines(data):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
