"""Seeds on demand: the group-sequential interval keeps its error rate under optional stopping,
decides what a fixed sample of max seeds decides, and the driver adds seeds only where a
verdict is still open."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy import stats

from doublewin.analysis.verdict import SeedPlan, VerdictConfig, compare, verdicts
from doublewin.analysis.verdict.sequential import critical_value
from doublewin.core.errors import UserError
from doublewin.core.specs import TrainSpec, TransferSpec
from doublewin.experiments.adaptive.on_demand import on_demand_cost, seeds_on_demand
from doublewin.experiments.adaptive.search import search_extreme
from doublewin.experiments.plan.grid import Job

DELTA = 1.0  # δ at its floor: the dense runs below agree exactly


def _config(spending: str = "pocock", **plan) -> VerdictConfig:
    return VerdictConfig(
        margin_floor=DELTA,
        std_multiplier=0.0,
        seeds=SeedPlan(**{"min": 3, "max": 10, "step": 1, **plan, "spending": spending}),
    )


def _sequence(true_diff: float, spread: float, config: VerdictConfig, rng) -> str:
    """One comparison run as on demand: the first look, then a seed at a time while it is
    inconclusive, up to max; the outcome where it stopped."""
    plan = config.seeds
    ticket, dense = {}, {}
    n = plan.min
    while True:
        for seed in range(len(ticket), n):
            dense[seed] = 50.0
            ticket[seed] = 50.0 + true_diff + rng.gauss(0.0, spread)
        outcome = compare(ticket, dense, regime="at", metric="ra", config=config).outcome
        n = plan.next_look(n)
        if outcome != "inconclusive" or n is None:
            return outcome


@pytest.mark.parametrize("spending", ["bonferroni", "pocock", "obrien-fleming"])
def test_optional_stopping_certifies_matching_at_most_2_5_percent_at_exactly_minus_delta(
    spending,
):
    rng = random.Random(7)
    config = _config(spending)
    runs = 3000
    certified = sum(_sequence(-DELTA, 1.0, config, rng) == "matching" for _ in range(runs))
    rate = certified / runs
    low, high = stats.binomtest(certified, runs).proportion_ci(0.95, method="exact")
    # The Monte-Carlo interval of the rate reaches 2.5% or below; the point is near it.
    assert low <= 0.025 and rate <= 0.032, (rate, low, high)


def test_a_fixed_interval_looked_at_after_every_seed_would_not_keep_the_rate():
    """What the plan guards against: the fixed-sample 95% interval under optional stopping."""
    rng = random.Random(7)
    naive = VerdictConfig(margin_floor=DELTA, std_multiplier=0.0)
    certified = 0
    for _ in range(2000):
        ticket, dense = {}, {}
        for seed in range(10):
            dense[seed] = 50.0
            ticket[seed] = 50.0 - DELTA + rng.gauss(0.0, 1.0)
            if seed >= 2:
                outcome = compare(ticket, dense, regime="at", metric="ra", config=naive).outcome
                if outcome != "inconclusive":
                    certified += outcome == "matching"
                    break
    assert certified / 2000 > 0.04


@pytest.mark.parametrize("spending", ["pocock", "obrien-fleming"])
def test_a_true_difference_of_zero_is_decided_by_max_at_the_demos_spread(spending):
    rng = random.Random(11)
    config = _config(spending)
    runs = 1000
    # The demo's median per-seed spread of ticket − dense (docs/verdict.md).
    decided = sum(_sequence(0.0, 0.6, config, rng) == "matching" for _ in range(runs))
    assert decided / runs >= 0.8


def test_the_boundaries_are_a_deterministic_function_of_the_plan():
    plan = SeedPlan(min=3, max=8, step=1, spending="pocock")
    first = [critical_value(plan, n, 0.95) for n in plan.looks]
    again = [critical_value(SeedPlan(3, 8, 1, "pocock"), n, 0.95) for n in plan.looks]
    assert first == again
    # Each look's boundary is wider than the fixed-sample one; Bonferroni's widest of all.
    for n, c in zip(plan.looks, first, strict=True):
        assert c > stats.t.ppf(0.975, n - 1)
        assert c < critical_value(SeedPlan(3, 8, 1, "bonferroni"), n, 0.95)
    assert critical_value(SeedPlan(3, 8, 1, "bonferroni"), 8, 0.95) == pytest.approx(
        stats.t.ppf(1 - 0.025 / 6, 7)
    )


def test_a_comparison_is_judged_at_the_last_planned_look_on_its_first_seeds():
    config = _config(min=3, max=9, step=3)  # looks at 3, 6, 9
    dense = dict.fromkeys(range(8), 50.0)
    ticket = {s: 50.0 + (0.1 if s % 2 else -0.1) for s in range(8)}
    ticket[7] = 10.0  # the 8th seed is past the look at 6: it is not read yet
    c = compare(ticket, dense, regime="st", metric="sa", config=config)
    assert c.seeds == tuple(range(6))
    diffs = [ticket[s] - 50.0 for s in range(6)]
    half = critical_value(config.seeds, 6, 0.95) * np.std(diffs, ddof=1) / math.sqrt(6)
    assert c.difference.low == pytest.approx(np.mean(diffs) - half)
    before = compare(
        {0: 50.0, 1: 50.0}, {0: 50.0, 1: 50.0}, regime="st", metric="sa", config=config
    )
    assert before.outcome == "inconclusive" and before.seeds_needed == 3


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"seeds": {"min": 5, "max": 3}}, "verdict.seeds.min: 5 is above verdict.seeds.max 3"),
        ({"seeds": {"step": 0}}, "verdict.seeds.step: 0 is out of range"),
        ({"seeds": {"min": 1}}, "verdict.seeds.min: 1 is out of range"),
        ({"rule": "paper", "seeds": {}}, "verdict.rule: paper has no interval"),
        ({"pairing": "welch", "seeds": {}}, "verdict.pairing"),
    ],
)
def test_a_plan_that_cannot_work_is_one_error_naming_its_key(raw, message):
    with pytest.raises(UserError, match=message):
        VerdictConfig.from_mapping(raw)


# ---------------------------------------------------------------- the driver


LADDER = (0.5, 0.75, 0.875)


def _grid(seeds: int = 10) -> list[Job]:
    jobs = []
    for method, sparsities in (("dense", (0.0,)), ("imp", LADDER)):
        for sparsity in sparsities:
            for regime in ("st", "at"):
                for seed in range(seeds):
                    labels = {
                        "pretraining": "AT",
                        "dataset": "strokes",
                        "fraction": 1.0,
                        "method": method,
                        "imp_regime": "std" if method == "imp" else "",
                        "sparsity": sparsity,
                        "regime": regime,
                        "seed": seed,
                    }
                    train = TrainSpec(regime="std" if regime == "st" else "at")
                    spec = TransferSpec(
                        weights="w", ticket=f"{method}@{sparsity}", seed=seed, train=train
                    )
                    jobs.append(Job("transfer", spec, (), labels))
    return jobs


def _truth(labels) -> float:
    """The accuracy a run measures: 0.5 matches clearly, 0.75 sits near −δ under AT, 0.875
    fails clearly under ST; each with a seed-driven wobble of its own size."""
    if labels["method"] == "dense":
        return 80.0
    sparsity, at = labels["sparsity"], labels["regime"] == "at"
    gap = {0.5: 0.0, 0.75: -0.9 if at else 0.0, 0.875: -6.0}[sparsity]
    size = {0.5: 0.05, 0.75: 0.6 if at else 0.05, 0.875: 0.3}[sparsity]
    return 80.0 + gap + size * math.sin(3.1 * labels["seed"] + 7 * sparsity)


def _runner(done: dict[str, dict]):
    def run(batch: list[Job]) -> list[dict]:
        for job in batch:
            value = _truth(job.labels)
            done[job.id] = {
                **job.labels,
                **dict.fromkeys(("sa_best_sa", "ra_best_sa", "sa_best_ra", "ra_best_ra"), value),
            }
        return list(done.values())

    return run


def test_seeds_go_only_to_cells_still_open_and_to_their_dense_baselines():
    config = _config("pocock", max=8)
    jobs = _grid(8)
    done: dict[str, dict] = {}
    outcome = seeds_on_demand(jobs, _runner(done), config)
    runs = {(r["method"], r["sparsity"], r["regime"]): 0 for r in done.values()}
    for row in done.values():
        runs[(row["method"], row["sparsity"], row["regime"])] += 1
    # Clear cases stop at the first look; the one near −δ (0.75 under AT) takes more seeds,
    # and so does its dense baseline; nothing takes more than max.
    assert runs[("imp", 0.5, "st")] == runs[("imp", 0.5, "at")] == 3
    assert runs[("imp", 0.875, "st")] == 3
    assert runs[("imp", 0.75, "at")] > 3
    assert runs[("dense", 0.0, "at")] == runs[("imp", 0.75, "at")]
    assert runs[("dense", 0.0, "st")] == 3
    assert max(runs.values()) <= 8
    assert outcome.transfer_runs == len(done) < outcome.fixed_max_runs
    assert outcome.fixed_min_runs == 3 * 8
    assert outcome.seeds_taken[(_key(0.75), "at")] == runs[("imp", 0.75, "at")]


def test_a_ticket_failing_under_st_takes_no_more_seeds_under_at():
    config = _config("pocock", max=8)
    done: dict[str, dict] = {}
    seeds_on_demand(_grid(8), _runner(done), config)
    at = [r for r in done.values() if r["sparsity"] == 0.875 and r["regime"] == "at"]
    assert len(at) == 3  # decided "not double-win" by ST at the first look


def test_stopped_mid_wave_and_run_again_it_reuses_every_seed_and_ends_with_the_same_rows():
    config = _config("pocock", max=8)
    jobs = _grid(8)
    reference: dict[str, dict] = {}
    seeds_on_demand(jobs, _runner(reference), config)

    class Stop(Exception):
        pass

    done: dict[str, dict] = {}
    inner = _runner(done)
    calls = [0]

    def interrupted(batch):
        calls[0] += 1
        if calls[0] == 2:
            inner(batch[: len(batch) // 2])  # half the second wave finishes
            raise Stop
        return inner(batch)

    with pytest.raises(Stop):
        seeds_on_demand(jobs, interrupted, config)
    computed: list[str] = []

    def resumed(batch):
        computed.extend(j.id for j in batch if j.id not in done)
        return inner(batch)

    seeds_on_demand(jobs, resumed, config)
    assert done == reference
    assert len(computed) == len(reference) - len(done.keys() - set(computed))
    assert not set(computed) & (set(reference) - set(computed))


def test_the_dry_run_cost_counts_the_first_look_and_what_the_verdicts_expect():
    config = _config("pocock", max=8)
    jobs = _grid(8)
    cost = on_demand_cost(jobs, [], config)
    assert (cost.first_look, cost.most, cost.expected) == (3 * 8, 5 * 8, None)
    done: dict[str, dict] = {}
    first = [j for j in jobs if j.labels["seed"] < 3]
    rows = _runner(done)(first)
    cost = on_demand_cost(jobs, rows, config)
    assert cost.judged == cost.cells == 6
    assert 0 < cost.expected <= 2 * 5  # the open cell and its dense baseline, at most to max


def test_with_the_extreme_search_a_rungs_open_regime_takes_its_next_look():
    config = _config("pocock", max=8)
    done: dict[str, dict] = {}
    outcome = search_extreme(_grid(8), _runner(done), config)
    (ladder,) = outcome.ladders
    at_075 = [r for r in done.values() if r["sparsity"] == 0.75 and r["regime"] == "at"]
    assert len(at_075) > 3
    assert ladder.results[2] is False and ladder.results[0] is True
    # Decided verdicts agree with judging every seed the search ran.
    judged = {v.key.sparsity: v.double_win for v in verdicts(list(done.values()), config)}
    for rung, double_win in ladder.results.items():
        if double_win is not None:
            assert judged[LADDER[rung]] == double_win


def _key(sparsity: float):
    from doublewin.analysis.verdict import TicketKey

    return TicketKey("AT", "strokes", 1.0, "imp", "std", sparsity)


def _with_control(jobs: list[Job], seeds: int) -> list[Job]:
    control = []
    for regime in ("st", "at"):
        for seed in range(seeds):
            labels = {
                "pretraining": "CONTROL",
                "dataset": "strokes",
                "fraction": 1.0,
                "method": "dense",
                "imp_regime": "",
                "sparsity": 0.0,
                "regime": regime,
                "seed": seed,
            }
            train = TrainSpec(regime="std" if regime == "st" else "at")
            spec = TransferSpec(weights="control", ticket="", seed=seed, train=train)
            control.append(Job("transfer", spec, (), labels))
    return jobs + control


def test_the_control_runs_max_seeds_in_the_first_wave_and_no_other_dense_does():
    """The control's comparisons are fixed-sample Welch intervals: its seeds must not depend
    on any verdict, so it takes every seed up to max at once; a pre-training's dense baseline
    still starts at min."""
    config = _config("pocock", max=6)
    jobs = _with_control(_grid(8), 8)
    waves: list[list[Job]] = []
    done: dict[str, dict] = {}
    inner = _runner(done)

    def run(batch):
        waves.append(batch)
        return inner(batch)

    seeds_on_demand(jobs, run, config, controls=("CONTROL",))
    first = {(j.labels["pretraining"], j.labels["regime"], j.labels["seed"]) for j in waves[0]}
    assert {("CONTROL", r, s) for r in ("st", "at") for s in range(6)} <= first
    assert ("CONTROL", "st", 6) not in first
    later = [j for wave in waves[1:] for j in wave if j.labels["pretraining"] == "CONTROL"]
    assert not later
    dense_st = [j for j in waves[0] if j.labels["method"] == "dense" and j.labels["regime"] == "st"]
    assert sum(j.labels["pretraining"] == "AT" for j in dense_st) == 3
    cost = on_demand_cost(jobs, [], config, controls=("CONTROL",))
    assert cost.first_look == 3 * 8 + 2 * 6
