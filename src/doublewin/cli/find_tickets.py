"""`doublewin find-tickets`: the tickets of one pre-trained model at a ladder of sparsities."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Annotated

import typer

from doublewin.cli import options as opt
from doublewin.cli.app import app, console, print_json
from doublewin.cli.standalone import StageEnv, check_weights, stage_env
from doublewin.core import paths
from doublewin.core.errors import UserError
from doublewin.core.ticket_parts import METHOD_READS, TicketMethod

METHODS = typing.get_args(TicketMethod)


@app.command("find-tickets")
@stage_env().add("env")
def find_tickets_command(
    *,
    weights: opt.Weights,
    method: Annotated[str, typer.Option("--method", help=" | ".join(METHODS))],
    out: Annotated[Path, typer.Option("--out", help="Folder for the ticket files.")],
    data: opt.field_option(
        "--data",
        str,
        "tickets",
        "data.name",
        "Source dataset (data.name) for imp, snip, grasp, gem-miner, supertickets, hydra, harp.",
    ) = None,
    regime: opt.field_option(
        "--regime",
        str,
        "tickets",
        "train.regime",
        "Training inside IMP and SuperTickets / attack for scores: std or at.",
    ) = None,
    rate: opt.field_option(
        "--rate",
        float,
        "tickets",
        "prune_rate",
        "prune_rate per IMP round (0.2: ladder 1 − 0.8^k).",
    ) = None,
    rounds: opt.field_option(
        "--rounds", int, "tickets", "rounds", "IMP rounds / ladder length."
    ) = None,
    sparsities: Annotated[
        str | None,
        typer.Option(
            "--sparsities",
            help="Comma-separated fractions, e.g. 0.5,0.8,0.9 [default: the IMP ladder of --rate and --rounds].",
        ),
    ] = None,
    epochs: opt.field_option(
        "--epochs", int, "tickets", "train.epochs", "train.epochs per IMP round"
    ) = None,
    env: StageEnv,
) -> None:
    """Find tickets on θp: one ticket file per sparsity (IMP: one per round, resumable)."""
    if method not in METHODS:
        raise UserError(f"--method {method}: use one of {', '.join(METHODS)}")
    check_weights(weights)
    set_keys = [o.partition("=")[0].strip() for o in env.overrides or ()]
    _check_reads(method, {"--data": data, "--regime": regime, "--epochs": epochs}, set_keys)
    _check_ladder(method, sparsities, rate, rounds)
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
    spec = env.spec("tickets", pairs)
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.stages import Inputs
    from doublewin.tickets import load_ticket

    _check_same_run(out, spec)
    found = env.run("tickets", spec, Inputs(weights=weights), out)
    if found is None:  # another rank of a torchrun
        return
    rows = []
    for relative in found["tickets"].values():
        path = out / relative
        info = load_ticket(path).info
        row = {
            "file": str(path),
            "target_sparsity": info.target_sparsity,
            "sparsity": info.sparsity,
            "kept": info.kept,
            "total": info.total,
        }
        if info.extra.get("network"):
            # A SuperTicket: its network (the weights to transfer) and MACs per image.
            row["network"] = str(path.with_name(str(info.extra["network"])))
            row["macs"] = info.extra.get("macs")
            row["supernet_macs"] = info.extra.get("supernet_macs")
        rows.append(row)
    if env.as_json:
        print_json(rows)
        return
    for row in rows:
        network = (
            f", network {row['network']} ({row['macs']:,} of {row['supernet_macs']:,} MACs)"
            if "network" in row
            else ""
        )
        console.print(
            f"{row['sparsity']:.2%} sparse ({row['kept']:,} of {row['total']:,} "
            f"kept) → {row['file']}{network}"
        )


# The find-tickets options and the spec field each sets.
READ_BY_OPTION = {"--data": "data", "--regime": "train.regime", "--epochs": "train.epochs"}


def _check_reads(method: str, given: dict[str, object], set_keys: list[str]) -> None:
    """An option or a --set key that ``method`` does not read is refused: it would change
    nothing but the spec's hash (METHOD_READS)."""
    reads = METHOD_READS[method]
    unread = [o for o, v in given.items() if v is not None and READ_BY_OPTION[o] not in reads]
    sections = {key: key.split(".", 1)[0] for key in set_keys}
    unread += [
        f"--set {key}"
        for key, section in sections.items()
        if section in ("data", "train") and section not in reads
    ]
    if unread:
        uses = sorted(
            m for m, r in METHOD_READS.items() if READ_BY_OPTION.get(unread[0], "data") in r
        )
        raise UserError(
            f"{unread[0]} does nothing with --method {method}, which "
            f"{'reads only the weights' if not reads else 'does not read it'}; leave it out "
            f"(it is read by {', '.join(uses)})"
        )


def _check_ladder(
    method: str, sparsities: str | None, rate: float | None, rounds: int | None
) -> None:
    """--sparsities is the ladder: --rate and --rounds beside it would do nothing (IMP reads
    --rate, whose ladder the sparsities must be rungs of)."""
    if sparsities and (rate is not None or rounds is not None) and method != "imp":
        raise UserError(
            f"--rate and --rounds make the ladder when --sparsities is not given; with "
            f"--sparsities {sparsities} they would do nothing: pass one or the other"
        )
    if sparsities and rounds is not None:
        raise UserError(
            "--rounds: IMP runs the rounds its --sparsities need (each a rung of the --rate "
            "ladder), so --rounds would do nothing: pass one or the other"
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
