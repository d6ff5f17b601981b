"""The typer application and the options shared by every command."""

from __future__ import annotations

import json
import sys
from importlib.metadata import version as package_version
from typing import Annotated, Any

import click
import typer
import typer.main
from rich.console import Console
from rich.markup import escape

from doublewin.core.build import load_spec
from doublewin.core.resources import check_threads

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


def set_option(what: str, example: str) -> Any:
    """The repeatable ``--set key=value`` option; ``what`` it overrides, with an example."""
    return Annotated[
        list[str] | None,
        typer.Option("--set", help=f"Override {what}: --set {example} (repeatable)."),
    ]


CompileOption = Annotated[
    bool,
    typer.Option(
        "--compile", help="torch.compile the training forward (pays off on GPUs for long runs)."
    ),
]
# The step's default is a rule of ε and steps (core/eps.py), not one value.
STEP_HELP = (
    "PGD step in [0,1] pixels, e.g. 2/255 [default: ε/4, or 2.5·ε/steps with fewer than 10 "
    "steps (docs/evaluation.md)]."
)


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


def field_help(stage: str, key: str, text: str = "") -> str:
    """Help for an option that sets the spec field ``key`` of ``stage``: the text (else the
    field's name) and the default the spec gives it when the option is left out."""
    # deferred: the specs module is light (no torch), loaded once for the help texts

    value: Any = _default_spec(stage)
    for part in key.split("."):
        value = getattr(value, part)
    return f"{text or key} [default: {_shown(value)}]"


def _default_spec(stage: str) -> Any:

    if stage not in _DEFAULT_SPECS:
        _DEFAULT_SPECS[stage] = load_spec(stage)
    return _DEFAULT_SPECS[stage]


_DEFAULT_SPECS: dict[str, Any] = {}


def _shown(value: Any) -> str:
    """A default as a user writes it: ε-like values as k/255, None as none."""
    if value is None:
        return "none (the dataset's or the architecture's own)"
    if isinstance(value, float) and 0 < value < 1 and abs(value * 255 - round(value * 255)) < 1e-6:
        return f"{round(value * 255)}/255"
    return str(value)


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
