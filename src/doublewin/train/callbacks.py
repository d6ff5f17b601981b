"""What a training callback sees, and the protocol it follows.

Callbacks run at the end of every optimizer step and every epoch; they let callers act on the
run (IMP captures the weights after k steps for rewinding) without flags inside the loop.
Raising from a callback stops the run; the last epoch checkpoint stays, so a rerun resumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn


@dataclass
class TrainState:
    """The run as a callback sees it. ``step`` counts optimizer steps taken (from 1 inside
    ``on_step_end``); ``epoch`` is the 0-based epoch in progress (or just finished, in
    ``on_epoch_end``). ``record`` is the epoch's history entry (``on_epoch_end`` only)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    epoch: int
    step: int
    steps_per_epoch: int
    record: dict[str, Any] = field(default_factory=dict)


class Callback(Protocol):
    def on_step_end(self, state: TrainState) -> None: ...

    def on_epoch_end(self, state: TrainState) -> None: ...
