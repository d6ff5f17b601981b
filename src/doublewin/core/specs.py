"""One typed spec per stage: pretrain, tickets, transfer, evaluate.

Every value a stage uses comes from its spec; the spec's content hash (see hashing.py) names
the stage's directory in the run store. Units: ε and step sizes are in [0,1] pixel units
(write ``8/255``); sparsities and data fractions are fractions, not percent.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from doublewin.core.defaults import fitting_defaults
from doublewin.core.eps import one_eps
from doublewin.core.errors import UserError
from doublewin.core.foreign import load_yaml
from doublewin.core.numbers import (
    AT_LEAST_ONE,
    EPOCHS,
    NON_NEGATIVE,
    PIXEL_UNITS,
    POSITIVE,
    RESTARTS,
    ROUNDS,
    SEED,
    STEPS,
    UNIT_CLOSED_OPEN,
    UNIT_OPEN,
    UNIT_OPEN_CLOSED,
    Range,
)
from doublewin.core.results import SPARSITY_DIGITS
from doublewin.core.ticket_parts import (
    NETWORK_METHODS,
    GemMinerSpec,
    MaskScope,
    SuperTicketsSpec,
    SynFlowSpec,
    TicketMethod,
)
from doublewin.core.typed import apply_override, checked, from_dict, parse_overrides

Regime = Literal["std", "fat", "at"]


@dataclass(frozen=True)
class DataSpec:
    """Which images a stage sees and how they are prepared.

    ``name``: a dataset from ``doublewin datasets`` (``folder:/path`` for an ImageFolder tree).
    ``fraction``: share of the training split kept, in (0, 1] (the paper's 1, 0.1, 0.01).
    ``subset``: ``balanced`` keeps a seeded class-balanced subset (every class keeps at least
    one image); ``first`` keeps the first images in file order (the official scripts).
    ``resolution``: side in pixels the model sees; None = the architecture's default.
    ``val_size``: images held out of the training files for validation; None = the dataset's
    official split (CIFAR: last 5,000).
    """

    name: str = "digits"
    fraction: float = checked(1.0, range=UNIT_OPEN_CLOSED)
    subset: Literal["balanced", "first"] = "balanced"
    subset_seed: int = checked(0, range=SEED)
    resolution: int | None = checked(None, range=Range(4, 1024))
    val_size: int | None = checked(None, range=Range(1, None))
    augment: Literal["none", "flip", "crop", "crop-flip", "rrc-flip"] = "crop-flip"
    test_transform: Literal["resize", "resize-center-crop"] = "resize"
    # Share of the validation split kept (class-balanced, seeded with subset_seed); None = all.
    val_fraction: float | None = checked(None, range=UNIT_OPEN_CLOSED)
    # Evaluate on the first ``test_limit`` test images only (RobustBench); None = all. A
    # dataset that renders its images (strokes) draws a test split of this size.
    test_limit: int | None = checked(None, range=Range(1, None))


@dataclass(frozen=True)
class AttackSpec:
    """A PGD (or FGSM, steps=1) threat model in [0,1] pixel space.

    ``eps`` and ``step`` are in pixel units (8/255 ≈ 0.0314). ``bn_mode`` is the BatchNorm mode
    while the attack runs during training: ``train`` as in the official Double-Win code, or
    ``eval`` as in robustness/torchattacks. Evaluation attacks always run in eval mode.
    """

    norm: Literal["linf", "l2"] = "linf"
    # Pixel units: an ε above 1 (e.g. 8 for 8/255) is a unit mistake, refused.
    eps: float = checked(8 / 255, range=PIXEL_UNITS)
    step: float = checked(2 / 255, range=PIXEL_UNITS)
    steps: int = checked(10, range=STEPS)
    random_start: bool = True
    restarts: int = checked(1, range=RESTARTS)
    bn_mode: Literal["train", "eval"] = "train"
    # PGD's loss: ce (the paper's), margin (Carlini-Wagner's) or ce+margin (per example the
    # worst of both, AutoAttack's reading; docs/evaluation.md).
    loss: Literal["ce", "margin", "ce+margin"] = "ce"
    # Test attacks only: a point fooled by any iterate counts as fooled and is attacked no more.
    early_stop: bool = False


def _eval_attack() -> AttackSpec:
    return AttackSpec(steps=20, bn_mode="eval")


@dataclass(frozen=True)
class TrainSpec:
    """The one training engine's settings (pre-training, IMP rounds and transfer alike).

    ``regime``: ``std`` clean training, ``fat`` FGSM with random start (fast adversarial
    training, step = ``fat_alpha`` × ε), ``at`` PGD adversarial training with ``attack``.
    ``milestones`` are epochs where the learning rate is multiplied by ``gamma``.
    ``optimizer``: ``sgd`` (the paper's) or ``adamw`` (betas 0.9, 0.999).
    ``val_attack`` measures validation RA each epoch (to keep the best-RA checkpoint).
    ``min_steps`` (0 = off, the official recipe): when ``epochs`` would take fewer optimizer
    steps than this — a small data fraction — the run is lengthened to the fewest whole epochs
    that reach it, with milestones and warmup stretched by the same factor.
    """

    regime: Regime = "std"
    # sgd: the paper's; adamw: for transformers trained from scratch (momentum unused);
    # rmsprop: SuperTickets' (α 0.9, ε 1e-3, train/schedules.py).
    optimizer: Literal["sgd", "adamw", "rmsprop"] = "sgd"
    epochs: int = checked(10, range=EPOCHS)
    batch_size: int = checked(128, range=AT_LEAST_ONE)
    lr: float = checked(0.1, range=POSITIVE)
    momentum: float = checked(0.9, range=Range(0.0, 1.0, high_open=True))
    nesterov: bool = False
    weight_decay: float = checked(5e-4, range=NON_NEGATIVE)
    schedule: Literal["multistep", "cosine", "cyclic", "constant", "exponential"] = "multistep"
    milestones: tuple[int, ...] = checked((), range=Range(0, None))
    gamma: float = checked(0.1, range=POSITIVE)
    # exponential: × gamma after every decay_epochs epochs (SuperTickets: 0.97 per 2.4 epochs).
    decay_epochs: float = checked(1.0, range=POSITIVE)
    warmup_epochs: float = checked(0.0, range=NON_NEGATIVE)
    attack: AttackSpec = field(default_factory=AttackSpec)
    fat_alpha: float = checked(1.25, range=POSITIVE)
    overfit_guard: bool = True
    val_attack: AttackSpec = field(default_factory=_eval_attack)
    val_every: int = checked(1, range=AT_LEAST_ONE)
    min_steps: int = checked(0, range=Range(0, None))
    # auto = bf16 autocast on CUDA, fp32 elsewhere (official: fp32); test numbers are fp32.
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    # Best checkpoints come from epochs >= this one (1-based); the official AT script: 46.
    select_from_epoch: int = checked(1, range=AT_LEAST_ONE)
    # Validation RA with val_attack; false = SA only, as the official ST script.
    val_ra: bool = True
    # Label smoothing of the cross-entropy (0: none, the paper's; SuperTickets' config: 0.1).
    label_smoothing: float = checked(0.0, range=Range(0.0, 1.0, high_open=True))

    def __post_init__(self) -> None:
        if self.select_from_epoch > self.epochs:
            raise UserError(
                f"train.select_from_epoch {self.select_from_epoch} is after the last epoch "
                f"({self.epochs}); set it to at most {self.epochs}"
            )
        _check_milestones(self)
        if self.attack.early_stop:
            raise UserError(
                "train.attack.early_stop is for test and validation attacks only (a training "
                "step must see the attack's last iterate); remove it from train.attack"
            )
        if self.regime == "std":
            return
        if self.attack.eps <= 0:
            raise UserError(f"attack.eps must be > 0 for regime {self.regime}; set e.g. 8/255")


def _check_milestones(spec: TrainSpec) -> None:
    """Milestones that would change nothing are refused: under another schedule, or at or
    after the last epoch (the rate is multiplied from that epoch on); and they go in order."""
    shown = list(spec.milestones)
    if shown and spec.schedule != "multistep":
        raise UserError(
            f"train.milestones {shown} apply to schedule: multistep only; with schedule: "
            f"{spec.schedule} they would do nothing: remove them, or use multistep"
        )
    late = [m for m in spec.milestones if m >= spec.epochs]
    if late:
        raise UserError(
            f"train.milestones: {late[0]} is not before the last epoch of {spec.epochs}, so "
            f"the learning rate would never change there; use milestones below {spec.epochs}"
        )
    if shown != sorted(shown):
        raise UserError(f"train.milestones {shown}: write them in order, {sorted(shown)}")


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
    eval_attack: AttackSpec = field(default_factory=_eval_attack)
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
        if self.pattern != "unstructured" and self.method in (
            "synflow",
            "gem-miner",
            *NETWORK_METHODS,
        ):
            raise UserError(
                f"tickets.pattern: {self.pattern} is not available for {self.method}, which "
                "prunes weight by weight (a score, a trained mask or a magnitude schedule); use "
                "imp, omp, random, snip or grasp for channel and N:M tickets"
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
    eval_attack: AttackSpec = field(default_factory=_eval_attack)
    seed: int = checked(0, range=SEED)
    # The model's built-in normalization during transfer: the downstream dataset's mean/std
    # (the official recipe) or the one θp was pre-trained with.
    normalization: Literal["downstream", "pretrained"] = "downstream"
    # Fine-tuned weights kept: none (metrics only: all the verdict and report read), the
    # best-val-SA and/or best-val-RA checkpoints.
    save_models: Literal["none", "best_sa", "best_ra", "both"] = "none"

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
    attack: AttackSpec = field(default_factory=_eval_attack)
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
    (train/sharpness.py): the mean loss increase within ``sharpness_radius`` on a
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


def load_spec(
    stage: str, source: str | Path | Mapping[str, Any] | None = None, overrides: Iterable[str] = ()
) -> Any:
    """The typed spec of ``stage`` from a YAML file or mapping, then ``key=value`` overrides."""
    if stage not in STAGES:
        raise UserError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    if source is None:
        data: dict[str, Any] = {}
    elif isinstance(source, Mapping):
        data = copy.deepcopy(dict(source))
    else:
        data = load_yaml(source, what=f"a {stage} spec YAML (--config)")
    for key, value in parse_overrides(overrides):
        apply_override(data, key, value)
    return from_dict(STAGES[stage], fitting_defaults(stage, one_eps(stage, data)), path="")
