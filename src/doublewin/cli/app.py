"""The typer application and the options shared by every command."""

from __future__ import annotations

import json
import sys
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
from rich.console import Console
from rich.markup import escape

from doublewin.core.resources import check_threads

if TYPE_CHECKING:  # typer vendors click in its newer releases: no runtime import of click
    import click

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


def given(**options: Any) -> dict[str, Any]:
    """The options that were given (None: left out), for the spec to decide the rest."""
    return {key: value for key, value in options.items() if value is not None}


def set_threads(threads: int | None) -> None:
    """Check ``--threads`` against this machine's cores and apply it to this process
    (training commands that run in-process)."""
    check_threads(threads)
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


def command() -> click.Command:
    """The click command of the ``app`` (every command registered), built once, with every
    help text plain text: typer reads help as rich markup, which swallows ``[ray]`` in
    ``doublewin[ray]`` and ``[default: 1]`` (leaving a stray " .")."""
    if not _COMMAND:
        built = typer.main.get_command(app)
        _literal_help(built)
        _COMMAND.append(built)
    return _COMMAND[0]


def _literal_help(cmd: click.Command) -> None:
    if cmd.help:
        cmd.help = escape(cmd.help)
    for param in cmd.params:
        if isinstance(getattr(param, "help", None), str):
            param.help = escape(param.help)  # type: ignore[attr-defined]
    for sub in getattr(cmd, "commands", {}).values():
        _literal_help(sub)


_COMMAND: list[click.Command] = []
