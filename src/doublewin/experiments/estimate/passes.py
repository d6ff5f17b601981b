"""Image passes of a job: one forward and backward pass of one image, an attack step costing
about one. The unit the dry run's work column, results.csv's ``passes`` and the cost model's
rates (cost.py) count in."""

from __future__ import annotations

import dataclasses
import math

from doublewin.core.specs import AttackSpec, TrainSpec
from doublewin.core.ticket_parts import NETWORK_METHODS
from doublewin.data import dataset_info
from doublewin.experiments.plan.grid import Job
from doublewin.stages.landscape import SHARPNESS_GRID, loss_attack
from doublewin.tickets.ladder import ticket_ladder
from doublewin.tickets.supertickets import source_trainings
from doublewin.train import robust_loss
from doublewin.train.schedules import stretched

# With early stop, the share of attack passes a test attack still runs (examples fooled drop
# out): read from the demo's accuracies (docs/benchmarks.md, "Cost estimates"), by the regime
# the evaluated model was trained with; without early stop every step runs.
EARLY_STOP_SHARE = {"std": 0.2, "fat": 0.8, "at": 0.8}

EVAL_FORWARD_SHARE = 0.35  # a forward pass without backward costs about a third of a pass
# Standard AutoAttack on a point that stays robust: APGD-CE (100 steps), APGD-T and FAB-T (9
# target classes × 100 steps) are input-gradient passes, Square's 5,000 queries forwards. A
# point an attack fools is not attacked by the next, so a model's share still standing scales
# it (EARLY_STOP_SHARE).
AUTOATTACK_GRADS = 100 + 9 * 100 + 9 * 100
AUTOATTACK_FORWARDS = 5000


def attack_passes(regime: str, attack: AttackSpec) -> int:
    """Passes per training image: the update itself plus the attack's gradient steps."""
    if regime == "std":
        return 1
    if regime == "fat":
        return 2
    return 1 + attack.steps * attack.restarts


def eval_passes(attack: AttackSpec | None) -> float:
    """Passes per evaluated image: a clean forward plus the attack's steps."""
    return EVAL_FORWARD_SHARE + (attack.steps * attack.restarts if attack else 0)


def split_sizes(
    dataset: str, fraction: float = 1.0, val_size: int | None = None
) -> tuple[int, int, int]:
    """(train images after ``fraction``, val images, test images) from the registry; a
    ``val_size`` holds that many out of the training files instead of the default."""
    info = dataset_info(dataset)
    splits = info.splits
    val = splits["val"] if val_size is None else val_size
    files = splits["train"] + splits["val"]
    train = max(info.num_classes, round((files - val) * fraction))
    return train, val, splits["test"]


def data_sizes(data) -> tuple[int, int, int]:
    """`split_sizes` of a `DataSpec`: its dataset, data fraction and validation size."""
    return split_sizes(data.name, data.fraction, data.val_size)


def training_passes(train: TrainSpec, n_train: int, n_val: int) -> float:
    train = stretched(train, math.ceil(n_train / train.batch_size))
    per_epoch = n_train * attack_passes(train.regime, train.attack)
    validations = train.epochs / train.val_every
    return train.epochs * per_epoch + validations * n_val * eval_passes(train.val_attack)


def job_passes(job: Job) -> float:
    """Image passes of one job (0 for the ones that cost next to nothing)."""
    spec = job.spec
    if job.stage == "pretrain":
        if spec.kind == "control":
            return 0.0  # the seeded initialization: nothing is trained
        n_train, n_val, _ = data_sizes(spec.data)
        return training_passes(spec.train, n_train, n_val) + n_val * eval_passes(spec.eval_attack)
    if job.stage == "tickets":
        n_train, n_val, _ = data_sizes(spec.data)
        if spec.method == "imp":
            return spec.rounds * training_passes(spec.train, n_train, n_val)
        if spec.method in NETWORK_METHODS:
            # No validation while searching; the source SA of each rung at the end.
            runs = source_trainings(spec)
            trained = sum(
                count * training_passes(dataclasses.replace(spec.train, epochs=e), n_train, 0)
                for e, count in runs
            )
            return trained + len(ticket_ladder(spec)) * n_val * EVAL_FORWARD_SHARE
        rungs = len(ticket_ladder(spec))  # Gem-Miner, HYDRA and HARP search once per rung
        if spec.method == "gem-miner":
            return rungs * spec.gem_miner.epochs * n_train
        if spec.score_search is not None:
            search = spec.score_search
            return rungs * search.epochs * n_train * (1 + robust_loss.attack_passes(search))
        if spec.method in ("snip", "grasp"):
            return spec.score_batches * spec.train.batch_size * (3 if spec.method == "grasp" else 1)
        if spec.method == "synflow":
            return spec.synflow.iterations
        return 0.0
    if job.stage == "transfer":
        return transfer_passes(spec)
    if job.stage == "landscape":
        return landscape_passes(spec)
    return 0.0


def transfer_passes(spec) -> float:
    n_train, n_val, n_test = data_sizes(spec.data)
    # Test SA/RA at two checkpoints, and clean SA at the last epoch.
    points = min(spec.autoattack, n_test)
    share = EARLY_STOP_SHARE.get(spec.train.regime, 1.0)
    return (
        training_passes(spec.train, n_train, n_val)
        + 2 * n_test * eval_passes(spec.eval_attack)
        + n_test * EVAL_FORWARD_SHARE
        + points * share * (AUTOATTACK_GRADS + EVAL_FORWARD_SHARE * AUTOATTACK_FORWARDS)
    )


def landscape_passes(spec) -> float:
    """The transfer trained again, the loss grid and the sharpness grid (each point a pass over
    the sample, clean or attacked), and the power iterations (a Hessian-vector product costs
    about three passes)."""
    n_train, _, _ = data_sizes(spec.transfer.data)
    images = min(spec.images, n_train)
    attack = loss_attack(spec)
    points = spec.grid**2 + SHARPNESS_GRID**2
    return (
        transfer_passes(spec.transfer)
        + points * images * eval_passes(attack)
        + 3 * spec.hessian_iterations * images
    )
