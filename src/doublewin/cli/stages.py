"""`doublewin pretrain` and `doublewin transfer`: one stage run alone, outside an experiment.

Options map to spec fields (shown in each option's help); ``--config FILE`` and ``--set k=v``
reach every other field. The work folder next to the output keeps the per-epoch checkpoint,
so the same command resumes after an interruption.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Annotated

import typer

from doublewin import distributed
from doublewin.cli.app import (
    DataRoot,
    DeviceOption,
    JsonFlag,
    app,
    console,
    err_console,
    print_json,
)
from doublewin.errors import UserError

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="YAML with the stage's spec fields (docs/specs.md).")
]
CompileOption = Annotated[
    bool,
    typer.Option(
        "--compile", help="torch.compile the training forward (pays off on GPUs for long runs)."
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override any spec field: --set train.milestones=[50,75] (repeatable)."
    ),
]


def _overrides(pairs: dict[str, object], extra: list[str] | None) -> list[str]:
    out = [f"{key}={value}" for key, value in pairs.items() if value is not None]
    return out + list(extra or [])


@app.command("pretrain")
def pretrain_command(
    out: Annotated[Path, typer.Option("--out", help="Weights file to write (.safetensors).")],
    arch: Annotated[str | None, typer.Option("--arch", help="Architecture (arch).")] = None,
    data: Annotated[str | None, typer.Option("--data", help="Source dataset (data.name).")] = None,
    regime: Annotated[
        str | None, typer.Option("--regime", help="std, fat (FGSM-RS) or at (PGD) (train.regime).")
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="train.epochs")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="train.lr")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="train.batch_size")] = None,
    eps: Annotated[str | None, typer.Option("--eps", help="train.attack.eps, e.g. 8/255")] = None,
    step: Annotated[
        str | None, typer.Option("--step", help="train.attack.step, e.g. 2/255")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="train.attack.steps")] = None,
    resolution: Annotated[int | None, typer.Option("--resolution", help="data.resolution")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="seed")] = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
    device: DeviceOption = "auto",
    data_root: DataRoot = None,
    compile: CompileOption = False,
    as_json: JsonFlag = False,
) -> None:
    """Pre-train θp on a source dataset (resumable); the weights carry source SA/RA."""
    from doublewin.cli.progress import RichProgress
    from doublewin.experiments.pretraining import pretrain
    from doublewin.experiments.specs import load_spec
    from doublewin.logs import JsonlLog
    from doublewin.parsing import resolve_device

    spec = load_spec(
        "pretrain",
        config,
        _overrides(
            {
                "arch": arch,
                "data.name": data,
                "train.regime": regime,
                "train.epochs": epochs,
                "train.lr": lr,
                "train.batch_size": batch_size,
                "train.attack.eps": eps,
                "train.attack.step": step,
                "train.attack.steps": steps,
                "data.resolution": resolution,
                "seed": seed,
            },
            overrides,
        ),
    )
    out = _weights_path(out)
    workdir = out.with_name(out.name + ".work")
    log = JsonlLog(workdir / "log.jsonl") if distributed.is_main() else None
    try:
        with RichProgress(enabled=not as_json) as progress:
            result = pretrain(
                spec,
                out,
                workdir=workdir / "train",
                device=resolve_device(device),
                data_root=data_root,
                progress=progress,
                log=log,
                compile=compile,
            )
    finally:
        if log is not None:
            log.close()
    if not distributed.is_main():
        return
    shutil.copyfile(workdir / "log.jsonl", out.with_name(out.name + ".log.jsonl"))
    shutil.rmtree(workdir, ignore_errors=True)
    summary = {
        "weights": str(out),
        "content_hash": result.content_hash,
        "regime": spec.train.regime,
        "source_sa": result.source_sa,
        "source_ra": result.source_ra,
        "collapsed": result.collapsed,
    }
    if as_json:
        print_json(summary)
        return
    console.print(
        f"{out}: {spec.arch} {spec.train.regime} on {spec.data.name}; source SA "
        f"{result.source_sa:.2f}%, RA {result.source_ra:.2f}%; hash "
        f"{result.content_hash}"
    )
    if result.collapsed:
        console.print(
            "FAT catastrophic overfitting: training stopped and kept the last good "
            "weights (see the log)"
        )


@app.command("transfer")
def transfer_command(
    weights: Annotated[Path, typer.Option("--weights", help="Pre-trained weights file θp.")],
    data: Annotated[str, typer.Option("--data", help="Downstream dataset (data.name).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for metrics and fine-tuned weights.")],
    ticket: Annotated[
        Path | None,
        typer.Option("--ticket", help="Ticket file (doublewin or official format); none = dense."),
    ] = None,
    fraction: Annotated[
        float | None, typer.Option("--fraction", help="data.fraction in (0, 1]")
    ] = None,
    regime: Annotated[str, typer.Option("--regime", help="st or at (train.regime)")] = "st",
    seed: Annotated[int | None, typer.Option("--seed", help="seed")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="train.epochs")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="train.lr")] = None,
    resolution: Annotated[int | None, typer.Option("--resolution", help="data.resolution")] = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
    device: DeviceOption = "auto",
    data_root: DataRoot = None,
    compile: CompileOption = False,
    as_json: JsonFlag = False,
) -> None:
    """Fine-tune a ticket m ⊙ θp (or dense θp) downstream with ST or AT; test SA and RA."""
    from doublewin.cli.progress import RichProgress
    from doublewin.experiments.specs import load_spec
    from doublewin.experiments.store import atomic_write_json
    from doublewin.experiments.transfer import transfer
    from doublewin.experiments.typed import to_dict
    from doublewin.logs import JsonlLog
    from doublewin.parsing import resolve_device

    regimes = {"st": "std", "at": "at"}
    if regime not in regimes:
        raise UserError(f"--regime {regime}: use st (standard) or at (adversarial)")
    if not weights.is_file():
        raise UserError(
            f"--weights {weights}: file not found; pass a weights file from "
            "doublewin pretrain or doublewin import-weights"
        )
    if ticket is not None and not ticket.is_file():
        raise UserError(
            f"--ticket {ticket}: file not found; pass a ticket from doublewin find-tickets"
        )
    spec = load_spec(
        "transfer",
        config,
        _overrides(
            {
                "weights": str(weights),
                "ticket": str(ticket) if ticket else None,
                "data.name": data,
                "data.fraction": fraction,
                "train.regime": regimes[regime],
                "seed": seed,
                "train.epochs": epochs,
                "train.lr": lr,
                "data.resolution": resolution,
            },
            overrides,
        ),
    )
    out.mkdir(parents=True, exist_ok=True)
    log = JsonlLog(out / "log.jsonl") if distributed.is_main() else None
    try:
        with RichProgress(enabled=not as_json) as progress, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ticket warnings come back in the result
            result = transfer(
                spec,
                weights,
                ticket,
                workdir=out,
                device=resolve_device(device),
                data_root=data_root,
                progress=progress,
                log=log,
                compile=compile,
            )
    finally:
        if log is not None:
            log.close()
    if not distributed.is_main():
        return
    atomic_write_json(out / "metrics.json", {"spec": to_dict(spec), **result.metrics})
    for message in result.warnings:
        err_console.print(f"warning: {message}", highlight=False)
    m = result.metrics
    if as_json:
        print_json(m)
        return
    console.print(
        f"{data} ({regime.upper()}, sparsity {m['sparsity']:.2%}): "
        f"best-val-SA checkpoint SA {m['sa_best_sa']:.2f}% RA {m['ra_best_sa']:.2f}%;"
        f" best-val-RA checkpoint SA {m['sa_best_ra']:.2f}% RA {m['ra_best_ra']:.2f}%"
    )
    console.print(f"metrics: {out / 'metrics.json'}")


def _weights_path(out: Path) -> Path:
    if out.suffix != ".safetensors":
        raise UserError(
            f"--out {out}: weights are written as safetensors; name the file *.safetensors"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    return out
