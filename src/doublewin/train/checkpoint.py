"""The per-epoch training checkpoint: written atomically, read with ``weights_only=True``.

It holds only tensors and plain containers (dicts, lists, numbers, strings), so loading it
never unpickles code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from doublewin.errors import UserError
from doublewin.experiments.store import atomic_path

CHECKPOINT = "checkpoint.pt"


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` via a temporary file and a rename (never half-written)."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; a damaged file is a UserError."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise UserError(
            f"{path}: cannot read the training checkpoint ({type(exc).__name__}); "
            "delete it to start the run over"
        ) from None


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def cpu_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the model's state on the CPU, in contiguous memory format."""
    return {
        k: v.detach().to("cpu", memory_format=torch.contiguous_format, copy=True)
        for k, v in model.state_dict().items()
    }
