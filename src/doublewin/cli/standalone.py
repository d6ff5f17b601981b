"""What the standalone stage commands share (`pretrain`, `transfer`, `find-tickets`,
`landscape`, `evaluate`): the ``--config`` and ``--set`` options, options turned into spec
overrides, and `run_alone`, which runs one stage outside an experiment the way a job of
`doublewin run` runs it (stages.run_stage)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from doublewin.cli.outputs import output_folder
from doublewin.cli.progress import RichProgress
from doublewin.core import paths
from doublewin.core.atomic import atomic_write_json
from doublewin.core.build import transfer_regime
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


def transfer_overrides(prefix: str, weights: Path, ticket: Path | None, **options: Any) -> dict:
    """The options of a transfer run (``prefix``: "" for the transfer stage, "transfer." for
    a landscape's transfer) as spec key → value (None: not given), its files checked first.
    ``options``: data, fraction, regime (st/at), seed, epochs, lr, resolution."""
    if not weights.is_file():
        raise UserError(
            f"--weights {weights}: file not found; pass a weights file from "
            "doublewin pretrain or doublewin import-weights"
        )
    if ticket is not None and not ticket.is_file():
        raise UserError(
            f"--ticket {ticket}: file not found; pass a ticket from doublewin find-tickets"
        )
    regime = options["regime"]
    keys = {
        "data": "data.name",
        "fraction": "data.fraction",
        "seed": "seed",
        "epochs": "train.epochs",
        "lr": "train.lr",
        "resolution": "data.resolution",
    }
    return {
        f"{prefix}weights": str(weights),
        f"{prefix}ticket": str(ticket) if ticket else None,
        # Only when given: a --config's own regime stands otherwise.
        f"{prefix}train.regime": transfer_regime(regime, f"--regime {regime}") if regime else None,
        **{f"{prefix}{key}": options[name] for name, key in keys.items()},
    }


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
