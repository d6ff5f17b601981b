"""The parts of a ticket spec (specs.TicketSpec): which parameters a ticket prunes
(`MaskScope`) and the options of the SynFlow and Gem-Miner methods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from doublewin.core.errors import UserError
from doublewin.core.numbers import AT_LEAST_ONE, EPOCHS, NON_NEGATIVE, POSITIVE, STEPS, Range
from doublewin.core.typed import checked


@dataclass(frozen=True)
class MaskScope:
    """Which parameters a ticket prunes. ``layers``: ``conv`` (the paper): every Conv2d weight,
    the first conv included, plus Linear weights with ``include_linear``; ``transformer``
    (BERT-Tickets, Chen et al. 2020): the attention (query/key/value, output projection) and
    MLP Linear weights, never embeddings, LayerNorm or the head; ``auto`` (default):
    transformer for a model with attention layers, conv otherwise. BatchNorm and biases
    stay dense; ``exclude`` removes layers by glob pattern."""

    include_linear: bool = False
    exclude: tuple[str, ...] = ()
    layers: Literal["auto", "conv", "transformer"] = "auto"


@dataclass(frozen=True)
class SynFlowSpec:
    """SynFlow options. ``iterations``: score-and-prune rounds with the exponential schedule
    (100 in Tanaka et al.). ``bn``: how pre-trained BatchNorm enters the positive linearised
    network: ``fold`` = the per-channel gain |γ|/√(σ²+ε) of the running statistics, no shift;
    ``identity`` = ignored (see doublewin/tickets/synflow.py)."""

    iterations: int = checked(100, range=STEPS)
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

    epochs: int = checked(GEM_MINER_EPOCHS, range=Range(2, EPOCHS.high))
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
