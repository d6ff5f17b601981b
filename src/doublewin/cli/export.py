"""`doublewin export`: a ticket applied to (transferred) weights, as a deployable model; with
``--run``, a run's ticket by name, certified (docs/certificate.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from doublewin.cli import options as opt
from doublewin.cli.app import app, console, print_json, set_threads
from doublewin.cli.certificate import print_certificate
from doublewin.cli.outputs import check_writable
from doublewin.cli.progress import RichProgress
from doublewin.cli.tables import Column, print_table
from doublewin.core.errors import UserError
from doublewin.core.foreign import TICKET_FILE, WEIGHTS_FILE, present
from doublewin.core.parsing import resolve_device


@app.command("export")
def export_command(
    ticket: Annotated[
        str,
        typer.Option(
            "--ticket",
            help="The ticket file to export (with --weights), or with --run a ticket of the "
            "run by name: <pre-training>/<method>/<sparsity>, e.g. AT/imp/0.4.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the exported model into.")],
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights",
            help="Weights the ticket file applies to (θp or transferred) (default: none; with "
            "--run the run names them).",
        ),
    ] = None,
    run: Annotated[
        Path | None,
        typer.Option(
            "--run",
            help="A finished run folder: export its ticket by name with certificate.json and a "
            "Hugging Face model card (default: none, a ticket file).",
        ),
    ] = None,
    downstream: Annotated[
        str | None,
        typer.Option(
            "--downstream",
            help="With --run: the claim's DATASET/FRACTION, e.g. digits/0.5 (default: the one "
            "setting the run transferred the ticket to).",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            help="With --run: export the fine-tuned model of this transfer seed (the run must "
            "keep it: transfer.save_models) (default: none, the ticket itself).",
        ),
    ] = None,
    regime: Annotated[
        str, typer.Option("--regime", help="With --seed: the transfer regime, st or at.")
    ] = "at",
    checkpoint: Annotated[
        str, typer.Option("--checkpoint", help="With --seed: best_ra or best_sa.")
    ] = "best_ra",
    autoattack: opt.autoattack_option(
        "With --run, in the model's own evaluation (fills autoattack_acc): "
    ) = 0,
    limit: opt.limit_option(
        "(with --run, in the model's own evaluation; default: the test split)"
    ) = None,
    uncertified: Annotated[
        bool,
        typer.Option(
            "--uncertified",
            help="With --run: export a ticket the run did not certify double-win (its "
            "certificate says what it is).",
        ),
    ] = False,
    license: Annotated[
        str | None,
        typer.Option(
            "--license", help="With --run: the model card's license, e.g. mit (default: none)."
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="A ticket file's export: dataset whose first test images check the export "
            "(default: random images).",
        ),
    ] = None,
    csr: Annotated[
        bool, typer.Option("--csr", help="Unstructured tickets: also write the CSR form.")
    ] = False,
    device: opt.Device = "auto",
    data_root: opt.DataRoot = None,
    threads: opt.Threads = None,
    as_json: opt.Json = False,
) -> None:
    """Export a ticket: pruned weights (unstructured), a physically smaller network (channel)
    or 2:4 weights (N:M), checked against the masked model and measured beside the dense one.
    With --run, a run's ticket by name with its certificate and model card."""
    set_threads(threads)
    if run is None:
        run_only = {
            "--downstream": downstream,
            "--seed": seed,
            "--limit": limit,
            "--license": license,
            "--autoattack": autoattack or None,
            "--uncertified": uncertified or None,
        }
        given = [option for option, value in run_only.items() if value is not None]
        if given:
            raise UserError(f"{given[0]}: only with --run (a run's ticket by name); add --run")
        _export_file(weights, Path(ticket), out, data, csr, data_root, as_json)
        return
    for option, value in (("--weights", weights), ("--data", data), ("--csr", csr or None)):
        if value is not None:
            raise UserError(f"{option}: not with --run, which names the weights; drop it")
    if regime not in ("st", "at") or checkpoint not in ("best_ra", "best_sa"):
        raise UserError(
            f"--regime {regime} --checkpoint {checkpoint}: use st or at, and best_ra or best_sa"
        )
    check_writable(out, folder=True)
    dev = resolve_device(device)
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.experiments.certify.export import FineTuned, export_certified

    tuned = None if seed is None else FineTuned(seed, regime, checkpoint)  # type: ignore[arg-type]
    with RichProgress(enabled=not as_json) as progress:
        done = export_certified(
            run,
            ticket,
            out,
            downstream=downstream,
            fine_tuned=tuned,
            autoattack=autoattack,
            limit=limit,
            uncertified=uncertified,
            license=license,
            device=dev,
            data_root=data_root,
            progress=progress,
        )
    if as_json:
        print_json(
            {
                "out": str(out),
                "certificate_sha256": done.sha256,
                "files": done.exported.files,
                "certificate": done.document,
            }
        )
        return
    console.print(f"{done.document['kind']} exported → {out} (certificate {done.sha256[:16]})")
    print_certificate(done.document)


def _export_file(
    weights: Path | None,
    ticket: Path,
    out: Path,
    data: str | None,
    csr: bool,
    data_root: str | None,
    as_json: bool,
) -> None:
    """A ticket file applied to a weights file (the export without a certificate)."""
    if weights is None:
        raise UserError("--weights: needed with a ticket file (or pass --run and a ticket name)")
    present(weights, *WEIGHTS_FILE)
    present(ticket, *TICKET_FILE)
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.tickets.export import export_ticket

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
            [
                name,
                f"{f.params:,}",
                f"{f.bytes / 1e6:.2f} MB",
                f"{f.flops / 1e6:.2f} M",
                f"{f.params / result.dense.params:.1%}",
            ]
        )
    print_table(
        "footprint (FLOPs of one image)",
        [
            Column("model"),
            Column("parameters", right=True),
            Column("bytes", right=True),
            Column("FLOPs", right=True),
            Column("of dense", right=True),
        ],
        rows,
    )
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
