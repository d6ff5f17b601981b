"""The parts stage specs are built from: the data a stage sees, an attack, and the one training
engine's settings (specs.py builds every stage's spec of them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from doublewin.core.errors import UserError
from doublewin.core.numbers import (
    AT_LEAST_ONE,
    EPOCHS,
    NON_NEGATIVE,
    PIXEL_UNITS,
    POSITIVE,
    RESTARTS,
    SEED,
    STEPS,
    UNIT_OPEN_CLOSED,
    Range,
)
from doublewin.core.typed import checked

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


def default_eval_attack() -> AttackSpec:
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
    val_attack: AttackSpec = field(default_factory=default_eval_attack)
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
