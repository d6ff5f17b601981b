"""Standard accuracy (SA) and robust accuracy (RA) of a model on a loader.

Accuracies are in percentage points (0–100). The model runs in eval mode (restored afterwards)
and attacks run with the model in eval mode, whatever ``AttackSpec.bn_mode`` says (that field
is the BatchNorm mode of attacks *during training*).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from doublewin.attacks import PGD, model_mode
from doublewin.core.progress import NULL_PROGRESS, Progress
from doublewin.core.specs import AttackSpec
from doublewin.train.precision import (
    as_layout,
    autocast,
    channels_last_layout,
    default_channels_last,
    resolve_precision,
)


def evaluate(
    model: nn.Module,
    loader: Iterable,
    *,
    attack: AttackSpec | None = None,
    device: torch.device | str | None = None,
    max_batches: int | None = None,
    precision: str = "fp32",
    channels_last: bool | None = None,
    progress: Progress = NULL_PROGRESS,
    label: str = "evaluating",
) -> dict[str, Any]:
    """SA and RA of ``model`` on the batches of ``loader`` (pixels in [0,1]).

    Returns ``{"sa": points, "ra": points or None (no attack), "n": examples}``. RA is the
    accuracy on the attacked version of every example (an example wrong when clean counts as
    not robust). ``max_batches`` stops after that many batches. ``precision``: ``fp32``
    (default: reported numbers should not depend on reduced precision), ``bf16`` or ``auto``.
    ``channels_last``: the memory layout (default: `default_channels_last`; the numbers agree
    with the contiguous layout's up to float rounding).
    """
    device = torch.device(device) if device is not None else _model_device(model)
    precision = resolve_precision(precision, device)
    pgd = PGD.from_spec(attack, bn_mode="eval") if attack is not None else None
    correct = torch.zeros((), dtype=torch.long, device=device)
    robust = torch.zeros((), dtype=torch.long, device=device)
    n = 0
    total = len(loader) if hasattr(loader, "__len__") else None  # type: ignore[arg-type]
    task = progress.task(label + (f" (PGD-{attack.steps})" if attack is not None else ""), total)
    if channels_last is None:
        channels_last = default_channels_last(device)
    with model_mode(model, "eval"), channels_last_layout(model, channels_last):
        for index, (x, y) in enumerate(loader):
            if max_batches is not None and index >= max_batches:
                break
            x = as_layout(x.to(device, non_blocking=True), channels_last)
            y = y.to(device, non_blocking=True)
            with torch.no_grad(), autocast(precision, device):
                clean = model(x).argmax(1) == y
            correct += clean.sum()
            n += int(y.shape[0])
            if pgd is not None:
                if pgd.early_stop:
                    # A wrong clean example is not robust whatever the attack does: skip it.
                    x, y, clean = x[clean], y[clean], clean[clean]
                if y.shape[0] > 0:
                    with autocast(precision, device):
                        x_adv = pgd(model, x, y)
                    with torch.no_grad(), autocast(precision, device):
                        # Robust: right on the clean example and on its attacked version.
                        robust += (clean & (model(x_adv).argmax(1) == y)).sum()
            task.advance(1)
    task.close()
    if n == 0:
        return {"sa": float("nan"), "ra": None if pgd is None else float("nan"), "n": 0}
    sa = 100.0 * correct.item() / n
    ra = None if pgd is None else 100.0 * robust.item() / n
    return {"sa": sa, "ra": ra, "n": n}


def _model_device(model: nn.Module) -> torch.device:
    for param in model.parameters():
        return param.device
    return torch.device("cpu")
