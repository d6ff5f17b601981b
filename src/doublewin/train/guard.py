"""The catastrophic-overfitting guard of fast adversarial training (FGSM-RS).

FGSM training can collapse within an epoch: robust accuracy against PGD drops to about zero
while clean accuracy jumps (Wong et al. 2020). After every epoch the guard measures PGD
accuracy on one fixed held-out batch (the first validation batch) and calls it a collapse when

    best ≥ 10 points  and  (acc < best − 20 points  or  acc < best / 4)

where ``best`` is the highest guard accuracy of the earlier epochs. The first clause ignores
models that were never robust (noise on one batch would trigger it); the two drops catch both
large-scale collapses (say 45 → 5) and small-scale ones (say 14 → 2). On a collapse the engine
restores the weights of the last good epoch and stops.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from doublewin.attacks import PGD, model_mode
from doublewin.core.eps import default_step
from doublewin.core.specs import AttackSpec

MIN_BEST = 10.0
MAX_DROP = 20.0
MIN_RATIO = 0.25
GUARD_STEPS = 10


@dataclass
class OverfitGuard:
    """PGD-10 (the default step, ε/4; random start, eval mode) accuracy on a fixed batch, in
    points."""

    x: torch.Tensor
    y: torch.Tensor
    attack: PGD
    best: float = -1.0

    @classmethod
    def for_attack(cls, spec: AttackSpec, x: torch.Tensor, y: torch.Tensor) -> OverfitGuard:
        pgd = PGD(
            eps=spec.eps,
            step=default_step(spec.eps, GUARD_STEPS),
            steps=GUARD_STEPS,
            norm=spec.norm,
            random_start=True,
            bn_mode="eval",
        )
        return cls(x, y, pgd)

    def accuracy(self, model: nn.Module) -> float:
        with model_mode(model, "eval"):
            x_adv = self.attack(model, self.x, self.y)
            with torch.no_grad():
                correct = (model(x_adv).argmax(1) == self.y).sum().item()
        return 100.0 * correct / max(1, self.y.shape[0])

    def collapsed(self, accuracy: float) -> bool:
        """Whether ``accuracy`` (points) is a collapse from the best so far (see module doc)."""
        if self.best < MIN_BEST:
            return False
        return accuracy < self.best - MAX_DROP or accuracy < self.best * MIN_RATIO
