"""The typer application and the options shared by every command."""

from __future__ import annotations

import json
import sys
from importlib.metadata import version as package_version
from typing import Annotated, Any

import typer
from rich.console import Console

app = typer.Typer(
    name="doublewin",
    help="Find and certify double-win lottery tickets: sparse subnetworks of pre-trained "
    "models that keep standard and robust accuracy under standard and adversarial transfer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# soft_wrap: a line is never cut by the program (a path, a hash or a number stays whole for
# copy-paste and grep); the terminal wraps what is longer than it. Tables fit themselves
# (tables.py).
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DataRoot = Annotated[
    str | None,
    typer.Option(
        "--data-root",
        envvar="DOUBLEWIN_DATA",
        help="Folder holding real datasets (default: $DOUBLEWIN_DATA, else ./data).",
    ),
]
DeviceOption = Annotated[
    str, typer.Option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N.")
]


ThreadsOption = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        help="CPU threads per job (default: the cores divided among the workers).",
    ),
]


def set_threads(threads: int | None) -> None:
    """Apply ``--threads`` to this process (training commands that run in-process)."""
    if threads:
        # deferred: the CLI starts without torch; only commands that compute need it
        import torch

        torch.set_num_threads(threads)


def print_json(obj: Any) -> None:
    """Machine-readable output for --json."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def _print_version(value: bool) -> None:
    if value:
        console.print(f"doublewin {package_version('doublewin')}")
        raise typer.Exit()


@app.callback()
def _global_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Options every command shares."""
