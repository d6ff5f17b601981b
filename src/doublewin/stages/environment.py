"""What every stage function receives besides its spec: its input files and its environment.

A stage is one function ``stage(spec, inputs, out, env) -> metrics``: it reads the files named
in ``inputs``, writes its artifacts into the folder ``out`` (file names from core/paths.py) and
returns the metrics that go into ``metrics.json``. The runner resolves a spec's references
(``pretrain-<hash>``, ``tickets-<hash>@<sparsity>``) to files of the store; a standalone
command takes them from its options. Both call the stage the same way (`run_stage`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from doublewin.core.logs import JsonlLog
from doublewin.core.progress import NULL_PROGRESS, Progress


@dataclass(frozen=True)
class Inputs:
    """Files a stage reads. ``weights``: θp (or fine-tuned weights, for evaluate; a
    SuperTicket's network, for its transfer); ``ticket``: a mask file, None for the dense
    model; ``trunk``: IMP's folder of rungs, shared by every ladder length of the same IMP run
    (None: inside ``out``); ``reference``: the SuperTickets folder whose MACs search-then-prune
    matches."""

    weights: Path | None = None
    ticket: Path | None = None
    trunk: Path | None = None
    reference: Path | None = None


@dataclass(frozen=True)
class Environment:
    """Where and how a stage computes. ``data_root``: folder of real datasets (None: the
    default); ``log``: the stage's JSONL log (None on ranks other than 0); ``compile``:
    torch.compile the training forward."""

    device: torch.device = torch.device("cpu")
    data_root: str | Path | None = None
    progress: Progress = NULL_PROGRESS
    log: JsonlLog | None = None
    compile: bool = False
