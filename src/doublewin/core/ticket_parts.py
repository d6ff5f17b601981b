"""The parts of a ticket spec (specs.TicketSpec): the methods and what each reads of the spec,
which parameters a ticket prunes (`MaskScope`), and the options of the SynFlow, Gem-Miner and
SuperTickets methods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from doublewin.core.errors import UserError
from doublewin.core.numbers import AT_LEAST_ONE, EPOCHS, NON_NEGATIVE, POSITIVE, STEPS, Range
from doublewin.core.typed import checked

TicketMethod = Literal[
    "imp",
    "omp",
    "random",
    "snip",
    "grasp",
    "synflow",
    "gem-miner",
    "supertickets",
    "search-then-prune",
]
# The methods that train on the source task (ST or AT inside: tickets.imp_regimes).
TRAINING_METHODS = ("imp", "supertickets", "search-then-prune")
# The methods whose tickets bring their own network (architecture and weights, supernets).
NETWORK_METHODS = ("supertickets", "search-then-prune")
# What of a tickets spec each method reads besides the ladder: source data (``data``), the
# training regime whose attack it scores or trains with (``train.regime``), the epochs of
# training (``train.epochs``, IMP's rounds). OMP and random read the weights alone; SynFlow
# scores without data; Gem-Miner trains scores for gem_miner.epochs.
METHOD_READS: dict[str, frozenset[str]] = {
    "imp": frozenset({"data", "train", "train.regime", "train.epochs"}),
    "omp": frozenset(),
    "random": frozenset(),
    "snip": frozenset({"data", "train", "train.regime"}),
    "grasp": frozenset({"data", "train", "train.regime"}),
    "synflow": frozenset(),
    "gem-miner": frozenset({"data", "train", "train.regime"}),
    "supertickets": frozenset({"data", "train", "train.regime", "train.epochs"}),
    "search-then-prune": frozenset({"data", "train", "train.regime", "train.epochs"}),
}


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


@dataclass(frozen=True)
class SuperTicketsSpec:
    """SuperTickets (You et al., ECCV 2022): the architecture searched and the weights pruned in
    one training run of a supernet, ``epochs`` long (with ``train``'s optimizer, schedule and
    regime; ``train.epochs`` stays IMP's round, which search-then-prune's IMP uses). Defaults
    are the authors' classification config (RICE-EIC/SuperTickets ``configs/cls_imagenet_g_0.9.yml``, ``train.py``,
    ``utils/prune.py``); docs/tickets.md gives each field's reason.

    The loss adds ρ(t) · Σ over paths of penalty · Σ|γ|, γ the BatchNorm after the path's
    depthwise convolution and penalty its MACs per hidden channel over their mean (ρ(t): 0 for
    ``rho_free_epochs``, then linear up to ``rho`` at ``rho_warmup_epochs``, per step when
    ``rho_stepwise``). Every ``shrink_interval`` epochs (and after the last) the channels with
    |γ| ≤ ``shrink_threshold`` are removed once they hold ``shrink_min_macs`` MACs (the last
    check removes them whatever they hold); the rebuilt cells' masks are reset to dense
    unless ``reuse_mask``. Every ``prune_interval`` epochs one global magnitude threshold prunes
    min(k × ``prune_step``, target) of the covered weights (k: the prune's number), ignoring
    the previous mask (``regrowth``: a pruned weight with its old value may come back); the
    run ends with a prune to exactly the target, then ``retrain_epochs`` with the mask fixed.
    """

    epochs: int = checked(350, range=EPOCHS)
    rho: float = checked(1.8e-4, range=NON_NEGATIVE)
    rho_free_epochs: float = checked(0.0, range=NON_NEGATIVE)
    rho_warmup_epochs: float = checked(25.0, range=NON_NEGATIVE)
    rho_stepwise: bool = True
    shrink_threshold: float = checked(1e-3, range=NON_NEGATIVE)
    shrink_interval: int = checked(10, range=AT_LEAST_ONE)
    shrink_min_macs: float = checked(1e6, range=NON_NEGATIVE)
    reuse_mask: bool = False
    prune_interval: int = checked(25, range=AT_LEAST_ONE)
    prune_step: float = checked(0.1, range=Range(0.0, 1.0, low_open=True))
    regrowth: bool = True
    retrain_epochs: int = checked(0, range=Range(0, EPOCHS.high))

    def __post_init__(self) -> None:
        if self.rho_warmup_epochs < self.rho_free_epochs:
            raise UserError(
                f"supertickets.rho_warmup_epochs {self.rho_warmup_epochs:g} is before "
                f"rho_free_epochs {self.rho_free_epochs:g}: ρ ramps up between the two; set "
                f"rho_warmup_epochs ≥ {self.rho_free_epochs:g}"
            )
        if not self.regrowth and not self.reuse_mask:
            raise UserError(
                "supertickets.regrowth: false keeps every pruned weight pruned, which the mask "
                "reset on shrinking would undo; set supertickets.reuse_mask: true as well"
            )
