"""Cost of a plan before it runs, for ``doublewin run --dry-run``.

A job's cost is counted in image passes: one forward and backward pass of one image through
the model at the job's resolution (an attack step costs about one pass as well: it needs the
input gradient). Seconds follow from the pass rate of the model measured on this machine's
device in a short micro-benchmark, so the estimate is for the hardware at hand. Dataset sizes
come from the registry, so a plan is costed with no data files present.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from doublewin.core.specs import AttackSpec, TrainSpec
from doublewin.core.ticket_parts import NETWORK_METHODS
from doublewin.data import eval_batch_size
from doublewin.experiments.estimate.passes import (
    AUTOATTACK_FORWARDS,
    AUTOATTACK_GRADS,
    EARLY_STOP_SHARE,
    data_sizes,
    job_passes,
    split_sizes,
)
from doublewin.experiments.estimate.rates import Shape, rates, training_step
from doublewin.experiments.plan.grid import Job
from doublewin.models import arch_info
from doublewin.stages.landscape import SHARPNESS_GRID, loss_attack
from doublewin.tickets.ladder import ticket_ladder
from doublewin.tickets.supertickets import source_trainings
from doublewin.train import robust_loss
from doublewin.train.schedules import stretched


def job_resolution(job: Job, default_arch: str) -> tuple[str, int]:
    spec = job.spec.transfer if job.stage == "landscape" else job.spec
    arch = getattr(spec, "arch", default_arch)
    resolution = spec.data.resolution if hasattr(spec, "data") else None
    return arch, int(resolution or arch_info(arch).input_size)


# Forward+backward images per second on one GPU, from published measurements (no GPU rate has
# been measured with doublewin yet; docs/benchmarks.md): the dry run's "one GPU" line.
# resnet50 at 224 px: about 2,600 img/s on an A100 with AMP and channels_last (timm's
# benchmark.py, huggingface/pytorch-image-models issue 1491). Another resolution scales with
# the pixel count, at most GPU_SMALL_INPUT_GAIN times (small inputs are launch-bound); an
# architecture without an entry gets no GPU estimate.
GPU_REFERENCE_RATES = {"resnet50": (224, 2600.0)}
GPU_REFERENCE_DEVICE = "one A100 (published resnet50 rate, AMP)"
GPU_SMALL_INPUT_GAIN = 4.0


def gpu_rate(arch: str, resolution: int) -> float | None:
    """The reference GPU pass rate of ``arch`` at ``resolution`` (None: none known)."""
    if arch not in GPU_REFERENCE_RATES:
        return None
    size, rate = GPU_REFERENCE_RATES[arch]
    return rate * min(GPU_SMALL_INPUT_GAIN, (size / resolution) ** 2)


def gpu_seconds(jobs: Iterable[Job], default_arch: str) -> float | None:
    """Seconds of ``jobs`` on one GPU at the reference rates; None when a job's architecture
    has no reference rate."""
    seconds = 0.0
    for job in jobs:
        n = job_passes(job)
        if n <= 0:
            continue
        rate = gpu_rate(*job_resolution(job, default_arch))
        if rate is None:
            return None
        seconds += n / rate
    return seconds


# --- time: the batches a job runs, at the rates measured for its shape (rates.py) ---------------

# Per job and per IMP round (seconds): what is neither training nor evaluation (reading the
# inputs, writing the outputs; a round's pruning, its ticket file and its training's set-up).
# Measured on the demo's jobs against this model: a random-ticket job 0.10 s, an IMP round
# 0.47 s beyond its estimated training (the quick demo's rounds 0.2 s in all).
JOB_OVERHEAD_S = 0.1
IMP_ROUND_OVERHEAD_S = 0.3


@dataclass
class Work:
    """What one job runs. ``batches``, per (arch, resolution, batch): [bare training steps,
    input-gradient passes, no-grad forwards, attack steps on a shrunken batch (each costs at
    least the floor of a step)]; ``training``, per (arch, resolution, batch, regime, attack
    steps): optimizer steps of the training engine."""

    batches: dict[tuple[str, int, int], list[float]]
    training: dict[tuple[str, int, int, str, int], float] = field(default_factory=dict)

    def add(
        self, shape: tuple[str, int, int], steps=0.0, grads=0.0, forwards=0.0, floors=0.0
    ) -> None:
        row = self.batches.setdefault(shape, [0.0, 0.0, 0.0, 0.0])
        row[0] += steps
        row[1] += grads
        row[2] += forwards
        row[3] += floors

    def add_times(self, other: Work, times: int) -> None:
        """``other``'s work, ``times`` over."""
        for shape, row in other.batches.items():
            self.add(shape, *(times * v for v in row))
        for key, steps in other.training.items():
            self.training[key] = self.training.get(key, 0.0) + times * steps


