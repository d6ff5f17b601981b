"""Numeric precision and memory layout per device.

On CUDA the engine trains in bfloat16 autocast with channels_last tensors (about twice the
throughput of fp32 on tensor-core GPUs, and bf16 needs no loss scaling); on the CPU it stays
in plain fp32, where autocast would only slow things down.
"""

from __future__ import annotations

import contextlib
from typing import Literal

import torch

from doublewin.core.errors import UserError

Precision = Literal["auto", "fp32", "bf16"]


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → ``bf16`` on CUDA, ``fp32`` elsewhere."""
    if precision not in ("auto", "fp32", "bf16"):
        raise UserError(f"precision {precision!r} is not known; use auto, fp32 or bf16")
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context for a resolved precision (a no-op for fp32)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
