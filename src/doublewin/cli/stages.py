"""`doublewin pretrain` and `doublewin transfer`: one stage run alone, outside an experiment.

Options map to spec fields (shown in each option's help); ``--config FILE`` and ``--set k=v``
reach every other field. The commands call the same stage functions as ``doublewin run``
(doublewin/stages). The work folder keeps the per-epoch checkpoint, so the same command resumes
after an interruption.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Annotated

import typer

from doublewin.cli import options as opt
from doublewin.cli.app import app, console, err_console, print_json
from doublewin.cli.outputs import check_writable
from doublewin.cli.standalone import StageEnv, TransferRun, stage_env, transfer_run
from doublewin.core import paths
from doublewin.core.errors import UserError
from doublewin.core.typed import to_dict

# Fewer optimizer steps than this: transfer says the model barely trained.
FEW_STEPS = 20


PRETRAIN = opt.TrainingOptions("pretrain", "")
TRANSFER = transfer_run(
    "transfer",
    "",
    data="Downstream dataset (data.name).",
    regime="st or at (train.regime; default st, or the --config's)",
)


@app.command("pretrain")
@stage_env(compile=True).add("env")
def pretrain_command(
    *,
    out: opt.WeightsOut,
    arch: opt.field_option("--arch", str, "pretrain", "arch", "Architecture (arch).") = None,
    data: opt.field_option(
        "--data", str, "pretrain", "data.name", "Source dataset (data.name)."
    ) = None,
    regime: opt.field_option(
        "--regime",
        str,
        "pretrain",
        "train.regime",
        "std, fat (FGSM-RS) or at (PGD) (train.regime).",
    ) = None,
    epochs: PRETRAIN.Epochs = None,
    lr: PRETRAIN.Lr = None,
    batch_size: opt.field_option("--batch-size", int, "pretrain", "train.batch_size") = None,
    eps: Annotated[
        str | None,
        typer.Option(
            "--eps",
            help="ε of every attack of the stage (training, validation, the source RA), "
            "e.g. 8/255; a --set of one attack's eps overrides it [default: each attack's own, "
            "8/255]",
        ),
    ] = None,
    step: opt.Step = None,
    steps: opt.field_option("--steps", int, "pretrain", "train.attack.steps") = None,
    resolution: PRETRAIN.Resolution = None,
    seed: PRETRAIN.Seed = None,
    env: StageEnv,
) -> None:
    """Pre-train θp on a source dataset (resumable); the weights carry source SA/RA."""
    given = {
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
    }
    spec = env.spec("pretrain", given)
    _check_attack_options(spec.train.regime, {"--steps": steps, "--step": step})
    out = _weights_path(out)
    if out.exists() and _finished(out, spec, env.as_json):
        return
    from doublewin.stages import Inputs  # deferred: torch

    workdir = paths.work_folder(out)
    result = env.run("pretrain", spec, Inputs(), workdir)
    if result is None:  # another rank of a torchrun
        return
    os.replace(workdir / paths.WEIGHTS, out)
    shutil.copyfile(workdir / paths.LOG, paths.log_beside(out))
    shutil.rmtree(workdir, ignore_errors=True)
    summary = {
        "weights": str(out),
        "content_hash": result["content_hash"],
        "regime": spec.train.regime,
        "source_sa": result["source_sa"],
        "source_ra": result["source_ra"],
        "collapsed": result["collapsed"],
    }
    if env.as_json:
        print_json(summary)
        return
    console.print(
        f"{out}: {spec.arch} {spec.train.regime} on {spec.data.name}; source SA "
        f"{result['source_sa']:.2f}%, RA {result['source_ra']:.2f}%; hash "
        f"{result['content_hash']}"
    )
    if result["collapsed"]:
        console.print(
            "FAT catastrophic overfitting: training stopped and kept the last good "
            "weights (see the log)"
        )


@app.command("transfer")
@TRANSFER.add("run")
@stage_env(compile=True).add("env")
def transfer_command(
    *,
    run: TransferRun,
    out: Annotated[Path, typer.Option("--out", help="Folder for metrics and fine-tuned weights.")],
    save_models: Annotated[
        str,
        typer.Option(
            "--save-models",
            help="Fine-tuned weights to keep: none, best_sa, best_ra or both (save_models).",
        ),
    ] = "both",
    env: StageEnv,
) -> None:
    """Fine-tune a ticket m ⊙ θp (or dense θp) downstream with ST or AT; test SA and RA."""
    spec = env.spec("transfer", {**run.overrides(), "save_models": save_models})
    m = env.run("transfer", spec, run.inputs(), out, metrics=True)
    if m is None:  # another rank of a torchrun
        return
    for message in m.get("warnings", ()):
        err_console.print(f"warning: {message}", highlight=False)
    if m.get("steps") is not None and m["steps"] < FEW_STEPS:
        err_console.print(
            f"warning: data.fraction {spec.data.fraction:g} of {run.data} left "
            f"{m['train_images']:,} training images and {m['steps']} optimizer steps; the model "
            "barely trained (raise --fraction or --epochs)",
            highlight=False,
            markup=False,
        )
    if env.as_json:
        print_json(m)
        return
    console.print(
        f"{run.data} ({'AT' if spec.train.regime == 'at' else 'ST'}, "
        f"sparsity {m['sparsity']:.2%}, {m['train_images']:,} training images, "
        f"{m['steps']} steps): "
        f"best-val-SA checkpoint SA {m['sa_best_sa']:.2f}% RA {m['ra_best_sa']:.2f}%;"
        f" best-val-RA checkpoint SA {m['sa_best_ra']:.2f}% RA {m['ra_best_ra']:.2f}%"
    )
    console.print(f"metrics: {out / paths.METRICS}")


def _check_attack_options(regime: str, given: dict[str, object]) -> None:
    """Options of the PGD training attack, given for a regime that runs none (std) or runs
    FGSM with its own step (fat), would do nothing."""
    for option, value in given.items():
        if value is not None and regime != "at":
            runs = "FGSM with step fat_alpha × ε" if regime == "fat" else "no attack"
            raise UserError(
                f"{option} sets the PGD training attack, which regime {regime} does not run "
                f"({runs}); leave it out, or pass --regime at"
            )


def _finished(out: Path, spec: object, as_json: bool) -> bool:
    """True when ``out`` already holds this pre-training's weights (it is not trained again);
    a weights file of another pre-training there is refused rather than overwritten."""
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.models import read_weights_meta

    meta = read_weights_meta(out)
    recorded = meta.extra.get("spec") if meta is not None else None
    if recorded is None or json.dumps(recorded, sort_keys=True) != json.dumps(
        to_dict(spec), sort_keys=True
    ):
        what = "another pre-training's weights" if meta is not None else "a file"
        raise UserError(
            f"--out {out}: {what} already there; pass another --out, or remove it to train again"
        )
    summary = {"weights": str(out), "content_hash": meta.content_hash, "already_done": True}
    if as_json:
        print_json(summary)
    else:
        console.print(
            f"{out}: already trained with this spec (hash {meta.content_hash}); nothing to do",
            highlight=False,
            markup=False,
        )
    return True


def _weights_path(out: Path) -> Path:
    if out.suffix != paths.SAFETENSORS:
        raise UserError(
            f"--out {out}: weights are written as safetensors; name the file *.safetensors"
        )
    check_writable(out, folder=False)
    return out
