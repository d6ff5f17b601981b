"""One typed spec per stage: pretrain, tickets, transfer, evaluate.

Every value a stage uses comes from its spec; the spec's content hash (see hashing.py) names
the stage's directory in the run store. Units: ε and step sizes are in [0,1] pixel units
(write ``8/255``); sparsities and data fractions are fractions, not percent.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from doublewin.core.errors import UserError
from doublewin.core.numbers import (
    AT_LEAST_ONE,
    POSITIVE,
    ROUNDS,
    SEED,
    STEPS,
    UNIT_CLOSED_OPEN,
    UNIT_OPEN,
    Range,
)
from doublewin.core.results import SPARSITY_DIGITS
from doublewin.core.spec_parts import (
    AttackSpec,
    DataSpec,
    TrainSpec,
    default_eval_attack,
)
from doublewin.core.ticket_parts import (
    METHOD_PATTERNS,
    OWN_OPTIONS,
    GemMinerSpec,
    HarpSpec,
    HydraSpec,
    MaskScope,
    ScoreSearchSpec,
    SuperTicketsSpec,
    SynFlowSpec,
    TicketMethod,
)
from doublewin.core.typed import checked


@dataclass(frozen=True)
class PretrainSpec:
    """Train θp from scratch on a source dataset — or, with ``kind: control``, do not: the
    no-pre-training control is ``arch`` at its initialization seeded by ``seed``, with the
    head and input statistics of ``data``'s dataset, and no training (``train`` and
    ``eval_attack`` are ignored and left at their defaults)."""

    arch: str = "resnet8"
    data: DataSpec = field(default_factory=lambda: DataSpec(name="shapes"))
    train: TrainSpec = field(default_factory=TrainSpec)
    seed: int = checked(0, range=SEED)
    # Source SA/RA recorded in the weights' metadata are measured with this attack.
    eval_attack: AttackSpec = field(default_factory=default_eval_attack)
    kind: Literal["trained", "control"] = "trained"


@dataclass(frozen=True)
class TicketSpec:
    """Draw masks from the pre-trained weights θp (referenced by content hash).

    ``sparsities``: the ladder of target sparsities (fractions pruned, in [0, 1)); empty = the
    IMP ladder 1 − (1 − prune_rate)^k for k = 1 … rounds.
    ``rewind_to``: ``pretrained`` (θp, the paper) or ``step`` (θ after ``rewind_steps`` steps).
    ``order``: ``train-first`` trains, prunes, rewinds; ``official`` prunes θp by magnitude once
    before the first training round, as the official script does.
    ``score_batches``: batches SNIP and GraSP score on; ``grasp_temperature`` divides the
    logits in GraSP (200 in Wang et al.); ``synflow``, ``gem_miner`` and ``supertickets`` hold
    those methods' options (ticket_parts.py). ``supertickets`` and ``search-then-prune`` draw
    from a supernet each rung's network (architecture and weights) with its mask, at the rung's
    sparsity of that network's weights.
    """

    weights: str = ""
    method: TicketMethod = "imp"
    sparsities: tuple[float, ...] = checked((), range=UNIT_CLOSED_OPEN)
    prune_rate: float = checked(0.2, range=UNIT_OPEN)
    rounds: int = checked(10, range=ROUNDS)
    scope: MaskScope = field(default_factory=MaskScope)
    data: DataSpec = field(default_factory=lambda: DataSpec(name="shapes"))
    train: TrainSpec = field(default_factory=TrainSpec)
    rewind_to: Literal["pretrained", "step"] = "pretrained"
    rewind_steps: int = checked(0, range=Range(0, None))
    order: Literal["train-first", "official"] = "train-first"
    score_batches: int = checked(1, range=AT_LEAST_ONE)
    seed: int = checked(0, range=SEED)
    grasp_temperature: float = checked(200.0, range=POSITIVE)
    synflow: SynFlowSpec = field(default_factory=SynFlowSpec)
    gem_miner: GemMinerSpec = field(default_factory=GemMinerSpec)
    hydra: HydraSpec = field(default_factory=HydraSpec)
    harp: HarpSpec = field(default_factory=HarpSpec)
    supertickets: SuperTicketsSpec = field(default_factory=SuperTicketsSpec)
    # search-then-prune: the SuperTickets (a tickets store entry or folder) whose networks'
    # MACs each rung is shrunk to before IMP prunes it (set by the experiment grid).
    macs_of: str = ""
    # The pattern (docs/tickets.md): unstructured weights (the paper), whole output channels
    # (channel_score: their filters' norm; channel_ratio: ranked across layers or in each), nm.
    pattern: Literal["unstructured", "channel", "nm"] = "unstructured"
    channel_score: Literal["l1", "l2"] = "l1"
    channel_ratio: Literal["global", "layer"] = "global"
    nm: tuple[int, ...] = checked((2, 4), range=AT_LEAST_ONE, repeats=True)
    # What a channel ticket's sparsity counts (docs/tickets.md): channels of the groups,
    # parameters or FLOPs of the whole network; auto = flops for HARP (the authors'), channels
    # otherwise. channel_round: every group keeps a multiple of this many channels.
    channel_budget: Literal["auto", "channels", "params", "flops"] = "auto"
    channel_round: int = checked(1, range=AT_LEAST_ONE)

    def own_options_only(self) -> TicketSpec:
        """This spec with the options of other methods (``OWN_OPTIONS``) at their defaults."""
        defaults = TicketSpec()
        reset = {
            key: getattr(defaults, key)
            for key, methods in OWN_OPTIONS.items()
            if self.method not in methods
        }
        return dataclasses.replace(self, **reset)

    @property
    def score_search(self) -> ScoreSearchSpec | None:
        """The options of the method's score search (HYDRA, HARP), None for other methods."""
        return {"hydra": self.hydra, "harp": self.harp}.get(self.method)

    @property
    def channel_unit(self) -> str:
        """What the sparsity of a channel ticket counts: channels, params or flops."""
        if self.channel_budget != "auto":
            return self.channel_budget
        return "flops" if self.method == "harp" else "channels"

    def __post_init__(self) -> None:
        if len(self.nm) != 2 or not self.nm[0] < self.nm[1]:
            raise UserError(
                f"tickets.nm: {list(self.nm)} is not N:M with N < M; keep N of every M "
                "weights, e.g. nm: [2, 4]"
            )
        rungs: dict[float, float] = {}
        for target in self.sparsities:
            rung = round(target, SPARSITY_DIGITS)
            if rung in rungs:
                raise UserError(
                    f"tickets.sparsities: {rungs[rung]!r} and {target!r} are one rung at "
                    f"{SPARSITY_DIGITS} digits (ticket files are named by it); list each once"
                )
            rungs[rung] = target
        allowed = METHOD_PATTERNS.get(self.method)
        if allowed is not None and self.pattern not in allowed:
            also = " (harp draws channel tickets)" if self.pattern == "channel" else ""
            raise UserError(
                f"tickets.pattern: {self.pattern} is not available for {self.method}, which "
                "prunes weight by weight (a score, a trained mask or a magnitude schedule); use "
                f"imp, omp, random, snip or grasp for channel and N:M tickets{also}"
            )
        if self.method == "harp" and self.pattern == "channel" and self.harp.rate_init != "uniform":
            raise UserError(
                f"tickets.harp.rate_init: {self.harp.rate_init} allocates weights, not channels; "
                "a channel ticket's rates start uniform (rate_init: uniform)"
            )


