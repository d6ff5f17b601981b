"""`doublewin evaluate`: SA and RA of a weights file, with gradient-masking checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from doublewin.cli import options as opt
from doublewin.cli.app import app, console, given, print_json, set_threads
from doublewin.cli.standalone import run_alone
from doublewin.core.build import load_spec
from doublewin.core.errors import UserError
from doublewin.core.foreign import TICKET_FILE, WEIGHTS_FILE, present


def _field(flag: str, kind: type, key: str, text: str, **extra: object) -> object:
    return opt.field_option(flag, kind, "evaluate", key, text, **extra)


@app.command("evaluate")
def evaluate_command(
    weights: Annotated[
        Path, typer.Option("--weights", help="A doublewin weights file (.safetensors).")
    ],
    data: Annotated[
        str, typer.Option("--data", help="Dataset to evaluate on (see `doublewin datasets`).")
    ],
    ticket: Annotated[
        Path | None,
        typer.Option(
            "--ticket", help="A ticket file: evaluate m ⊙ θ instead of θ [default: none, θ]."
        ),
    ] = None,
    recalibrate_bn: _field(
        "--recalibrate-bn",
        int,
        "recalibrate_bn",
        "Re-estimate BatchNorm statistics on N training batches first (for a ticket evaluated "
        "without retraining; 0 = off).",
        min=0,
    ) = None,
    eps: _field("--eps", str, "attack.eps", "Attack radius in [0,1] pixels, e.g. 8/255.") = None,
    step: opt.Step = None,
    steps: _field("--steps", int, "attack.steps", "PGD steps.") = None,
    norm: _field("--norm", str, "attack.norm", "linf or l2.") = None,
    restarts: _field("--restarts", int, "attack.restarts", "PGD random restarts.") = None,
    loss: _field(
        "--loss",
        str,
        "attack.loss",
        "ce (cross-entropy), margin (Carlini-Wagner's) or ce+margin (per example the worst of "
        "both) for PGD.",
    ) = None,
    early_stop: Annotated[
        bool,
        typer.Option(
            "--early-stop",
            help="Stop attacking an example once an iterate fools it (counted as fooled; "
            "AutoAttack's reading, faster).",
        ),
    ] = False,
    autoattack: _field(
        "--autoattack",
        int,
        "autoattack",
        "Run standard AutoAttack on the first N test points (0 = off); needs torchattacks.",
    ) = None,
    split: _field("--split", str, "split", "test or val.") = None,
    val_size: Annotated[
        int | None,
        typer.Option(
            "--val-size",
            min=1,
            help="Images held out of the training files for --split val (data.val_size) "
            "[default: the dataset's own split].",
        ),
    ] = None,
    resolution: Annotated[
        int | None,
        typer.Option(
            "--resolution", help="Image side in pixels (default: the weights' input size)."
        ),
    ] = None,
    batch_size: _field("--batch-size", int, "batch_size", "Images per batch.") = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            min=1,
            help="Evaluate on the first N points of the split (RobustBench's convention); "
            "default: all of them.",
        ),
    ] = None,
    check_points: _field(
        "--check-points", int, "check_points", "Test points the ε-ladder and large-ε checks run on."
    ) = None,
    seed: _field("--seed", int, "seed", "Seed of the attacks' random starts.") = None,
    device: opt.Device = "auto",
    data_root: opt.DataRoot = None,
    threads: opt.Threads = None,
    as_json: opt.Json = False,
) -> None:
    """Standard and robust accuracy on the test split (PGD-20, ε=8/255, step ε/4 by
    default), an ε ladder, a large-ε check and optionally AutoAttack; gradient-masking warning
    signs are flagged in words."""
    present(weights, *WEIGHTS_FILE)
    if val_size is not None and split != "val":
        raise UserError(
            f"--val-size {val_size} sizes the validation split; with --split {split or 'test'} it would "
            "do nothing: add --split val, or leave it out"
        )
    if ticket is not None:
        present(ticket, *TICKET_FILE)
    set_threads(threads)
    spec = load_spec(
        "evaluate",
        {
            "weights": str(weights),
            "data": {
                "name": data,
                "resolution": resolution,
                "val_size": val_size,
                "test_limit": limit,
            },
            # Only what is given: the spec decides the rest (the step from ε and steps).
            "attack": given(
                eps=eps,
                step=step,
                steps=steps,
                norm=norm,
                restarts=restarts,
                loss=loss,
                early_stop=early_stop,
            ),
            **given(
                autoattack=autoattack,
                split=split,
                batch_size=batch_size,
                check_points=check_points,
                seed=seed,
                recalibrate_bn=recalibrate_bn,
            ),
        },
    )
    from doublewin.stages import Inputs  # deferred: torch

    inputs = Inputs(weights=weights, ticket=ticket)
    report = run_alone(
        "evaluate", spec, inputs, None, device=device, data_root=data_root, as_json=as_json
    )
    if report is None:  # another rank of a torchrun
        return
    if as_json:
        print_json({"weights": str(weights), **report})
        return
    _print_report(report, weights, spec, ticket)


def _print_report(report: dict, weights: Path, spec: Any, ticket: Path | None) -> None:
    """The report in words: accuracies, the attack, AutoAttack and the checks."""
    a = report["attack"]
    eps_text = f"{a['eps'] * 255:g}/255" if a["norm"] == "linf" else f"{a['eps']:g}"
    console.print(
        f"{weights} ({report['arch']}) on {spec.data.name} {spec.split}, {report['n']} images"
    )
    if ticket is not None:
        console.print(f"  ticket {ticket}: sparsity {100 * report['sparsity']:.2f}%")
    if report.get("recalibrated_bn_batches"):
        console.print(
            f"  BatchNorm statistics re-estimated on {report['recalibrated_bn_batches']} "
            "training batches"
        )
    console.print(f"  SA {report['sa']:6.2f}%")
    console.print(
        f"  RA {report['ra']:6.2f}%   PGD-{a['steps']} {a['norm']} ε={eps_text} "
        f"step {a['step'] * (255 if a['norm'] == 'linf' else 1):g}"
        f"{'/255' if a['norm'] == 'linf' else ''}, restarts {a['restarts']}"
        + (f", {a['loss']} loss" if a.get("loss", "ce") != "ce" else "")
        + (", early stop" if a.get("early_stop") else "")
    )
    if report["autoattack_ra"] is not None:
        console.print(
            f"  first {report['autoattack_n']} points: SA {report['sa_autoattack_points']:.2f}"
            f"%, PGD RA {report['pgd_ra_autoattack_points']:.2f}%, AutoAttack RA "
            f"{report['autoattack_ra']:.2f}%"
        )
    console.print(f"  gradient-masking checks (first {report['check_points']} points):")
    for check in report["checks"]:
        mark = "[bold yellow]WARNING[/]" if check["flagged"] else "[green]ok[/]"
        console.print(f"    {mark} {check['name']}: {check['detail']}", highlight=False)
    if report["gradient_masking_suspected"]:
        console.print(
            "  Warning signs of gradient masking: the RA above likely overstates "
            "robustness; confirm with --autoattack."
        )
