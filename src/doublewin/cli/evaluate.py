"""`doublewin evaluate`: SA and RA of a weights file, with gradient-masking checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from doublewin.cli.app import (
    DataRoot,
    DeviceOption,
    JsonFlag,
    ThreadsOption,
    app,
    console,
    print_json,
    set_threads,
)
from doublewin.cli.progress import RichProgress
from doublewin.core.errors import UserError
from doublewin.core.foreign import TICKET_FILE, WEIGHTS_FILE, present
from doublewin.core.parsing import resolve_device
from doublewin.core.specs import load_spec


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
    recalibrate_bn: Annotated[
        int,
        typer.Option(
            "--recalibrate-bn",
            min=0,
            help="Re-estimate BatchNorm statistics on N training batches first (for a ticket "
            "evaluated without retraining; 0 = off).",
        ),
    ] = 0,
    eps: Annotated[
        str, typer.Option("--eps", help="Attack radius in [0,1] pixels, e.g. 8/255.")
    ] = "8/255",
    step: Annotated[str, typer.Option("--step", help="PGD step size, e.g. 2/255.")] = "2/255",
    steps: Annotated[int, typer.Option("--steps", help="PGD steps.")] = 20,
    norm: Annotated[str, typer.Option("--norm", help="linf or l2.")] = "linf",
    restarts: Annotated[int, typer.Option("--restarts", help="PGD random restarts.")] = 1,
    loss: Annotated[
        str,
        typer.Option(
            "--loss",
            help="ce (cross-entropy), margin (Carlini-Wagner's) or ce+margin (per example the "
            "worst of both) for PGD.",
        ),
    ] = "ce",
    early_stop: Annotated[
        bool,
        typer.Option(
            "--early-stop",
            help="Stop attacking an example once an iterate fools it (counted as fooled; "
            "AutoAttack's reading, faster).",
        ),
    ] = False,
    autoattack: Annotated[
        int,
        typer.Option(
            "--autoattack",
            help="Run standard AutoAttack on the first N test points (0 = off); "
            "needs torchattacks.",
        ),
    ] = 0,
    split: Annotated[str, typer.Option("--split", help="test or val.")] = "test",
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
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per batch.")] = 256,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            min=1,
            help="Evaluate on the first N points of the split (RobustBench's convention); "
            "default: all of them.",
        ),
    ] = None,
    check_points: Annotated[
        int,
        typer.Option("--check-points", help="Test points the ε-ladder and large-ε checks run on."),
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the attacks' random starts.")] = 0,
    device: DeviceOption = "auto",
    data_root: DataRoot = None,
    threads: ThreadsOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Standard and robust accuracy on the test split (PGD-20, ε=8/255, step 2/255 by
    default), an ε ladder, a large-ε check and optionally AutoAttack; gradient-masking warning
    signs are flagged in words."""
    present(weights, *WEIGHTS_FILE)
    if val_size is not None and split != "val":
        raise UserError(
            f"--val-size {val_size} sizes the validation split; with --split {split} it would "
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
            "attack": {
                "eps": eps,
                "step": step,
                "steps": steps,
                "norm": norm,
                "restarts": restarts,
                "loss": loss,
                "early_stop": early_stop,
                "bn_mode": "eval",
            },
            "autoattack": autoattack,
            "split": split,
            "batch_size": batch_size,
            "check_points": check_points,
            "seed": seed,
            "recalibrate_bn": recalibrate_bn,
        },
    )
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.stages import Inputs, run_stage

    with RichProgress(enabled=not as_json) as progress:
        report = run_stage(
            "evaluate",
            spec,
            Inputs(weights=weights, ticket=ticket),
            None,
            device=resolve_device(device),
            data_root=data_root,
            progress=progress,
        )
    if as_json:
        print_json({"weights": str(weights), **report})
        return
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
