"""`doublewin find-tickets`, `doublewin tickets inspect` and `doublewin tickets convert`."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from doublewin.cli.app import (
    DataRoot,
    DeviceOption,
    JsonFlag,
    ThreadsOption,
    app,
    console,
    field_help,
    print_json,
    set_threads,
)
from doublewin.cli.outputs import check_writable, output_folder
from doublewin.cli.progress import RichProgress
from doublewin.core import paths
from doublewin.core.errors import UserError
from doublewin.core.parsing import resolve_device
from doublewin.core.specs import TicketMethod, load_spec

tickets_app = typer.Typer(
    help="Read and convert ticket files (doublewin and official Double-Win-LTH formats).",
    no_args_is_help=True,
)
app.add_typer(tickets_app, name="tickets")

METHODS = typing.get_args(TicketMethod)


@app.command("find-tickets")
def find_tickets_command(
    weights: Annotated[Path, typer.Option("--weights", help="Pre-trained weights θp.")],
    method: Annotated[str, typer.Option("--method", help=" | ".join(METHODS))],
    out: Annotated[Path, typer.Option("--out", help="Folder for the ticket files.")],
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help=field_help(
                "tickets",
                "data.name",
                "Source dataset (data.name) for imp, snip, grasp, gem-miner, hydra, harp.",
            ),
        ),
    ] = None,
    regime: Annotated[
        str | None,
        typer.Option(
            "--regime",
            help=field_help(
                "tickets", "train.regime", "Training inside IMP / attack for scores: std or at."
            ),
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            help=field_help(
                "tickets", "prune_rate", "prune_rate per IMP round (0.2: ladder 1 − 0.8^k)."
            ),
        ),
    ] = None,
    rounds: Annotated[
        int | None,
        typer.Option(
            "--rounds", help=field_help("tickets", "rounds", "IMP rounds / ladder length.")
        ),
    ] = None,
    sparsities: Annotated[
        str | None,
        typer.Option(
            "--sparsities",
            help="Comma-separated fractions, e.g. 0.5,0.8,0.9 [default: the IMP ladder of --rate and --rounds].",
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs", help=field_help("tickets", "train.epochs", "train.epochs per IMP round")
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML of TicketSpec fields.")
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override any spec field (repeatable).")
    ] = None,
    device: DeviceOption = "auto",
    data_root: DataRoot = None,
    threads: ThreadsOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Find tickets on θp: one ticket file per sparsity (IMP: one per round, resumable)."""
    set_threads(threads)
    if method not in METHODS:
        raise UserError(f"--method {method}: use one of {', '.join(METHODS)}")
    if not weights.is_file():
        raise UserError(
            f"--weights {weights}: file not found; pass a weights file from "
            "doublewin pretrain or doublewin import-weights"
        )
    pairs: dict[str, object] = {
        "weights": str(weights),
        "method": method,
        "data.name": data,
        "train.regime": regime,
        "prune_rate": rate,
        "rounds": rounds,
        "train.epochs": epochs,
    }
    if sparsities:
        try:
            values = [float(s) for s in sparsities.split(",") if s.strip()]
        except ValueError:
            raise UserError(f"--sparsities {sparsities}: give fractions like 0.5,0.8") from None
        pairs["sparsities"] = "[" + ",".join(str(v) for v in values) + "]"
    items = [f"{k}={v}" for k, v in pairs.items() if v is not None] + list(overrides or [])
    spec = load_spec("tickets", config, items)
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.stages import Inputs, run_stage
    from doublewin.tickets import load_ticket

    _check_same_run(out, spec)

    dev = resolve_device(device)  # before anything is made
    with output_folder(out), RichProgress(enabled=not as_json) as progress:
        found = run_stage(
            "tickets",
            spec,
            Inputs(weights=weights),
            out,
            device=dev,
            data_root=data_root,
            progress=progress,
        )
    rows = []
    for relative in found["tickets"].values():
        path = out / relative
        info = load_ticket(path).info
        rows.append(
            {
                "file": str(path),
                "target_sparsity": info.target_sparsity,
                "sparsity": info.sparsity,
                "kept": info.kept,
                "total": info.total,
            }
        )
    if as_json:
        print_json(rows)
        return
    for row in rows:
        console.print(
            f"{row['sparsity']:.2%} sparse ({row['kept']:,} of {row['total']:,} "
            f"kept) → {row['file']}"
        )


