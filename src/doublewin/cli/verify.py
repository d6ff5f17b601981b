"""`doublewin verify`: check an exported ticket against its certificate (docs/certificate.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from doublewin.cli import options as opt
from doublewin.cli.app import app, print_json, set_threads
from doublewin.cli.certificate import print_verification
from doublewin.cli.progress import RichProgress
from doublewin.core.errors import RunFailure, UserError
from doublewin.core.parsing import resolve_device


@app.command("verify")
def verify_command(
    export_dir: Annotated[Path, typer.Argument(help="A folder written by doublewin export --run.")],
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help="The dataset to measure on: the one the exported model measured itself on, "
            "or (with --transfer) the ticket's downstream dataset.",
        ),
    ],
    autoattack: opt.autoattack_option("Also run ") = 0,
    limit: opt.limit_option("(default: every certified image)") = None,
    transfer: Annotated[
        bool,
        typer.Option(
            "--transfer",
            help="A ticket export: rerun its ST and AT transfers and judge it again against "
            "the certificate's dense numbers.",
        ),
    ] = False,
    seeds: Annotated[
        str | None,
        typer.Option(
            "--seeds",
            help="With --transfer: comma-separated seeds to rerun (default: every certified seed).",
        ),
    ] = None,
    tolerance: Annotated[
        float | None,
        typer.Option(
            "--tolerance",
            min=0.0,
            help="Points a re-measured accuracy may differ by (default: the larger of 1 point "
            "and 2 test images).",
        ),
    ] = None,
    work: Annotated[
        Path | None,
        typer.Option(
            "--work",
            help="With --transfer: the folder its transfers run in, kept so an interrupted "
            "verification resumes (default: under $DOUBLEWIN_CACHE, per certificate).",
        ),
    ] = None,
    device: opt.Device = "auto",
    data_root: opt.DataRoot = None,
    threads: opt.Threads = None,
    as_json: opt.Json = False,
) -> None:
    """Check every hash of an export, rebuild its model from the folder alone, measure SA and
    RA again under the certificate's attack on its test data, and say per claim whether the
    measurement agrees. Exit 2 for a missing or changed file or another test split, 1 for a
    claim not reproduced."""
    set_threads(threads)
    chosen = None
    if seeds is not None:
        try:
            chosen = [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError:
            raise UserError(f"--seeds {seeds}: give whole numbers like 0,1,2") from None
    for option, value in (("--seeds", seeds), ("--work", work)):
        if value is not None and not transfer:
            raise UserError(f"{option}: for the transfers --transfer reruns; add --transfer")
    dev = resolve_device(device)
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.experiments.certify.verify import verify_export

    with RichProgress(enabled=not as_json) as progress:
        result = verify_export(
            export_dir,
            data,
            autoattack=autoattack,
            limit=limit,
            transfer=transfer,
            seeds=chosen,
            points_tolerance=tolerance,
            work=work,
            device=dev,
            data_root=data_root,
            progress=progress,
        )
    if as_json:
        print_json(result.as_dict())
    else:
        print_verification(result)
    if result.failed:
        first = result.failed[0]
        raise RunFailure(
            f"{export_dir}: {len(result.failed)} of {len(result.checks)} claims not reproduced, "
            f"first: {first.claim}: certified {first.certified}, measured {first.measured}; "
            "the export does not hold what its certificate says"
        )
