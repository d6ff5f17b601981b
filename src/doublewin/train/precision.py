"""Numeric precision and memory layout per device.

On CUDA the engine trains in bfloat16 autocast (about twice the throughput of fp32 on
tensor-core GPUs, and bf16 needs no loss scaling); on the CPU it stays in plain fp32, where
autocast would only slow things down. Training and evaluation run in the channels_last memory
layout on both: on the CPU it took 8–30% off a training step and 25–30% off a PGD evaluation
of the ResNets and the small ViT (docs/benchmarks.md, "Memory layout").
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch
from torch import nn

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


def default_channels_last(device: torch.device) -> bool:
    """channels_last by default on CUDA and the CPU (oneDNN's and cuDNN's faster layout for
    convolutions); other backends keep the contiguous layout."""
    return device.type in ("cuda", "cpu")


@contextlib.contextmanager
def channels_last_layout(model: nn.Module, enabled: bool) -> Iterator[None]:
    """``model``'s 4-d parameters and buffers in channels_last for the block, contiguous again
    afterwards (saved weights and masks stay in the ordinary layout). Parameters keep their
    identity, so an optimizer built on them stays valid. A model already in channels_last
    (an evaluation inside training) is left as it is."""
    if not enabled or _is_channels_last(model):
        yield
        return
    model.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        model.to(memory_format=torch.contiguous_format)


def _is_channels_last(model: nn.Module) -> bool:
    for param in model.parameters():
        if param.dim() == 4 and param.shape[1] * param.shape[2] * param.shape[3] > 1:
            return not param.is_contiguous() and param.is_contiguous(
                memory_format=torch.channels_last
            )
    return False


def as_layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A batch of images in the layout the model runs in."""
    if channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x
