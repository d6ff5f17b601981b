"""The dry run's estimates: the simulated schedule and the expected cost of the two savers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from doublewin.analysis.verdict import SeedPlan
from doublewin.experiments import grid
from doublewin.experiments.experiment import load_experiment
from doublewin.experiments.savers import (
    expected_on_demand,
    expected_search,
    expected_search_rungs,
    stopping_seeds,
)
from doublewin.experiments.schedule import makespan, waves_makespan


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
    assert expected_search_rungs(1) == pytest.approx((1.0, 0.5))
    judged, failing = expected_search_rungs(7)
    assert 2.0 <= judged < 7.0
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
    from doublewin.experiments import rates

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

    from doublewin.experiments.rates import Shape, _probe_batch
    from doublewin.models import build_model

    shape = Shape("resnet8", 8, 128, 1, "cpu")
    assert _probe_batch(build_model("resnet8", 10), shape, torch.device("cpu")) == 128
