"""`doublewin store gc RUN_DIR`: free the disk a run's store holds beyond its finished results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from doublewin.cli import options as opt
from doublewin.cli.app import app, console, print_json
from doublewin.core import paths
from doublewin.core.errors import UserError

store_app = typer.Typer(help="The run store: clean-up.", no_args_is_help=True)
app.add_typer(store_app, name="store")


@store_app.command("gc")
def gc_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be removed; remove nothing.")
    ] = False,
    as_json: opt.Json = False,
) -> None:
    """Remove resume files of finished entries and unfinished entries no process works on;
    every finished result stays."""
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.experiments.run.folder import make_plan
    from doublewin.experiments.store.gc import collect

    resolved = run_dir / paths.EXPERIMENT
    if not resolved.is_file():
        raise UserError(f"{resolved} not found; pass a run directory made by doublewin run")
    store = make_plan(resolved, run_dir=run_dir).store_root
    if not store.is_dir():
        raise UserError(f"{store}: the run's store is not there (store: in {resolved})")
    garbage = collect(store, dry_run=dry_run)
    freed = sum(g.bytes for g in garbage)
    if as_json:
        print_json(
            {
                "store": str(store),
                "removed": [] if dry_run else [str(g.path) for g in garbage],
                "would_remove": [str(g.path) for g in garbage] if dry_run else [],
                "bytes": freed,
            }
        )
        return
    for item in garbage:
        console.print(f"{'would remove' if dry_run else 'removed'} {item.path} ({item.why})")
    verb = "would free" if dry_run else "freed"
    console.print(f"{len(garbage)} item(s); {verb} {freed / 1e6:.1f} MB in {store}")
