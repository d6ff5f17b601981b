"""Parsing of user-typed values: fractions such as ``8/255`` and device names."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from doublewin.core.errors import UserError
from doublewin.core.numbers import read_number

if TYPE_CHECKING:
    import torch


def parse_number(value: str | float | int, *, name: str = "value") -> float:
    """Return a finite float from ``0.03``, ``8/255`` or ``2e-4``; raise UserError naming
    ``name`` (numbers.read_number, the one checked reader)."""
    return read_number(value, name=name)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` is the first CUDA device when present, else the CPU; ``cuda:N`` must exist."""
    # deferred: parsing is imported by every command, most of which start without torch
    import torch

    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if not match:
        raise UserError(f"--device {name!r} is not understood; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA device is available here; use --device cpu")
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise UserError(
            f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are visible; "
            f"use cuda:0 … cuda:{torch.cuda.device_count() - 1}"
        )
    return torch.device("cuda", index)


def pixel_text(value: float, norm: str = "linf") -> str:
    """An ε or step as a user writes it: ``8/255`` for an L∞ value that is a whole number of
    255ths, else the number (``0.5`` for an L2 radius)."""
    scaled = value * 255
    if norm == "linf" and value > 0 and abs(scaled - round(scaled)) < 1e-6:
        return f"{round(scaled)}/255"
    return f"{value:g}"
