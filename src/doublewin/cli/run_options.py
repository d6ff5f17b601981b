"""The options of `doublewin run` and `doublewin demo`, and the combinations of them that are
refused because an option would do nothing in them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from doublewin.cli.options import set_option
from doublewin.core.errors import UserError
from doublewin.core.numbers import Range, read_number
from doublewin.experiments.run.executors import EXECUTORS, ExecutorOptions

ExperimentSetOption = set_option("a key of the experiment", "transfer.regimes.at.epochs=5")
JobsOption = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        min=1,
        help="Independent stages run in N processes. Default: one per GPU when there are "
        "GPUs, else one per CPU core up to 4 (as doublewin demo).",
    ),
]
PerGpuOption = Annotated[
    int | None,
    typer.Option(
        "--workers-per-gpu",
        min=1,
        help="Workers sharing each GPU when --jobs is not given (small models leave a GPU "
        "idle with one) [default: 1].",
    ),
]
OutOption = Annotated[
    Path | None, typer.Option("--out", help="Run directory (default: runs/<experiment name>).")
]
ExecutorOption = Annotated[
    str,
    typer.Option(
        "--executor",
        help="local (processes on this machine), ray (a Ray cluster; `pip install "
        "doublewin[ray]`) or slurm (Slurm job arrays through submitit; `doublewin[slurm]`).",
    ),
]
AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="Ray cluster to join (e.g. 10.0.0.1:6379) [default: none, start Ray here].",
    ),
]
PartitionOption = Annotated[
    str | None,
    typer.Option("--partition", help="Slurm partition [default: the cluster's default]."),
]
TimeOption = Annotated[
    int | None,
    typer.Option(
        "--time",
        min=1,
        help=f"Slurm time limit per job, in minutes [default: {ExecutorOptions.time_minutes}].",
    ),
]
GpusOption = Annotated[
    int | None,
    typer.Option(
        "--gpus",
        min=0,
        help="GPUs per Slurm job for the jobs that train (0: CPU) "
        f"[default: {ExecutorOptions.gpus}].",
    ),
]
# --assume-spread: the per-seed spread (points) the cost of seeds on demand is estimated at.
SPREAD = Range(0.01, 100.0)
# The options only one executor reads; given with another, they would do nothing.
EXECUTOR_OPTIONS = {
    "--address": "ray",
    "--partition": "slurm",
    "--time": "slurm",
    "--gpus": "slurm",
}
SeedsOption = Annotated[
    str | None,
    typer.Option(
        "--seeds",
        help="auto: seeds on demand — every ticket runs verdict.seeds.min seeds, then only the "
        "still inconclusive ones get more, up to max, judged by group-sequential intervals "
        "(docs/verdict.md) [default: the experiment's seeds list].",
    ),
]
SearchOption = Annotated[
    str | None,
    typer.Option(
        "--search",
        help="extreme: find each ladder's extreme double-win sparsity by bisection "
        "over its rungs (confirmed one rung above the boundary, ST judged before AT) instead of "
        "the full grid [default: none, the full grid].",
    ),
]


def check_options(
    executor: str,
    given: dict[str, object],
    *,
    search: str | None,
    seeds: str | None,
    overrides: list[str],
    dry_run: bool,
    assume_spread: float | None,
) -> None:
    """The choices of `doublewin run` that are refused before anything is read: an unknown
    executor, search or --seeds, and an option that does nothing in the combination given."""
    if executor not in EXECUTORS:
        raise UserError(f"--executor {executor!r}: use local, ray or slurm")
    for option, value in given.items():
        if value is not None and EXECUTOR_OPTIONS[option] != executor:
            raise UserError(
                f"{option} is read by --executor {EXECUTOR_OPTIONS[option]} only; with "
                f"--executor {executor} it would do nothing: leave it out, or pass "
                f"--executor {EXECUTOR_OPTIONS[option]}"
            )
    if search is not None and search != "extreme":
        raise UserError(f"--search {search}: the one search is extreme (--search extreme)")
    if seeds is not None and seeds != "auto":
        raise UserError(
            f"--seeds {seeds}: only auto is accepted; list fixed seeds in the experiment's "
            "seeds: (or --set 'seeds=[0,1,2]')"
        )
    if seeds is not None and any(o.partition("=")[0].strip() == "seeds" for o in overrides):
        raise UserError("--seeds auto and --set seeds=… both set the seeds; pass one of them")
    if assume_spread is not None:
        read_number(assume_spread, name="--assume-spread", range=SPREAD)
    if assume_spread is not None and not dry_run:
        raise UserError(
            f"--assume-spread {assume_spread:g} only shapes the --dry-run estimate; a run would "
            "ignore it: add --dry-run, or leave it out"
        )


def check_spread(assume_spread: float | None, on_demand: bool) -> None:
    """--assume-spread shapes the estimated cost of seeds on demand: with listed seeds it
    would change nothing."""
    if assume_spread is not None and not on_demand:
        raise UserError(
            f"--assume-spread {assume_spread:g} is the spread seeds on demand assume; this "
            "plan lists its seeds, so it would change nothing: add --seeds auto, or leave it out"
        )
