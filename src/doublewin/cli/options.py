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


def option(kind: Any, flag: str, help: str, **extra: Any) -> Any:
    """An option as an ``Annotated`` type: its value's type, its flag, its help and any other
    setting of ``typer.Option``."""
    return Annotated[kind, typer.Option(flag, help=help, **extra)]


Json = option(bool, "--json", "Print machine-readable JSON.")
DataRoot = option(
    str | None,
    "--data-root",
    "Folder holding real datasets (default: $DOUBLEWIN_DATA, else ./data).",
    envvar="DOUBLEWIN_DATA",
)
Device = option(str, "--device", "auto (CUDA when present), cpu, cuda or cuda:N.")
Threads = option(
    int | None,
    "--threads",
    "CPU threads per job (default: the cores divided among the workers).",
    min=1,
)
Compile = option(
    bool, "--compile", "torch.compile the training forward (pays off on GPUs for long runs)."
)
Config = option(Path | None, "--config", "YAML with the stage's spec fields (docs/specs.md).")
Weights = option(Path, "--weights", "Pre-trained weights file θp.")
WeightsOut = option(Path, "--out", "Weights file to write (.safetensors).")
Ticket = option(
    Path | None,
    "--ticket",
    "Ticket file (doublewin or official format) [default: none, the dense model].",
)
# The step's default is a rule of ε and steps (core/eps.py), not one value.
Step = option(
    str | None,
    "--step",
    "PGD step in [0,1] pixels, e.g. 2/255 [default: ε/4, or 2.5·ε/steps with fewer than 10 "
    "steps (docs/evaluation.md)].",
)


def autoattack_option(what: str) -> Any:
    """``--autoattack N``: standard AutoAttack on the first N test points (0 = off); ``what``
    says where, and what it fills."""
    text = f"{what}standard AutoAttack on the first N test points (0 = off); needs torchattacks."
    return option(int, "--autoattack", text, min=0)


def limit_option(what: str) -> Any:
    """``--limit N``: measure on the first N test images only; ``what`` says the default."""
    return option(int | None, "--limit", f"Measure on the first N test images only {what}.", min=1)


def set_option(what: str, example: str) -> Any:
    """The repeatable ``--set key=value`` option; ``what`` it overrides, with an example."""
    return option(list[str] | None, "--set", f"Override {what}: --set {example} (repeatable).")


SetSpec = set_option("any spec field", "train.milestones=[50,75]")


def field_option(flag: str, kind: type, stage: str, key: str, text: str = "", **extra: Any) -> Any:
    """An option ``flag`` that sets the spec field ``key`` of ``stage`` (None when left out:
    the spec decides); its help is ``text`` (else the key) with the spec's default."""
    return option(kind | None, flag, field_help(stage, key, text), **extra)


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
