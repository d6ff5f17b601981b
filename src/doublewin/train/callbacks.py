"""What a training callback sees, and the protocol it follows.

Callbacks run at the end of every optimizer step and every epoch; they act on the run without
flags inside the loop. The engine's own work between steps is callbacks too
(standard_callbacks.py: progress and the step log, the overfit guard, validation with the best
states, the epoch log, the checkpoint); callers add theirs (IMP captures the weights after k
steps for rewinding, the landscape records the trajectory). Raising from a callback stops the
run; the last epoch checkpoint stays, so a rerun resumes.
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
    ``on_epoch_end``). ``record`` is the epoch's history entry (``on_epoch_end`` only), which
    epoch callbacks add their measurements to. Inside ``on_step_end``: ``batch``, the batches
    of the epoch done; ``loss``/``acc``, the epoch's mean training loss and accuracy (points)
    so far, read from the device only every ``log_every`` steps (None in between); ``lr``,
    the learning rate of the step."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    epoch: int
    step: int
    steps_per_epoch: int
    record: dict[str, Any] = field(default_factory=dict)
    batch: int = 0
    loss: float | None = None
    acc: float | None = None
    lr: float | None = None


class Callback(Protocol):
    def on_step_end(self, state: TrainState) -> None: ...

    def on_epoch_end(self, state: TrainState) -> None: ...
