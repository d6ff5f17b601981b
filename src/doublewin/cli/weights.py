"""`doublewin import-weights`: foreign checkpoints → a doublewin weights file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from doublewin.cli.app import JsonFlag, app, console, print_json
from doublewin.cli.outputs import check_writable
from doublewin.core import paths
from doublewin.core.errors import UserError
from doublewin.core.parsing import parse_number


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
    out: Annotated[Path, typer.Option("--out", help="Weights file to write (.safetensors).")],
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
    as_json: JsonFlag = False,
) -> None:
    """Import a torchvision, MadryLab robustness, fast_adversarial or RobustBench checkpoint,
    or a Hugging Face BERT-family folder, safely (no code runs unless --trust-pickle)."""
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.models import save_weights
    from doublewin.models.importers import import_checkpoint

    if arch is None and format != "huggingface":
        raise UserError(
            f"--arch: name the architecture of this {format} checkpoint (doublewin models)"
        )
    if out.suffix != paths.SAFETENSORS:
        raise UserError(
            f"--out {out}: weights are written as safetensors; name the file *.safetensors"
        )
    check_writable(out, folder=False)
    epsilon = parse_number(eps, name="--eps") if eps is not None else None
    state, meta = import_checkpoint(
        source,
        format=format,
        arch=arch or "",
        trust_pickle=trust_pickle,
        eps=epsilon,
        num_classes=num_classes,
    )
    arch = meta.arch
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
