"""The dry run's estimates: the simulated schedule and the expected cost of the two savers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from doublewin.analysis.verdict import SeedPlan
from doublewin.experiments.estimate.savers import (
    expected_on_demand,
    expected_search,
    expected_search_rungs,
    stopping_seeds,
)
from doublewin.experiments.estimate.schedule import makespan, waves_makespan
from doublewin.experiments.plan import grid
from doublewin.experiments.plan.experiment import load_experiment


@dataclass(frozen=True)
class Spec:
    name: str


def job(name: str, deps: tuple[str, ...] = ()) -> grid.Job:
    return grid.Job("transfer", Spec(name), deps)


def test_makespan_starts_the_costliest_ready_job_first() -> None:
    """Jobs of 10, 5 and 5 s on two workers: the 10 s job first gives 10 s; the two 5 s first
    would give 15 s."""
    jobs = [job("a"), job("b"), job("c")]
    seconds = dict(zip([j.id for j in jobs], [5.0, 5.0, 10.0], strict=True))
    assert makespan(jobs, seconds, workers=2) == pytest.approx(10.0)
    assert makespan(jobs, seconds, workers=1) == pytest.approx(20.0)


def test_makespan_waits_for_dependencies() -> None:
    """B needs A: on two workers A (10 s) then B (5 s) is 15 s, C (3 s) running beside them;
    a dependency outside the plan (already finished) does not hold anything back."""
    a, c = job("a"), job("c", ("finished-elsewhere",))
    b = job("b", (a.id,))
    seconds = {a.id: 10.0, b.id: 5.0, c.id: 3.0}
    assert makespan([a, b, c], seconds, workers=2) == pytest.approx(15.0)
    assert makespan([a, b, c], seconds, workers=8) == pytest.approx(15.0)
    assert waves_makespan([[a, b], [c], []], seconds, workers=2) == pytest.approx(18.0)


def test_seeds_on_demand_stop_early_when_the_gap_is_clear() -> None:
    """Seeds taken lie between the plan's min and max; a small spread against the margin
    decides most cells at the first look, a large one runs most to the max."""
    plan = SeedPlan(min=3, max=10)
    calm = stopping_seeds(plan, spread=0.02, delta=1.0)
    noisy = stopping_seeds(plan, spread=5.0, delta=1.0)
    for taken in (calm, noisy):
        assert taken.min() >= plan.min and taken.max() <= plan.max
    assert np.mean(calm == plan.min) > 0.8
    assert noisy.mean() > calm.mean() + 3


def test_expected_search_rungs_counts_bisection() -> None:
    """One rung: it is judged whatever the extreme, failing when the extreme is 'none' (half
    the time). More rungs: bisection judges fewer than all of them."""
    assert expected_search_rungs(1) == pytest.approx((1.0, 0.5, 0.0))
    judged, failing, _ = expected_search_rungs(7)
    assert 2.0 <= judged < 7.0
    assert 0.0 < failing < judged


def test_an_anchor_at_the_top_is_judged_apart_and_bounds_the_bisection() -> None:
    """The top rung as an anchor: it passes only when the extreme is the top rung (1 case in
    11 on a ten-rung ladder), and bisection then spends fewer rungs below it."""
    judged, failing, passing = expected_search_rungs(10, anchors=(9,))
    assert passing == pytest.approx(1 / 11)
    plain, _, _ = expected_search_rungs(10)
    assert judged < plain
    assert 0.0 < failing < judged


@pytest.fixture(scope="module")
def demo():
    experiment = load_experiment("configs/demo.yaml")  # seeds: auto, the grid at the plan's max
    return experiment, grid.expand(experiment)


def test_savers_expect_fewer_runs_than_the_grid(demo) -> None:
    """Both savers expect fewer transfer runs than the fixed grid, and a noisier spread
    expects more seeds than a calm one."""
    experiment, jobs = demo
    calm = expected_on_demand(jobs, experiment.verdict, experiment.controls, spread=0.1)
    noisy = expected_on_demand(jobs, experiment.verdict, experiment.controls, spread=20.0)
    assert calm.full_grid > 0
    assert calm.expected < noisy.expected <= noisy.full_grid * 1.001
    search = expected_search(jobs)
    assert 0 < search.expected <= search.full_grid


@pytest.mark.parametrize("load, kept", [(0.0, True), (64.0, False)])
def test_speeds_timed_on_a_busy_machine_are_not_kept(monkeypatch, tmp_path, load, kept) -> None:
    """A probe taken while the load average exceeds the cores is used once and not cached
    (a later dry run on an idle machine times it again); on an idle machine it is cached."""
    from doublewin.experiments.estimate import rates

    monkeypatch.setenv("DOUBLEWIN_CACHE", str(tmp_path))
    monkeypatch.setattr(rates.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(rates, "BUSY_PROBES", {})
    rates._cache.cache_clear()
    try:
        measured = rates.rates(rates.Shape("resnet8", 8, 32, 1, "cpu"))
    finally:
        rates._cache.cache_clear()
    assert measured.step > measured.forward > 0
    assert (tmp_path / "rates.json").exists() == kept
    assert bool(rates.BUSY_PROBES) != kept


def test_the_probe_times_small_models_at_their_own_batch() -> None:
    """A resnet8 at 8 px is timed at its batch of 128, not scaled up from a few images."""
    import torch

    from doublewin.experiments.estimate.rates import Shape, _probe_batch
    from doublewin.models import build_model

    shape = Shape("resnet8", 8, 128, 1, "cpu")
    assert _probe_batch(build_model("resnet8", 10), shape, torch.device("cpu")) == 128


def test_a_cache_entry_without_the_floor_is_probed_again(monkeypatch, tmp_path) -> None:
    """Rates cached before the attack-step floor was measured are timed again, not read with a
    floor of nothing."""
    import json

    from doublewin.experiments.estimate import rates

    shape = rates.Shape("resnet8", 8, 32, 1, "cpu")
    old = {"step": 1.0, "grad": 1.0, "forward": 1.0}
    (tmp_path / "rates.json").write_text(json.dumps({rates.machine(): {shape.key: old}}))
    monkeypatch.setenv("DOUBLEWIN_CACHE", str(tmp_path))
    monkeypatch.setattr(rates.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    rates._cache.cache_clear()
    try:
        measured = rates.rates(shape)
    finally:
        rates._cache.cache_clear()
    assert measured.step < 1.0 and 0 < measured.floor < measured.grad
    kept = json.loads((tmp_path / "rates.json").read_text())[rates.machine()][shape.key]
    assert set(kept) == {"step", "grad", "forward", "floor"}


def test_rates_timed_in_the_contiguous_layout_are_probed_again(monkeypatch, tmp_path) -> None:
    """The engine and evaluation run in channels_last on the CPU: an entry cached under the
    key of the contiguous layout (before that change) is not read, and the evaluation passes
    are timed in the layout evaluation uses."""
    import json

    from doublewin.experiments.estimate import rates

    shape = rates.Shape("resnet8", 8, 32, 1, "cpu")
    assert shape.key.endswith("/cl")
    old_key = shape.key.removesuffix("/cl")
    old = {"step": 9.0, "grad": 9.0, "forward": 9.0, "floor": 9.0}
    (tmp_path / "rates.json").write_text(json.dumps({rates.machine(): {old_key: old}}))
    monkeypatch.setenv("DOUBLEWIN_CACHE", str(tmp_path))
    monkeypatch.setattr(rates.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    layouts, models = [], []
    real_timed, real_build = rates._timed, rates.build_model

    def build(*args, **kwargs):
        models.append(real_build(*args, **kwargs))
        return models[-1]

    def timed(work, device):
        layouts.append(models[-1].conv1.weight.is_contiguous())
        return real_timed(work, device)

    monkeypatch.setattr(rates, "build_model", build)
    monkeypatch.setattr(rates, "_timed", timed)
    rates._cache.cache_clear()
    try:
        measured = rates.rates(shape)
    finally:
        rates._cache.cache_clear()
    assert measured.grad < 9.0
    # The training step in the model's own layout, the three evaluation passes in channels_last.
    assert layouts == [True, False, False, False]
    assert models[0].conv1.weight.is_contiguous()  # handed back in the ordinary layout


def test_an_early_stopped_attack_pays_each_steps_floor() -> None:
    """An early-stop test attack costs, per step, the share of the batch still standing and at
    least the floor of a step for the rest; ce+margin runs a second phase on share² of it; a
    split smaller than the batch costs its own size."""
    from doublewin.core.specs import AttackSpec
    from doublewin.experiments.estimate.cost import Work, _evaluations
    from doublewin.experiments.estimate.passes import EARLY_STOP_SHARE

    shape = ("resnet8", 8, 1000)
    plain = AttackSpec(eps=0.1, step=0.025, steps=10, early_stop=False)
    work = Work({})
    _evaluations(work, shape, 500, plain, "std")
    assert work.batches[shape] == pytest.approx([0, 5.0, 1.0, 0])
    s = EARLY_STOP_SHARE["std"]
    for loss, phases in (("ce", (s,)), ("ce+margin", (s, s * s))):
        work = Work({})
        attack = AttackSpec(eps=0.1, step=0.025, steps=10, early_stop=True, loss=loss)
        _evaluations(work, shape, 2000, attack, "std")
        steps, grads, forwards, floors = work.batches[shape]
        assert grads == pytest.approx(sum(10 * 2 * p for p in phases))
        assert floors == pytest.approx(sum(10 * 2 * (1 - p) for p in phases))


def test_small_images_are_evaluated_in_large_batches() -> None:
    """8-px images are evaluated many to a batch (the attack's per-step cost dominates there);
    CIFAR- and ImageNet-size images keep twice the training batch."""
    from doublewin.data import eval_batch_size

    assert eval_batch_size(64, 8) == 2048
    assert eval_batch_size(128, 32) == 256
    assert eval_batch_size(64, 224) == 128


def test_training_is_costed_at_the_engines_own_step(monkeypatch, demo) -> None:
    """A transfer job's training costs its optimizer steps at the training engine's measured
    step for its regime and attack (not the bare passes), plus its test evaluation."""
    from doublewin.experiments.estimate import cost
    from doublewin.experiments.estimate.rates import Rates

    _, jobs = demo
    job = next(
        j
        for j in jobs
        if j.stage == "transfer" and j.labels["regime"] == "at" and float(j.labels["fraction"]) == 1
    )
    seen = []

    def step(shape, regime, attack_steps):
        seen.append((shape.batch, regime, attack_steps))
        return 1.0

    monkeypatch.setattr(cost, "training_step", step)
    monkeypatch.setattr(cost, "rates", lambda shape: Rates(0.0, 0.0, 0.0, 0.0))
    monkeypatch.setattr(cost, "JOB_OVERHEAD_S", 0.0)
    train = job.spec.train
    steps_per_epoch = -(-3000 // train.batch_size)  # strokes: 3,000 training images
    assert seen == [] and cost.job_seconds(job, "resnet8", "cpu", 1) == pytest.approx(
        train.epochs * steps_per_epoch
    )
    assert seen == [(train.batch_size, "at", train.attack.steps)]


def test_the_engine_probe_sees_the_training_attack() -> None:
    """The probed step of adversarial training (PGD-2 inside) costs more than a standard one."""
    from doublewin.experiments.estimate.rates import Shape, _probe_engine

    shape = Shape("resnet8", 8, 32, 1, "cpu")
    assert _probe_engine(shape, "at", 2) > 1.5 * _probe_engine(shape, "std", 0) > 0


def test_a_val_size_is_costed_as_the_split_it_makes() -> None:
    """A spec's val_size holds that many images out of the training files: the estimate
    validates on that many and trains on the rest (chars: 20,000 + 2,000 files)."""
    from doublewin.experiments.estimate.passes import split_sizes

    assert split_sizes("chars") == (20000, 2000, 2000)
    assert split_sizes("chars", 0.1, val_size=200) == (2180, 200, 2000)
