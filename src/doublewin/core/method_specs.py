"""The options of the ticket methods that have their own: SynFlow, Gem-Miner, HYDRA, HARP.

docs/tickets.md gives each field's default with its source and reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from doublewin.core.errors import UserError
from doublewin.core.spec_parts import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, AttackSpec, Range
from doublewin.core.typed import checked


@dataclass(frozen=True)
class SynFlowSpec:
    """SynFlow options. ``iterations``: score-and-prune rounds with the exponential schedule
    (100 in Tanaka et al.). ``bn``: how pre-trained BatchNorm enters the positive linearised
    network: ``fold`` = the per-channel gain |γ|/√(σ²+ε) of the running statistics, no shift;
    ``identity`` = ignored (see doublewin/tickets/synflow.py)."""

    iterations: int = checked(100, range=AT_LEAST_ONE)
    bn: Literal["fold", "identity"] = "fold"


# Gem-Miner defaults, measured on the embedded tasks (docs/tickets.md, "Gem-Miner defaults").
GEM_MINER_EPOCHS = 8
GEM_MINER_PERIOD = 1
GEM_MINER_LR = 5.0
GEM_MINER_LAMBDA = 1e-4


@dataclass(frozen=True)
class GemMinerSpec:
    """Gem-Miner options (docs/tickets.md): scores s ∈ [0,1] trained on frozen θp for
    ``epochs`` epochs with SGD (``lr``, ``momentum``, cosine decay), loss = task loss + ``lam``
    × ‖s‖². After every ``period``-th epoch but the last, the lowest-scoring flagged weights
    are flagged out, sized so the target is reached at the last freeze; at least one epoch
    follows it. ``score_init``: ``uniform`` in [0,1] (the reference's) or ``ones`` (start from
    the dense θp). ``final``: ``flags`` (the flag set, exactly at the target) or ``gem`` (the
    reference's flag ∧ 1[s > 0.5], at or above it)."""

    epochs: int = checked(GEM_MINER_EPOCHS, range=Range(2, None))
    period: int = checked(GEM_MINER_PERIOD, range=AT_LEAST_ONE)
    lr: float = checked(GEM_MINER_LR, range=POSITIVE)
    momentum: float = checked(0.9, range=Range(0.0, 1.0, high_open=True))
    lam: float = checked(GEM_MINER_LAMBDA, range=NON_NEGATIVE)
    score_init: Literal["uniform", "ones"] = "uniform"
    final: Literal["flags", "gem"] = "flags"

    def __post_init__(self) -> None:
        if self.epochs <= self.period:
            raise UserError(
                f"gem_miner.epochs {self.epochs} leaves no freeze with period {self.period}: "
                f"use epochs > period (e.g. epochs: {self.period + 1})"
            )


# The robust losses a score search can train under: clean cross-entropy (std), PGD-AT (at),
# TRADES and MART, each as the authors' utils/adv.py computes it (train/robust_loss.py).
ScoreLoss = Literal["std", "at", "trades", "mart"]
# β of TRADES (Zhang et al. 2019, and HYDRA's default) and of MART (Wang et al. 2020), as
# HARP's configuration sets them when ``beta`` is not given.
DEFAULT_BETA = {"trades": 6.0, "mart": 5.0}


def _score_attack() -> AttackSpec:
    # 10 steps of 2/255 within 8/255, crafted with the model in eval mode: both authors'
    # utils/adv.py call model.eval() before the attack and model.train() after it.
    return AttackSpec(bn_mode="eval")


@dataclass(frozen=True)
class ScoreSearchSpec:
    """A score search on frozen θp (HYDRA, HARP): one score per weight, the mask the top-k of
    |score| within each layer, the scores trained for ``epochs`` epochs with SGD (``lr``,
    ``momentum``, ``weight_decay`` on the scores, cosine decay per epoch) under ``loss`` with
    ``attack`` (its ε follows ``train.attack.eps``) and ``beta`` (None: 6 for TRADES, 5 for
    MART). ``train_bn``: BatchNorm's affine parameters train with the scores (the authors'
    ``freeze_bn: false``; thrown away with the copy). ``score_init``: ``weights``, the
    authors' √(6/fan_in)·W/max|W| per layer, so the starting mask is layer-wise magnitude
    pruning; ``kaiming``, their Kaiming-normal alternative, from the seed."""

    epochs: int = checked(20, range=AT_LEAST_ONE)
    lr: float = checked(0.1, range=POSITIVE)
    momentum: float = checked(0.9, range=Range(0.0, 1.0, high_open=True))
    weight_decay: float = checked(1e-4, range=NON_NEGATIVE)
    loss: ScoreLoss = "trades"
    beta: float | None = checked(None, range=NON_NEGATIVE)
    attack: AttackSpec = field(default_factory=_score_attack)
    train_bn: bool = True
    score_init: Literal["weights", "kaiming"] = "weights"

    def __post_init__(self) -> None:
        if self.loss in ("trades", "mart") and self.attack.norm != "linf":
            raise UserError(
                f"the {self.loss} loss attacks in L∞ (the authors' code); set attack.norm: linf, "
                "or use loss: at for an L2 attack"
            )

    @property
    def robust_beta(self) -> float:
        """β of the TRADES or MART term (unused by std and at)."""
        return self.beta if self.beta is not None else DEFAULT_BETA.get(self.loss, 0.0)


@dataclass(frozen=True)
class HydraSpec(ScoreSearchSpec):
    """HYDRA (Sehwag et al. 2020; inspire-group/hydra): the score search at one keep rate for
    every layer. Defaults are the authors' CIFAR-10 prune stage: 20 epochs, lr 0.1, weight
    decay 1e-4, TRADES at β = 6 (docs/tickets.md)."""


@dataclass(frozen=True)
class HarpSpec(ScoreSearchSpec):
    """HARP (Zhao & Wressnegger 2023; intellisec/harp): the score search with a learned keep
    rate per layer, k = floor + (1 − floor)·σ(s_k) with floor = ``rate_floor`` × the target
    density, trained jointly with the weight scores under the budget penalty
    max(kept/target − 1, 0) weighted ``gamma`` × (epoch + 1) (``gamma_dynamic``; frozen at the
    first epoch that ends within the budget). ``rate_init``: the starting keep rates,
    ``uniform`` (the target everywhere), ``erk`` or ``lamp``. Defaults are the authors'
    CIFAR-10 prune stage: 20 epochs, lr 0.1, weight decay 5e-4, PGD-AT, γ = 0.01."""

    weight_decay: float = checked(5e-4, range=NON_NEGATIVE)
    loss: ScoreLoss = "at"
    rate_init: Literal["uniform", "erk", "lamp"] = "uniform"
    rate_floor: float = checked(0.1, range=Range(0.0, 1.0, high_open=True))
    gamma: float = checked(0.01, range=NON_NEGATIVE)
    gamma_dynamic: bool = True
