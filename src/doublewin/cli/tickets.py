"""`doublewin tickets inspect` and `doublewin tickets convert`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from doublewin.cli import options as opt
from doublewin.cli.app import app, console, print_json
from doublewin.cli.certificate import print_certificate
from doublewin.cli.outputs import check_writable
from doublewin.core import paths
from doublewin.core.errors import UserError
from doublewin.core.foreign import TICKET_FILE, present

tickets_app = typer.Typer(
    help="Read and convert ticket files (doublewin and official Double-Win-LTH formats).",
    no_args_is_help=True,
)
app.add_typer(tickets_app, name="tickets")


@tickets_app.command("inspect")
def inspect_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="Ticket file (doublewin or official), or an export folder or its certificate.json."
        ),
    ],
    as_json: opt.Json = False,
) -> None:
    """Global and per-layer sparsity of a ticket, with where it came from; the certificate of
    an export folder (or of the ticket file in one)."""
    certificate = _certificate_of(file)
    if file.is_dir() or file.name == paths.CERTIFICATE:
        _show_certificate(certificate, as_json)
        return
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.tickets import load_ticket
    from doublewin.tickets.patterned import pattern_problem, verify_pattern

    ticket = load_ticket(file, verify=False)  # its problems are printed, then refused
    check = verify_pattern(ticket.mask, ticket.info.extra, ticket.info.arch)
    report = {
        "file": str(file),
        **ticket.info.as_dict(),
        "pattern": check.pattern,
        "pattern_summary": check.summary,
        "pattern_problems": list(check.problems),
        **ticket.mask.report(),
    }
    if certificate is not None:
        report["certificate"] = certificate[0]
        report["certificate_sha256"] = certificate[1]
    if as_json:
        print_json(report)
    else:
        _print_inspection(file, ticket, check)
        if certificate is not None:
            print_certificate(certificate[0])
    if check.problems:
        raise UserError(pattern_problem(file, check))


def _certificate_of(file: Path) -> tuple[dict, str] | None:
    """The certificate of an export folder, a certificate file, or the ticket file of an
    export folder (None for a ticket file outside one)."""
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.tickets.certificate import read_certificate

    if file.is_dir() or file.name == paths.CERTIFICATE:
        return read_certificate(file)
    beside = file.with_name(paths.CERTIFICATE)
    return read_certificate(beside) if beside.is_file() else None


def _show_certificate(certificate: tuple[dict, str] | None, as_json: bool) -> None:
    assert certificate is not None  # a folder or a certificate file always has one
    document, sha256 = certificate
    if as_json:
        print_json({"certificate_sha256": sha256, "certificate": document})
        return
    console.print(f"certificate {sha256}", highlight=False)
    print_certificate(document)


def _print_inspection(file: Path, ticket, check) -> None:
    info = ticket.info
    console.print(
        f"{file}: {info.format} ticket, arch {info.arch or '?'}, method "
        f"{info.method or '?'}, weights {info.weights_hash or '?'}"
    )
    console.print(f"pattern {check.pattern}: {check.summary}" + ("" if check.problems else " ✓"))
    left_out = tuple(info.scope.exclude)
    console.print(
        f"global sparsity {ticket.mask.sparsity:.4%} ({ticket.mask.num_pruned:,} of "
        f"{ticket.mask.num_total:,} weights pruned"
        + (f"; left out of its scope, dense: {', '.join(left_out)})" if left_out else ")")
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
    as_json: opt.Json = False,
) -> None:
    """Convert a ticket between doublewin's file and the official Double-Win-LTH format."""
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.tickets import load_ticket, save_ticket
    from doublewin.tickets.files import looks_like_safetensors
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
    if arch and looks_like_safetensors(present(source, *TICKET_FILE)):
        raise UserError(
            f"--arch names the architecture of an official file; {source} is a doublewin "
            "ticket, which records its own: leave --arch out"
        )
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
