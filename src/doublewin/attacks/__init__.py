"""Adversarial attacks in [0,1] pixel space: PGD (L∞, L2), FGSM with random start, and an
the inner maximizations of TRADES and MART, and an
adapter to standard AutoAttack (through the optional ``torchattacks`` package).

An attack is a small object called as ``attack(model, x, y) -> x_adv``, built from its spec
with ``PGD.from_spec``.
"""

from doublewin.attacks.autoattack import autoattack
from doublewin.attacks.modes import model_mode
from doublewin.attacks.pgd import PGD, fgsm_rs
from doublewin.attacks.trades import mart_examples, trades_examples

__all__ = ["PGD", "autoattack", "fgsm_rs", "mart_examples", "model_mode", "trades_examples"]