@dataclass(frozen=True)
class TransferSpec:
    """Fine-tune m ⊙ θp on a downstream task with a new head; mask fixed.

    ``weights``/``ticket`` are content hashes; an empty ``ticket`` is the dense baseline.
    ``train.regime`` is ``std`` (the paper's ST) or ``at`` (AT).
    """

    weights: str = ""
    ticket: str = ""
    data: DataSpec = field(default_factory=DataSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    eval_attack: AttackSpec = field(default_factory=default_eval_attack)
    seed: int = checked(0, range=SEED)
    # The model's built-in normalization during transfer: the downstream dataset's mean/std
    # (the official recipe) or the one θp was pre-trained with.
    normalization: Literal["downstream", "pretrained"] = "downstream"
    # Fine-tuned weights kept: none (metrics only: all the verdict and report read), the
    # best-val-SA and/or best-val-RA checkpoints.
    save_models: Literal["none", "best_sa", "best_ra", "both"] = "none"
    # AutoAttack (standard) accuracy of the best-val-RA checkpoint on the first N test points
    # (0 = off): the Adversarial Pruning Benchmark's robustness measure, column aa in results.
    autoattack: int = checked(0, range=Range(0, None))

    def __post_init__(self) -> None:
        if self.train.regime == "fat":
            raise UserError("transfer.train.regime: use std (ST) or at (AT) for transfer")


@dataclass(frozen=True)
class EvaluateSpec:
    """SA and RA of given weights on a dataset's ``split``, with the gradient-masking checks.

    ``attack``: the PGD threat model (run in eval mode). ``autoattack``: standard AutoAttack
    on the first N points (0 = off). ``check_points``: points the ε ladder and the large-ε
    check run on. ``seed`` seeds the attacks' random starts. ``recalibrate_bn``: re-estimate
    BatchNorm statistics on this many training batches first (0 = off): for a ticket evaluated
    without retraining, whose θp statistics no longer fit (train/batchnorm.py).
    """

    weights: str = ""
    data: DataSpec = field(default_factory=DataSpec)
    attack: AttackSpec = field(default_factory=default_eval_attack)
    autoattack: int = checked(0, range=Range(0, None))
    split: Literal["test", "val"] = "test"
    batch_size: int = checked(256, range=AT_LEAST_ONE)
    check_points: int = checked(1000, range=AT_LEAST_ONE)
    seed: int = checked(0, range=SEED)
    recalibrate_bn: int = checked(0, range=Range(0, None))


@dataclass(frozen=True)
class LandscapeSpec:
    """The loss landscape of a transferred ticket (the paper's Figure 6): the transfer run
    ``transfer`` trained again with its trajectory recorded, then the loss on a plane through
    its final weights.

    ``plane``: ``random`` (filter-normalized, Li et al. 2018) or ``pca`` (the trajectory's top
    two principal directions). ``loss``: ``clean`` or ``adversarial`` (``attack``, default the
    transfer's training attack, in eval mode). ``grid``: points per axis (odd, so the centre is
    on the grid); ``radius``: the plane spans [-radius, radius]² (None: 1 for ``random``, 1.25×
    the trajectory's largest coordinate for ``pca``). ``images``: training images the loss is
    averaged over. ``snapshots``: trajectory points kept along the run. The sharpness measures
    (measure/sharpness.py): the mean loss increase within ``sharpness_radius`` on a
    filter-normalized random plane (its own when ``plane`` is pca), and the top Hessian
    eigenvalue after at most ``hessian_iterations`` power iterations (0 = off). ``seed`` seeds
    the random directions and the start vector.
    """

    transfer: TransferSpec = field(default_factory=TransferSpec)
    plane: Literal["random", "pca"] = "random"
    loss: Literal["clean", "adversarial"] = "clean"
    attack: AttackSpec | None = None
    grid: int = checked(21, range=Range(3, 201))
    radius: float | None = checked(None, range=POSITIVE)
    images: int = checked(1000, range=AT_LEAST_ONE)
    batch_size: int = checked(250, range=AT_LEAST_ONE)
    snapshots: int = checked(20, range=Range(3, None))
    sharpness_radius: float = checked(0.5, range=POSITIVE)
    hessian_iterations: int = checked(20, range=Range(0, STEPS.high))
    seed: int = checked(0, range=SEED)

    def __post_init__(self) -> None:
        if self.grid % 2 == 0:
            raise UserError(
                f"landscape.grid: {self.grid} is even; use an odd number (e.g. {self.grid + 1}) "
                "so the centre is a grid point"
            )


STAGES: dict[str, type] = {
    "pretrain": PretrainSpec,
    "tickets": TicketSpec,
    "transfer": TransferSpec,
    "evaluate": EvaluateSpec,
    "landscape": LandscapeSpec,
}
