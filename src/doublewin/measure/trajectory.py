"""The training trajectory of a run: its weights at evenly spaced steps, for the loss
landscape's trajectory (the paper's Figure 6).

`TrajectoryRecorder` is a training callback. It writes the parameters that span the landscape
plane (`plane_parameters`) at step 0 and at every ``every``-th optimizer step, plus the last
step, one safetensors file per snapshot named by its step (``paths.snapshot``). A resumed run
rewrites the snapshots it passes again with the same values, so a trajectory survives an
interruption.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from doublewin.core import paths
from doublewin.core.atomic import atomic_path
from doublewin.train.callbacks import TrainState


def plane_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The parameters a landscape direction moves: every weight with more than one dimension
    (convolutions and linear layers). Biases and BatchNorm parameters stay at the centre, as in
    Li et al. (2018)."""
    return {n: p for n, p in model.named_parameters() if p.dim() > 1}


def snapshot_every(total_steps: int, snapshots: int) -> int:
    """Steps between snapshots so a run of ``total_steps`` keeps about ``snapshots`` of them."""
    return max(1, math.ceil(total_steps / max(1, snapshots)))


class TrajectoryRecorder:
    """Save the plane parameters of ``model`` at step 0 and every ``every`` steps into
    ``folder`` (and at the run's last step, ``total_steps``)."""

    def __init__(self, folder: str | Path, model: nn.Module, every: int, total_steps: int):
        self.folder = Path(folder)
        self.every = max(1, every)
        self.total_steps = total_steps
        self.folder.mkdir(parents=True, exist_ok=True)
        if not (self.folder / paths.snapshot(0)).is_file():
            self._save(model, 0)

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every == 0 or state.step == self.total_steps:
            self._save(state.model, state.step)

    def on_epoch_end(self, state: TrainState) -> None:
        return None

    def _save(self, model: nn.Module, step: int) -> None:
        tensors = {
            n: p.detach().float().cpu().contiguous() for n, p in plane_parameters(model).items()
        }
        with atomic_path(self.folder / paths.snapshot(step)) as tmp:
            save_file(tensors, str(tmp))


def read_trajectory(folder: str | Path) -> list[tuple[int, dict[str, torch.Tensor]]]:
    """Every snapshot in ``folder`` as (step, parameters), in step order."""
    pattern = re.compile(paths.SNAPSHOT_PATTERN)
    found = []
    for path in Path(folder).iterdir():
        match = pattern.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return [(step, load_file(str(path))) for step, path in sorted(found)]


def flatten(tensors: Mapping[str, torch.Tensor], names: list[str]) -> torch.Tensor:
    """The tensors ``names`` as one float64 vector, in that order."""
    return torch.cat([tensors[n].detach().reshape(-1).double().cpu() for n in names])
