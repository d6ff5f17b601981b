"""The options several commands share, each defined once as an ``Annotated`` alias (used as
``device: opt.Device = "auto"``): where a command computes, what it prints, the spec it runs,
the files it reads; `field_option` makes an option that sets one field of a stage's spec, its
help naming the default the spec gives it, and `TrainingOptions` holds those every training
stage has (pretrain, transfer, a landscape's transfer)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from doublewin.core.build import load_spec

Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DataRoot = Annotated[
    str | None,
    typer.Option(
        "--data-root",
        envvar="DOUBLEWIN_DATA",
        help="Folder holding real datasets (default: $DOUBLEWIN_DATA, else ./data).",
    ),
]
Device = Annotated[
    str, typer.Option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N.")
]
Threads = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        help="CPU threads per job (default: the cores divided among the workers).",
    ),
]
Compile = Annotated[
    bool,
    typer.Option(
        "--compile", help="torch.compile the training forward (pays off on GPUs for long runs)."
    ),
]
Config = Annotated[
    Path | None, typer.Option("--config", help="YAML with the stage's spec fields (docs/specs.md).")
]
Weights = Annotated[Path, typer.Option("--weights", help="Pre-trained weights file θp.")]
WeightsOut = Annotated[Path, typer.Option("--out", help="Weights file to write (.safetensors).")]
Ticket = Annotated[
    Path | None,
    typer.Option(
        "--ticket",
        help="Ticket file (doublewin or official format) [default: none, the dense model].",
    ),
]
# The step's default is a rule of ε and steps (core/eps.py), not one value.
Step = Annotated[
    str | None,
    typer.Option(
        "--step",
        help="PGD step in [0,1] pixels, e.g. 2/255 [default: ε/4, or 2.5·ε/steps with fewer "
        "than 10 steps (docs/evaluation.md)].",
    ),
]


def autoattack_option(what: str) -> Any:
    """``--autoattack N``: standard AutoAttack on the first N test points (0 = off); ``what``
    says where, and what it fills."""
    return Annotated[
        int,
        typer.Option(
            "--autoattack",
            min=0,
            help=f"{what}standard AutoAttack on the first N test points (0 = off); needs "
            "torchattacks.",
        ),
    ]


def limit_option(what: str) -> Any:
    """``--limit N``: measure on the first N test images only; ``what`` says the default."""
    return Annotated[
        int | None,
        typer.Option("--limit", min=1, help=f"Measure on the first N test images only {what}."),
    ]


def set_option(what: str, example: str) -> Any:
    """The repeatable ``--set key=value`` option; ``what`` it overrides, with an example."""
    return Annotated[
        list[str] | None,
        typer.Option("--set", help=f"Override {what}: --set {example} (repeatable)."),
    ]


SetSpec = set_option("any spec field", "train.milestones=[50,75]")


def field_option(flag: str, kind: type, stage: str, key: str, text: str = "", **extra: Any) -> Any:
    """An option ``flag`` that sets the spec field ``key`` of ``stage`` (None when left out:
    the spec decides); its help is ``text`` (else the key) with the spec's default."""
    return Annotated[kind | None, typer.Option(flag, help=field_help(stage, key, text), **extra)]


class TrainingOptions:
    """The options of a training run for ``stage``, whose spec holds the run's fields under
    ``prefix`` ("" for the pretrain and transfer stages, "transfer." for a landscape)."""

    def __init__(self, stage: str, prefix: str):
        def option(flag: str, kind: type, key: str, text: str = "") -> Any:
            return field_option(flag, kind, stage, prefix + key, text and prefix + text)

        self.Fraction = option("--fraction", float, "data.fraction", "data.fraction in (0, 1]")
        self.Seed = option("--seed", int, "seed")
        self.Epochs = option("--epochs", int, "train.epochs")
        self.Lr = option("--lr", float, "train.lr")
        self.Resolution = option("--resolution", int, "data.resolution")


def field_help(stage: str, key: str, text: str = "") -> str:
    """Help for an option that sets the spec field ``key`` of ``stage``: the text (else the
    field's name) and the default the spec gives it when the option is left out."""
    value: Any = _default_spec(stage)
    for part in key.split("."):
        value = getattr(value, part)
    return f"{text or key} [default: {_shown(value)}]"


def _default_spec(stage: str) -> Any:
    if stage not in _DEFAULT_SPECS:
        _DEFAULT_SPECS[stage] = load_spec(stage)
    return _DEFAULT_SPECS[stage]


_DEFAULT_SPECS: dict[str, Any] = {}


def _shown(value: Any) -> str:
    """A default as a user writes it: ε-like values as k/255, None as none."""
    if value is None:
        return "none (the dataset's or the architecture's own)"
    if isinstance(value, float) and 0 < value < 1 and abs(value * 255 - round(value * 255)) < 1e-6:
        return f"{round(value * 255)}/255"
    return str(value)