def _evaluations(work: Work, shape, n: int, attack: AttackSpec | None, regime: str) -> None:
    """SA (and RA under ``attack``) of ``n`` images in batches of ``shape``'s size (a split
    smaller than the batch is one batch of its own size: ``full`` counts batch-equivalents)."""
    full, count = n / shape[2], math.ceil(n / shape[2])
    work.add(shape, forwards=full * (2 if attack else 1))
    if attack is None:
        return
    steps = attack.steps * attack.restarts
    if not attack.early_stop:
        work.add(shape, grads=steps * full)
        return
    share = EARLY_STOP_SHARE.get(regime, 1.0)
    # A step on a share s of the batch costs about s of a full one, and never less than the
    # floor: s × full + (1 − s) × floor. ce+margin: the margin attack runs again on the
    # examples the first left standing, about the same share of them (s² of the batch).
    for phase in (share, share * share) if attack.loss == "ce+margin" else (share,):
        work.add(shape, grads=steps * full * phase, floors=steps * count * (1 - phase))


def _training(work: Work, arch: str, res: int, train: TrainSpec, n_train: int, n_val: int) -> None:
    steps_per_epoch = max(1, math.ceil(n_train / train.batch_size))
    train = stretched(train, steps_per_epoch)
    steps = train.epochs * steps_per_epoch
    attack_steps = train.attack.steps * train.attack.restarts if train.regime == "at" else 0
    key = (arch, res, train.batch_size, train.regime, attack_steps)
    work.training[key] = work.training.get(key, 0.0) + steps
    validations = validation_count(train)
    eval_shape = (arch, res, eval_batch_size(train.batch_size, res))
    once = Work({})
    _evaluations(once, eval_shape, n_val, train.val_attack if train.val_ra else None, train.regime)
    work.add_times(once, validations)


def validation_count(train: TrainSpec) -> int:
    """The epochs that validate: every ``val_every``-th from ``select_from_epoch`` on, and the
    last (counted, not enumerated: an absurd epoch count costs nothing to estimate)."""
    first, last, every = max(1, train.select_from_epoch), train.epochs, train.val_every
    if first > last:
        return 0
    multiples = last // every - (first - 1) // every
    return multiples + (0 if last % every == 0 else 1)