def _check_same_run(out: Path, spec: object) -> None:
    """Refuse an --out folder holding the tickets of another run: their files are named by
    sparsity only, so another method's tickets would be overwritten. The same spec resumes."""
    if not out.is_dir():
        return
    from doublewin.tickets import load_ticket  # deferred: torch
    from doublewin.tickets.find import recorded_spec

    def comparable(fields: object) -> str:
        fields = dict(fields) if isinstance(fields, dict) else {}
        # N:M adds the layers it leaves dense to the scope; a longer IMP ladder or other
        # sparsities of the same run add files next to these (IMP continues its trunk).
        for key in ("scope", "rounds", "sparsities"):
            fields.pop(key, None)
        return json.dumps(fields, sort_keys=True, default=str)

    wanted = comparable(recorded_spec(spec))
    for path in sorted(out.glob(paths.TICKET_GLOB)):
        info = load_ticket(path).info
        if comparable(info.spec) != wanted:
            raise UserError(
                f"--out {out}: holds tickets of another run ({info.method or 'unknown method'}, "
                f"{path.name}), which this one would overwrite; pass another --out folder"
            )


@tickets_app.command("inspect")
def inspect_command(
    file: Annotated[Path, typer.Argument(help="Ticket file (doublewin or official).")],
    as_json: JsonFlag = False,
) -> None:
    """Global and per-layer sparsity of a ticket, with where it came from."""
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.tickets import load_ticket
    from doublewin.tickets.patterned import verify_pattern

    ticket = load_ticket(file)
    check = verify_pattern(ticket.mask, ticket.info.extra, ticket.info.arch)
    report = {
        "file": str(file),
        **ticket.info.as_dict(),
        "pattern": check.pattern,
        "pattern_summary": check.summary,
        "pattern_problems": list(check.problems),
        **ticket.mask.report(),
    }
    if as_json:
        print_json(report)
    else:
        _print_inspection(file, ticket, check)
    if check.problems:
        raise UserError(
            f"{file}: records a {check.pattern} pattern its mask does not hold "
            f"({len(check.problems)} problem(s), first: {check.problems[0]}); draw it again"
        )


def _print_inspection(file: Path, ticket, check) -> None:
    info = ticket.info
    console.print(
        f"{file}: {info.format} ticket, arch {info.arch or '?'}, method "
        f"{info.method or '?'}, weights {info.weights_hash or '?'}"
    )
    console.print(f"pattern {check.pattern}: {check.summary}" + ("" if check.problems else " ✓"))
    console.print(
        f"global sparsity {ticket.mask.sparsity:.4%} ({ticket.mask.num_pruned:,} of "
        f"{ticket.mask.num_total:,} weights pruned)"
    )
    table = Table()
    for column in ("layer", "shape", "weights", "kept", "sparsity"):
        table.add_column(column, justify="right" if column != "layer" else "left")
    for row in ticket.mask.per_layer():
        table.add_row(
            row.name,
            "×".join(map(str, row.shape)),
            f"{row.total:,}",
            f"{row.kept:,}",
            f"{row.sparsity:.2%}",
        )
    console.print(table)


@tickets_app.command("convert")
def convert_command(
    source: Annotated[Path, typer.Argument(help="Ticket file to read.")],
    target: Annotated[Path, typer.Argument(help="File to write.")],
    to: Annotated[str, typer.Option("--to", help="doublewin or official")],
    arch: Annotated[
        str | None,
        typer.Option(
            "--arch",
            help="Architecture of an official file when it cannot be inferred [default: inferred from its tensors].",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Convert a ticket between doublewin's file and the official Double-Win-LTH format."""
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.tickets import load_ticket, save_ticket
    from doublewin.tickets.official import load_official, save_official
    from doublewin.tickets.ticket import FORMAT

    if to not in ("doublewin", "official"):
        raise UserError(f"--to {to}: use doublewin or official")
    if to == "official" and target.suffix not in paths.OFFICIAL_TICKET_SUFFIXES:
        raise UserError(
            f"TARGET {target}: an official ticket is a torch state dict; name it *.pt or *.pth"
        )
    if to == "doublewin" and target.suffix != paths.SAFETENSORS:
        raise UserError(
            f"TARGET {target}: a doublewin ticket is a safetensors file; name it *.safetensors"
        )
    check_writable(target, folder=False, option="TARGET")
    ticket = load_official(source, arch=arch) if arch else load_ticket(source)
    if to == "doublewin" and not ticket.info.arch:
        raise UserError(
            f"{source}: its architecture cannot be inferred from its tensor names and shapes; "
            "pass --arch (doublewin models lists them)"
        )
    if to == "doublewin":
        ticket = dataclasses.replace(ticket, info=dataclasses.replace(ticket.info, format=FORMAT))
        save_ticket(target, ticket)
    else:
        save_official(target, ticket)
    summary = {
        "source": str(source),
        "target": str(target),
        "format": to,
        "sparsity": ticket.mask.sparsity,
        "mask_hash": ticket.mask.content_hash(),
    }
    if as_json:
        print_json(summary)
        return
    console.print(
        f"{source} → {target} ({to}), {ticket.mask.sparsity:.4%} sparse, mask "
        f"{summary['mask_hash']}"
    )
