"""The attacks inside the TRADES and MART losses, as the robust-pruning authors craft them.

Both start from x + 0.001·N(0, 1) (TRADES' reference code, copied by HYDRA's and HARP's
utils/adv.py), take ``steps`` signed-gradient steps of ``step`` and project onto the L∞ ball of
radius ``eps`` and onto [0, 1] (the start too, as torchattacks' ``TPGD`` does). TRADES ascends KL(f(x') ‖ f(x)) against the clean prediction
(torchattacks' ``TPGD``); MART ascends the cross-entropy. Gradients are taken with respect to
the input only. ``bn_mode`` is the model's mode while attacking (the authors': eval).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from doublewin.attacks.modes import model_mode
from doublewin.core.errors import UserError
from doublewin.core.specs import AttackSpec

START_SCALE = 0.001  # the reference's random start: 0.001 × a standard normal draw


def trades_examples(model: nn.Module, x: torch.Tensor, spec: AttackSpec) -> torch.Tensor:
    """TRADES' inner maximization: x' that ascends KL(f(x') ‖ f(x)) (summed over the batch)."""
    _check(spec)
    x = x.detach()
    with model_mode(model, spec.bn_mode), torch.no_grad():
        clean = F.softmax(model(x).float(), dim=1)

    def objective(logits: torch.Tensor) -> torch.Tensor:
        return F.kl_div(F.log_softmax(logits, dim=1), clean, reduction="sum")

    return _ascend(model, x, spec, objective)


def mart_examples(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: AttackSpec
) -> torch.Tensor:
    """MART's inner maximization: cross-entropy PGD from the small Gaussian start."""
    _check(spec)

    def objective(logits: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y)

    return _ascend(model, x.detach(), spec, objective)


def _ascend(model: nn.Module, x: torch.Tensor, spec: AttackSpec, objective) -> torch.Tensor:
    x_adv = x.clone()
    if spec.random_start:
        x_adv = (x + START_SCALE * torch.randn_like(x)).clamp(0.0, 1.0)
    with model_mode(model, spec.bn_mode), torch.enable_grad():
        for _ in range(spec.steps):
            x_adv = x_adv.detach().requires_grad_(True)
            logits = model(x_adv).float()
            (grad,) = torch.autograd.grad(objective(logits), x_adv)
            with torch.no_grad():
                x_adv = x_adv + spec.step * grad.sign()
                x_adv = torch.min(torch.max(x_adv, x - spec.eps), x + spec.eps).clamp(0.0, 1.0)
    return x_adv.detach()


def _check(spec: AttackSpec) -> None:
    if spec.norm != "linf":
        raise UserError(
            "the TRADES and MART losses attack in L∞ (the authors' code); set the score "
            "search's attack.norm to linf, or use loss: at for an L2 attack"
        )
