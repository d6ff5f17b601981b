"""The losses a score search trains under (HYDRA, HARP), as the authors' utils/adv.py computes
them: clean cross-entropy (``std``), PGD adversarial training (``at``), TRADES and MART.

Examples are crafted with the attack's ``bn_mode`` (the authors': eval) and the loss is then
computed with the model in train mode. ``beta`` weighs the TRADES or MART term.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from doublewin.attacks import PGD, mart_examples, trades_examples
from doublewin.core.ticket_parts import ScoreSearchSpec

# TRADES and MART run the model on the clean and the adversarial batch in the update (PGD-AT
# on the adversarial one only): one pass more a step than their attack's steps.
EXTRA_FORWARDS = {"std": 0, "at": 0, "trades": 1, "mart": 1}


def robust_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: ScoreSearchSpec):
    """The loss of one batch (x in [0, 1]) under ``spec.loss``, ready for ``backward``."""
    if spec.loss == "std":
        return F.cross_entropy(model(x).float(), y)
    if spec.loss == "at":
        x_adv = PGD.from_spec(spec.attack)(model, x, y)
        return F.cross_entropy(model(x_adv).float(), y)
    if spec.loss == "trades":
        x_adv = trades_examples(model, x, spec.attack)
        logits = model(x).float()
        robust = (
            F.kl_div(
                F.log_softmax(model(x_adv).float(), dim=1),
                F.softmax(logits, dim=1),
                reduction="sum",
            )
            / x.shape[0]
        )
        return F.cross_entropy(logits, y) + spec.robust_beta * robust
    return _mart(model, x, y, spec)


def _mart(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: ScoreSearchSpec):
    x_adv = mart_examples(model, x, y, spec.attack)
    logits, logits_adv = model(x).float(), model(x_adv).float()
    adv_probs = F.softmax(logits_adv, dim=1)
    top2 = torch.argsort(adv_probs, dim=1)[:, -2:]
    # The most probable wrong class, MART's boosted cross-entropy term.
    wrong = torch.where(top2[:, -1] == y, top2[:, -2], top2[:, -1])
    loss_adv = F.cross_entropy(logits_adv, y) + F.nll_loss(
        torch.log(1.0001 - adv_probs + 1e-12), wrong
    )
    nat_probs = F.softmax(logits, dim=1)
    true_probs = nat_probs.gather(1, y[:, None]).squeeze(1)
    kl = F.kl_div(torch.log(adv_probs + 1e-12), nat_probs, reduction="none").sum(1)
    robust = (kl * (1.0000001 - true_probs)).sum() / x.shape[0]
    return loss_adv + spec.robust_beta * robust


def attack_passes(spec: ScoreSearchSpec) -> int:
    """Forward/backward passes of one training step beyond the update's own: the attack's
    steps and the extra clean or adversarial forward."""
    if spec.loss == "std":
        return 0
    return (
        spec.attack.steps * (spec.attack.restarts if spec.loss == "at" else 1)
        + EXTRA_FORWARDS[spec.loss]
    )
