"""What the standalone stage commands share (`pretrain`, `transfer`, `find-tickets`,
`landscape`, `evaluate`): the options they end with (`stage_env`), a transfer run's options
(`transfer_run`), options turned into spec overrides, and `run_alone`, which runs one stage outside an experiment the way a job of
`doublewin run` runs it (stages.run_stage)."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from doublewin.cli import options as opt
from doublewin.cli.app import set_threads
from doublewin.cli.groups import OptionGroup
from doublewin.cli.outputs import output_folder
from doublewin.cli.progress import RichProgress
from doublewin.core import paths
from doublewin.core.atomic import atomic_write_json
from doublewin.core.build import load_spec, transfer_regime
from doublewin.core.errors import UserError
from doublewin.core.parsing import resolve_device
from doublewin.core.typed import to_dict


def overrides_of(pairs: Mapping[str, object], extra: list[str] | None) -> list[str]:
    """The options given (spec key → value; None: not given) as ``key=value`` overrides,
    then the --set items. A key set both ways is refused: the --set would win silently and
    the option's value would never be checked."""
    given = {key: value for key, value in pairs.items() if value is not None}
    for item in extra or []:
        key, sep, _ = item.partition("=")
        key = key.strip()
        if sep and key in given:  # a malformed item is parse_overrides' to name
            raise UserError(
                f"{key} is set twice: by its option ({given[key]}) and by --set {item}; "
                "give it once"
            )
    return [f"{key}={value}" for key, value in given.items()] + list(extra or [])


def check_weights(weights: Path) -> None:
    if not weights.is_file():
        raise UserError(
            f"--weights {weights}: file not found; pass a weights file from "
            "doublewin pretrain or doublewin import-weights"
        )


@dataclass(frozen=True)
class StageEnv:
    """How a standalone stage command runs: its spec file and --set items, the device, the
    data folder, JSON output and torch.compile (--threads is applied when it is made)."""

    config: Path | None
    overrides: list[str] | None
    device: str
    data_root: str | None
    as_json: bool
    compile: bool = False

    def spec(self, stage: str, given: Mapping[str, object]) -> Any:
        """The stage's spec: the --config file, then the options given, then the --set items."""
        return load_spec(stage, self.config, overrides_of(given, self.overrides))

    def run(self, stage: str, spec: Any, inputs: Any, out: Path | None, **extra: Any) -> Any:
        """`run_alone` in this environment."""
        return run_alone(
            stage,
            spec,
            inputs,
            out,
            device=self.device,
            data_root=self.data_root,
            as_json=self.as_json,
            compile=self.compile,
            **extra,
        )


def _stage_env(given: dict[str, Any]) -> StageEnv:
    set_threads(given.pop("threads"))
    return StageEnv(**given)


def stage_env(*, compile: bool = False) -> OptionGroup:
    """The options every standalone stage command ends with (--compile where it trains)."""
    options = [
        ("config", opt.Config, None),
        ("overrides", opt.SetSpec, None),
        ("device", opt.Device, "auto"),
        ("data_root", opt.DataRoot, None),
        ("compile", opt.Compile, False),
        ("threads", opt.Threads, None),
        ("as_json", opt.Json, False),
    ]
    return OptionGroup([o for o in options if compile or o[0] != "compile"], _stage_env)


@dataclass(frozen=True)
class TransferRun:
    """The options of a transfer run: its files, downstream data and training (``prefix``:
    "" for the transfer stage, "transfer." for a landscape's transfer)."""

    prefix: str
    weights: Path
    data: str
    ticket: Path | None
    fraction: float | None
    regime: str | None
    seed: int | None
    epochs: int | None
    lr: float | None
    resolution: int | None

    def overrides(self, regime: str | None = None) -> dict[str, object]:
        """The options as spec key → value (None: not given), the files checked first;
        ``regime`` stands where --regime is not given."""
        check_weights(self.weights)
        if self.ticket is not None and not self.ticket.is_file():
            raise UserError(
                f"--ticket {self.ticket}: file not found; pass a ticket from doublewin find-tickets"
            )
        regime = self.regime or regime
        keys = {
            "weights": str(self.weights),
            "ticket": str(self.ticket) if self.ticket else None,
            # Only when given: a --config's own regime stands otherwise.
            "train.regime": transfer_regime(regime, f"--regime {regime}") if regime else None,
            "data.name": self.data,
            "data.fraction": self.fraction,
            "seed": self.seed,
            "train.epochs": self.epochs,
            "train.lr": self.lr,
            "data.resolution": self.resolution,
        }
        return {self.prefix + key: value for key, value in keys.items()}

    def inputs(self) -> Any:
        from doublewin.stages import Inputs  # deferred: torch

        return Inputs(weights=self.weights, ticket=self.ticket)


def transfer_run(stage: str, prefix: str, data: str, regime: str) -> OptionGroup:
    """The options of a transfer run for ``stage``, its fields under ``prefix``; ``data`` and
    ``regime`` are the help of --data and --regime."""
    fields = opt.TrainingOptions(stage, prefix)
    options = [
        ("weights", opt.Weights, inspect.Parameter.empty),
        ("data", Annotated[str, typer.Option("--data", help=data)], inspect.Parameter.empty),
        ("ticket", opt.Ticket, None),
        ("fraction", fields.Fraction, None),
        ("regime", Annotated[str | None, typer.Option("--regime", help=regime)], None),
        ("seed", fields.Seed, None),
        ("epochs", fields.Epochs, None),
        ("lr", fields.Lr, None),
        ("resolution", fields.Resolution, None),
    ]
    return OptionGroup(options, lambda given: TransferRun(prefix, **given))


def run_alone(
    stage: str,
    spec: Any,
    inputs: Any,
    out: Path | None,
    *,
    device: str,
    data_root: str | None,
    as_json: bool,
    compile: bool = False,
    metrics: bool = False,
    option: str = "--out",
) -> dict[str, Any] | None:
    """Run ``stage`` on ``spec`` into ``out`` (created, and removed again if the stage fails
    before it had a folder; None: the stage writes none) with a progress display unless
    ``as_json``. Returns its metrics on rank 0 and None on the other ranks of a torchrun;
    with ``metrics``, ``out/metrics.json`` holds them beside the spec."""
    # deferred: the command line starts without torch; the command loads what it runs
    from doublewin.core import distributed
    from doublewin.stages import run_stage

    dev = resolve_device(device)  # before anything is made
    with (
        output_folder(out, option=option) if out is not None else contextlib.nullcontext(),
        RichProgress(enabled=not as_json) as progress,
    ):
        result = run_stage(
            stage,
            spec,
            inputs,
            out,
            device=dev,
            data_root=data_root,
            progress=progress,
            compile=compile,
        )
    if not distributed.is_main():
        return None
    if metrics and out is not None:
        atomic_write_json(out / paths.METRICS, {"spec": to_dict(spec), **result})
    return result