def job_work(job: Job, default_arch: str) -> Work:
    """What ``job`` computes, in batches (0 for the jobs that cost next to nothing)."""
    work = Work({})
    spec = job.spec
    arch, res = job_resolution(job, default_arch)
    if job.stage == "pretrain" and spec.kind != "control":
        n_train, n_val, _ = data_sizes(spec.data)
        n_val = _kept(n_val, spec.data.val_fraction)
        _training(work, arch, res, spec.train, n_train, n_val)
        eval_shape = (arch, res, eval_batch_size(spec.train.batch_size, res))
        _evaluations(work, eval_shape, n_val, spec.eval_attack, spec.train.regime)
    elif job.stage == "tickets" and spec.method == "imp":
        n_train, n_val, _ = data_sizes(spec.data)
        one_round = Work({})
        _training(one_round, arch, res, spec.train, n_train, _kept(n_val, spec.data.val_fraction))
        work.add_times(one_round, spec.rounds)
    elif job.stage == "tickets" and spec.method in NETWORK_METHODS:
        # Counted at the supernet's rates: the shrinking network is cheaper as it goes.
        n_train, n_val, _ = data_sizes(spec.data)
        for epochs, count in source_trainings(spec):
            one = Work({})
            phase = dataclasses.replace(spec.train, epochs=epochs, select_from_epoch=1)
            _training(one, arch, res, phase, n_train, 0)
            work.add_times(one, count)
        eval_shape = (arch, res, eval_batch_size(spec.train.batch_size, res))
        for _ in ticket_ladder(spec):
            _evaluations(work, eval_shape, _kept(n_val, spec.data.val_fraction), None, "std")
    elif job.stage in ("transfer", "landscape"):
        transfer = spec.transfer if job.stage == "landscape" else spec
        n_train, n_val, n_test = data_sizes(transfer.data)
        # A test_limit cuts the split; strokes draws a test split of that size (registry.py).
        n_test = transfer.data.test_limit or n_test
        if transfer.data.name != "strokes":
            n_test = min(n_test, split_sizes(transfer.data.name)[2])
        _training(work, arch, res, transfer.train, n_train, n_val)
        eval_shape = (arch, res, eval_batch_size(transfer.train.batch_size, res))
        one_checkpoint = not transfer.train.val_ra
        for _ in range(1 if one_checkpoint else 2):
            _evaluations(work, eval_shape, n_test, transfer.eval_attack, transfer.train.regime)
        _evaluations(work, eval_shape, n_test, None, transfer.train.regime)  # SA, last epoch
        if transfer.autoattack:
            points = min(transfer.autoattack, n_test)
            share = EARLY_STOP_SHARE.get(transfer.train.regime, 1.0)
            full = points / eval_shape[2]
            work.add(
                eval_shape,
                grads=full * share * AUTOATTACK_GRADS,
                forwards=full * share * AUTOATTACK_FORWARDS,
            )
        if job.stage == "landscape":
            images = min(spec.images, n_train)
            points = spec.grid**2 + SHARPNESS_GRID**2
            _evaluations(
                work, eval_shape, images * points, loss_attack(spec), transfer.train.regime
            )
    elif job.stage == "tickets" and spec.score_search is not None:
        # A search step costs about an AT step with the loss's attack steps (the engine's own
        # rate, probed); one search per rung.
        search = spec.score_search
        n_train, _, _ = data_sizes(spec.data)
        steps = search.epochs * math.ceil(n_train / spec.train.batch_size)
        extra = robust_loss.attack_passes(search)
        key = (arch, res, spec.train.batch_size, "at" if extra else "std", extra)
        work.training[key] = work.training.get(key, 0.0) + steps * len(ticket_ladder(spec))
    elif job.stage == "tickets" and spec.method in ("snip", "grasp", "gem-miner"):
        n_train, _, _ = data_sizes(spec.data)
        shape = (arch, res, spec.train.batch_size)
        if spec.method == "gem-miner":
            steps = spec.gem_miner.epochs * math.ceil(n_train / spec.train.batch_size)
            work.add(shape, steps=steps * len(ticket_ladder(spec)))
        else:
            work.add(shape, steps=spec.score_batches * (3 if spec.method == "grasp" else 1))
    return work


def _kept(n: int, share: float | None) -> int:
    return n if share is None else max(1, round(n * share))


def job_seconds(job: Job, default_arch: str, device: str, threads: int) -> float:
    """Estimated wall seconds of ``job`` run with ``threads`` CPU threads on ``device``."""
    seconds = JOB_OVERHEAD_S if job.stage != "pretrain" or job.spec.kind != "control" else 0.0
    if job.stage == "tickets" and job.spec.method == "imp":
        seconds += IMP_ROUND_OVERHEAD_S * job.spec.rounds
    if job.stage == "tickets" and job.spec.method in NETWORK_METHODS:
        # Each search phase and IMP round sets up the engine and saves its state, as a round.
        st = job.spec.supertickets
        shortest = min(st.shrink_interval, st.prune_interval)
        phases = sum(count * math.ceil(e / shortest) for e, count in source_trainings(job.spec))
        seconds += IMP_ROUND_OVERHEAD_S * phases
    work = job_work(job, default_arch)
    for (arch, res, batch), (steps, grads, forwards, floors) in work.batches.items():
        r = rates(Shape(arch, res, batch, threads, device))
        seconds += steps * r.step + grads * r.grad + forwards * r.forward + floors * r.floor
    for (arch, res, batch, regime, attack_steps), steps in work.training.items():
        seconds += steps * training_step(
            Shape(arch, res, batch, threads, device), regime, attack_steps
        )
    return seconds


# Per run: starting the worker processes, the waits between stages the schedule does not see,
# and writing results.csv and the report. Measured as wall time minus the jobs' own time
# divided by the workers: 9.4 s (the quick demo), 12 s (the demo), 2 workers, AMD EPYC.
RUN_OVERHEAD_S = 10.0
