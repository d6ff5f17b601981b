"""`doublewin import-weights`: foreign checkpoints → a doublewin weights file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from doublewin.cli import options as opt
from doublewin.cli.app import app, console, print_json
from doublewin.cli.outputs import check_writable
from doublewin.core import paths
from doublewin.core.errors import UserError
from doublewin.core.numbers import EPS_HINT, PIXEL_UNITS, read_number

if TYPE_CHECKING:
    from doublewin.models import WeightsMeta


@app.command("import-weights")
def import_weights_command(
    source: Annotated[
        Path, typer.Argument(help="Checkpoint to import (.pt, .pth, .tar, .safetensors).")
    ],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="torchvision | robustness | fast-adversarial | robustbench | huggingface",
        ),
    ],
    out: opt.WeightsOut,
    eps: Annotated[
        str | None,
        typer.Option(
            "--eps",
            help="The checkpoint's training ε, recorded in the metadata, e.g. 4/255 [default: none, not recorded].",
        ),
    ] = None,
    trust_pickle: Annotated[
        bool,
        typer.Option(
            "--trust-pickle",
            help="Allow full unpickling (can run code): only for files whose source you trust.",
        ),
    ] = False,
    arch: Annotated[
        str | None,
        typer.Option(
            "--arch",
            help="Architecture (doublewin models); a huggingface folder names its own [default: none, required for the other formats].",
        ),
    ] = None,
    num_classes: Annotated[
        int, typer.Option("--num-classes", min=1, help="huggingface: the classifier's classes.")
    ] = 2,
    as_json: opt.Json = False,
) -> None:
    """Import a torchvision, MadryLab robustness, fast_adversarial or RobustBench checkpoint,
    or a Hugging Face BERT-family folder, safely (no code runs unless --trust-pickle)."""
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.models import save_weights
    from doublewin.models.importers import import_checkpoint
    from doublewin.models.weights import content_hash

    if arch is None and format != "huggingface":
        raise UserError(
            f"--arch: name the architecture of this {format} checkpoint (doublewin models)"
        )
    existing = _weights_at(out)
    epsilon = None
    if eps is not None:
        epsilon = read_number(eps, name="--eps", range=PIXEL_UNITS, hint=EPS_HINT)
    state, meta = import_checkpoint(
        source,
        format=format,
        arch=arch or "",
        trust_pickle=trust_pickle,
        eps=epsilon,
        num_classes=num_classes,
    )
    arch = meta.arch
    if existing is not None and _same_import(out, existing, content_hash(state), meta, as_json):
        return
    digest = save_weights(out, state, meta)
    params = sum(
        v.numel()
        for k, v in state.items()
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    )
    summary = {
        "weights": str(out),
        "arch": arch,
        "format": format,
        "num_classes": meta.num_classes,
        "parameters": params,
        "content_hash": digest,
        "regime": meta.regime,
        "eps": epsilon,
    }
    if as_json:
        print_json(summary)
        return
    console.print(
        f"{out}: {arch} from {format}, {meta.num_classes} classes, {params:,} "
        f"parameters, regime {meta.regime}, hash {digest}"
    )


def _weights_at(out: Path) -> WeightsMeta | None:
    """``--out``, checked before anything is read: a writable safetensors path; the metadata
    of doublewin weights already there (compared with the import), any other file refused."""
    # deferred: the command line starts without torch
    from doublewin.models import read_weights_meta

    if out.suffix != paths.SAFETENSORS:
        raise UserError(
            f"--out {out}: weights are written as safetensors; name the file *.safetensors"
        )
    check_writable(out, folder=False)
    existing = read_weights_meta(out) if out.exists() else None
    if out.exists() and existing is None:
        raise UserError(
            f"--out {out}: a file is already there, not doublewin weights; pass another --out"
        )
    return existing


def _same_import(
    out: Path, existing: WeightsMeta, digest: str, meta: WeightsMeta, as_json: bool
) -> bool:
    """True (said in one line, nothing written) when ``out`` already holds this import: the
    same tensors with the same normalization; other weights there are refused, as pretrain
    refuses them."""
    if existing.content_hash != digest or (existing.mean, existing.std) != (meta.mean, meta.std):
        raise UserError(
            f"--out {out}: other weights already there (hash {existing.content_hash}); pass "
            "another --out, or remove the file to import again"
        )
    if as_json:
        print_json({"weights": str(out), "content_hash": digest, "already_done": True})
    else:
        console.print(
            f"{out}: already imported (hash {digest}); nothing to do", highlight=False, markup=False
        )
    return True
