"""The pipeline stages, one function each: pretrain, tickets, transfer, evaluate, landscape.

``stage(spec, inputs, out, env) -> metrics`` (see environment.py). `STAGES` is the plain
mapping the runner looks stages up in; `run_stage` is how both the runner and the standalone
commands call one: it opens the stage's log in its output folder and closes it afterwards.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from doublewin.core import distributed, paths
from doublewin.core.errors import UserError
from doublewin.core.logs import JsonlLog
from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.stages.environment import Environment, Inputs
from doublewin.stages.evaluate import evaluate
from doublewin.stages.landscape import landscape
from doublewin.stages.pretrain import pretrain
from doublewin.stages.tickets import ticket_in, tickets
from doublewin.stages.transfer import transfer

StageFunction = Callable[[Any, Inputs, Path, Environment], dict[str, Any]]


@dataclass(frozen=True)
class Stage:
    """A stage function and whether a rerun resumes its unfinished output folder
    (``resumable``) or starts it over."""

    run: StageFunction
    resumable: bool


STAGES: dict[str, Stage] = {
    "pretrain": Stage(pretrain, resumable=True),
    "tickets": Stage(tickets, resumable=True),
    "transfer": Stage(transfer, resumable=True),
    "evaluate": Stage(evaluate, resumable=False),
    "landscape": Stage(landscape, resumable=True),
}


def stage(name: str) -> Stage:
    if name not in STAGES:
        raise UserError(f"no stage called {name!r}; stages: {', '.join(STAGES)}")
    return STAGES[name]


def run_stage(
    name: str,
    spec: Any,
    inputs: Inputs,
    out: Path | None,
    *,
    device: torch.device,
    data_root: str | Path | None = None,
    progress: Progress = NULL_PROGRESS,
    compile: bool = False,
) -> dict[str, Any]:
    """Run stage ``name`` on ``spec`` into ``out`` and return its metrics.

    The stage's JSONL log is ``out/LOG`` (rank 0 only; none when ``out`` is None)."""
    log = JsonlLog(out / paths.LOG) if out is not None and distributed.is_main() else None
    env = Environment(device, data_root, progress, log, compile)
    if log is not None:  # who computed the entry: two runners must never both do it
        log.write("stage-start", stage=name, host=socket.gethostname(), pid=os.getpid())
    started = time.perf_counter()
    try:
        metrics = stage(name).run(spec, inputs, out, env)
        # The whole stage's wall seconds (setup, training, evaluation, writing): what a plan's
        # cost estimate is checked against and the report's compute adds up.
        metrics["job_seconds"] = round(time.perf_counter() - started, 3)
        return metrics
    except torch.cuda.OutOfMemoryError:
        raise UserError(out_of_memory(name, spec)) from None
    finally:
        if log is not None:
            log.close()


def out_of_memory(name: str, spec: Any) -> str:
    """The one line for a CUDA out-of-memory error: which stage, at which batch size, and the
    option that lowers it."""
    if hasattr(spec, "train"):
        key, size = "train.batch_size", spec.train.batch_size
    elif hasattr(spec, "transfer"):
        key, size = "transfer.train.batch_size", spec.transfer.train.batch_size
    else:
        key, size = "batch_size", getattr(spec, "batch_size", None)
    smaller = max(1, (size or 2) // 2)
    option = f"--batch-size {smaller}" if name == "evaluate" else f"--set {key}={smaller}"
    return (
        f"CUDA out of memory in the {name} stage at batch size {size}; lower it ({option} on "
        "its command, or that stage's batch_size in the experiment file)"
    )


__all__ = [
    "STAGES",
    "Environment",
    "Inputs",
    "Stage",
    "evaluate",
    "landscape",
    "pretrain",
    "run_stage",
    "stage",
    "ticket_in",
    "tickets",
    "transfer",
]
