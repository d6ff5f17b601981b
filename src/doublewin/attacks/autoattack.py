"""Standard AutoAttack (APGD-CE, APGD-T, FAB-T, Square) through ``torchattacks``.

``torchattacks`` is an optional dependency, imported only when AutoAttack is asked for.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from doublewin.attacks.modes import model_mode
from doublewin.attacks.pgd import Norm
from doublewin.core.errors import UserError


def require_torchattacks() -> Any:
    """The torchattacks module, or one UserError saying how to install it: checked before
    any compute by whatever will run AutoAttack."""
    try:
        # deferred: torchattacks is optional (pip install doublewin[robust])
        import torchattacks
    except ImportError:
        raise UserError(
            "AutoAttack needs the torchattacks package; run "
            "`pip install torchattacks` (or drop --autoattack)"
        ) from None
    return torchattacks


def autoattack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    num_classes: int,
    norm: Norm = "linf",
    seed: int = 0,
    batch_size: int = 256,
) -> torch.Tensor:
    """Adversarial examples of standard AutoAttack for ``x`` (pixels in [0,1]) and labels ``y``.

    The model runs in eval mode (restored afterwards); ``num_classes`` sizes APGD-T's and
    FAB-T's target classes. Points are processed in chunks of ``batch_size``.
    """
    torchattacks = require_torchattacks()
    if num_classes < 2:
        raise UserError("AutoAttack needs at least 2 classes")
    attack = torchattacks.AutoAttack(
        model,
        norm="Linf" if norm == "linf" else "L2",
        eps=eps,
        version="standard",
        n_classes=num_classes,
        seed=seed,
    )
    out = []
    with model_mode(model, "eval"):
        for start in range(0, x.shape[0], batch_size):
            xs, ys = x[start : start + batch_size], y[start : start + batch_size]
            out.append(attack(xs, ys).detach())
    return torch.cat(out) if out else x.clone()
