"""The parts of a ticket spec (specs.TicketSpec): the methods and what each reads of the spec,
which parameters a ticket prunes (`MaskScope`), and the options of the SynFlow, Gem-Miner,
SuperTickets, HYDRA and HARP methods."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from doublewin.core.errors import UserError
from doublewin.core.numbers import AT_LEAST_ONE, EPOCHS, NON_NEGATIVE, POSITIVE, STEPS, Range
from doublewin.core.spec_parts import AttackSpec
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
    "hydra",
    "harp",
    "lwm",
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
    # HYDRA and HARP train their scores under their own loss, epochs and attack (hydra.*,
    # harp.*); layer-wise magnitude reads the weights alone.
    "hydra": frozenset({"data"}),
    "harp": frozenset({"data"}),
    "lwm": frozenset(),
}
# The patterns a method can draw (every other method: all three). A trained per-weight mask,
# an iterative per-weight score or a magnitude schedule prunes weight by weight; HARP also
# learns channel rates.
METHOD_PATTERNS = {
    "synflow": ("unstructured",),
    "gem-miner": ("unstructured",),
    "hydra": ("unstructured",),
    "lwm": ("unstructured",),
    "harp": ("unstructured", "channel"),
    "supertickets": ("unstructured",),
    "search-then-prune": ("unstructured",),
}
# The option fields only some methods read (field → the methods): another method's spec keeps
# them at their defaults (an experiment's shared tickets section sets them for every method),
# so its hash and its ticket files are what they were before the options existed.
OWN_OPTIONS = {
    "hydra": ("hydra",),
    "harp": ("harp",),
    "supertickets": ("supertickets", "search-then-prune"),
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
