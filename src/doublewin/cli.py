"""The command line: parses, calls library functions, prints. Nothing else lives here."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from doublewin.errors import DoublewinError

app = typer.Typer(
    name="doublewin",
    help="Find and certify double-win lottery tickets: sparse subnetworks of pre-trained "
    "models that keep standard and robust accuracy under standard and adversarial transfer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DataRoot = Annotated[
    str | None,
    typer.Option("--data-root", envvar="DOUBLEWIN_DATA",
                 help="Folder holding real datasets (default: $DOUBLEWIN_DATA, else ./data)."),
]


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


@app.command("datasets")
def datasets_command(data_root: DataRoot = None, as_json: JsonFlag = False) -> None:
    """List every dataset: classes, image size, split sizes, and where its files are."""
    from doublewin.data import describe_datasets

    rows = describe_datasets(data_root)
    if as_json:
        print_json(rows)
        return
    table = Table(title="datasets")
    for column in ("name", "kind", "classes", "image", "train/val/test", "files"):
        table.add_column(column)
    for row in rows:
        sizes = "/".join(f"{row['splits'][s]:,}" for s in ("train", "val", "test"))
        table.add_row(row["name"], row["kind"], str(row["num_classes"]),
                      f"{row['image_size']} px", sizes, f"{row['status']}: {row['location']}")
    console.print(table)


@app.command("models")
def models_command(as_json: JsonFlag = False) -> None:
    """List architectures with their input size and parameter count."""
    from doublewin.models import list_architectures

    rows = [info.as_dict() for info in list_architectures()]
    if as_json:
        print_json(rows)
        return
    table = Table(title="architectures")
    for column in ("name", "family", "input", "parameters (10 classes)", "description"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["family"], f"{row['input_size']} px",
                      f"{row['num_params']:,}", row["description"])
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    """Entry point: library errors become one line on stderr and their exit code."""
    try:
        app(args=argv, standalone_mode=False)
    except DoublewinError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("interrupted; finished work is kept, run the same command to resume")
        raise SystemExit(130) from None
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        if isinstance(exc, click.exceptions.Abort):
            raise SystemExit(1) from None
        raise
