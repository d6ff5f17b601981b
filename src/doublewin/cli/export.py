"""`doublewin export`: a ticket applied to (transferred) weights, as a deployable model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from doublewin.cli.app import (
    DataRoot,
    JsonFlag,
    ThreadsOption,
    app,
    console,
    print_json,
    set_threads,
)
from doublewin.cli.outputs import check_writable
from doublewin.cli.tables import Column, print_table
from doublewin.core.errors import UserError
from doublewin.core.foreign import TICKET_FILE, WEIGHTS_FILE, present


@app.command("export")
def export_command(
    weights: Annotated[
        Path, typer.Option("--weights", help="Weights the ticket applies to (θp or transferred).")
    ],
    ticket: Annotated[Path, typer.Option("--ticket", help="The ticket file to export.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the exported model into.")],
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="Dataset whose first test images check the export (default: random images).",
        ),
    ] = None,
    csr: Annotated[
        bool, typer.Option("--csr", help="Unstructured tickets: also write the CSR form.")
    ] = False,
    data_root: DataRoot = None,
    threads: ThreadsOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Export a ticket: pruned weights (unstructured), a physically smaller network (channel)
    or 2:4 weights (N:M), checked against the masked model and measured beside the dense one."""
    present(weights, *WEIGHTS_FILE)
    present(ticket, *TICKET_FILE)
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.tickets.export import export_ticket

    set_threads(threads)
    for option, path in (("--weights", weights), ("--ticket", ticket)):
        if not path.is_file():
            raise UserError(f"{option} {path}: file not found; pass an existing file")
    check_writable(out, folder=True)
    batch = _batch(data, weights, data_root) if data else None
    result = export_ticket(weights, ticket, out, batch=batch, csr=csr)
    if as_json:
        print_json(result.as_dict())
        return
    console.print(
        f"{result.pattern} ticket exported → {out} (largest logit difference from the masked "
        f"model {result.max_logit_difference:.1e})"
    )
    rows = []
    for name, f in (("dense", result.dense), ("export", result.exported)):
        rows.append(
            [name, f"{f.params:,}", f"{f.bytes / 1e6:.2f} MB", f"{f.flops / 1e6:.2f} M",
             f"{f.params / result.dense.params:.1%}"]
        )  # fmt: skip
    print_table(
        "footprint (FLOPs of one image)",
        [Column("model"), Column("parameters", right=True), Column("bytes", right=True),
         Column("FLOPs", right=True), Column("of dense", right=True)],
        rows,
    )  # fmt: skip
    for note in result.notes:
        console.print(note)


def _batch(data: str, weights: Path, data_root: str | None):
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.core.specs import DataSpec
    from doublewin.data import prepare_data
    from doublewin.models import read_weights_meta

    meta = read_weights_meta(weights)
    resolution = meta.input_size if meta is not None else 32
    _, _, test, _ = prepare_data(
        DataSpec(name=data, augment="none"),
        resolution_default=resolution,
        batch_size=32,
        root=data_root,
    )
    images, _ = next(iter(test))
    return images
