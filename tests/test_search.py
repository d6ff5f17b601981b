"""The adaptive extreme-sparsity search: bisection over a ladder, confirmed one rung above."""

from __future__ import annotations

import itertools
import math

import pytest

from doublewin.analysis.verdict import VerdictConfig
from doublewin.core.specs import TransferSpec
from doublewin.experiments.adaptive.search import LadderSearch, search_extreme
from doublewin.experiments.plan.grid import Job


def _drive(search: LadderSearch, double_win) -> int:
    evaluations = 0
    while (rung := search.next_rung()) is not None:
        search.record(rung, double_win(rung))
        evaluations += 1
    return evaluations


@pytest.mark.parametrize("n", [1, 2, 5, 8, 10, 16])
def test_bisection_finds_the_boundary_of_every_monotone_ladder(n: int) -> None:
    for boundary in range(-1, n):  # rungs 0..boundary are double-win
        search = LadderSearch(("P", "d", 1.0, "imp", "std"), tuple(i / (n + 1) for i in range(n)))
        spent = _drive(search, lambda r, b=boundary: r <= b)
        expected = None if boundary < 0 else search.sparsities[boundary]
        assert search.extreme == expected
        assert not search.notes
        # Bisection plus at most the one confirmation above the boundary.
        assert spent <= math.ceil(math.log2(n + 1)) + 1


def test_a_winner_just_above_the_first_failure_is_found_and_flagged() -> None:
    search = LadderSearch(("P", "d", 1.0, "imp", "std"), tuple(range(8)))
    pattern = [True, True, True, False, True, False, False, False]
    _drive(search, pattern.__getitem__)
    assert search.extreme == 4  # bisection alone stops at 2
    assert any("not monotone" in note for note in search.notes)


@pytest.mark.parametrize("n", range(1, 11))
def test_every_ladder_whose_failures_below_the_extreme_are_isolated_gets_the_grid_extreme(
    n: int,
) -> None:
    """Exhaustive over all 2^n verdict patterns: the search never reports a rung that is not
    double-win, and it finds the full grid's extreme whenever each failing rung below that
    extreme sits between two double-win rungs (monotone ladders included)."""
    checked = 0
    for flags in itertools.product((False, True), repeat=n):
        search = LadderSearch(("P", "d", 1.0, "imp", "std"), tuple(range(n)))
        _drive(search, flags.__getitem__)
        winners = [r for r, dw in enumerate(flags) if dw]
        extreme = max(winners) if winners else None
        assert search.extreme is None or flags[search.extreme]
        below = [r for r in range(extreme or 0) if not flags[r]]
        if all(r > 0 and flags[r - 1] and flags[r + 1] for r in below):
            assert search.extreme == extreme, flags
            checked += 1
    assert checked > n  # the condition admits more than the n + 1 monotone ladders when n > 2


@pytest.mark.parametrize("n", range(1, 8))
def test_an_inconclusive_rung_is_neither_a_winner_nor_a_boundary(n: int) -> None:
    """Exhaustive over all 3^n patterns of double-win / not / inconclusive (None): the search
    never reports a rung that is not double-win, never stops at an inconclusive rung as if it
    failed, and finds the grid's extreme whenever no rung below it fails."""
    for flags in itertools.product((False, True, None), repeat=n):
        search = LadderSearch(("P", "d", 1.0, "imp", "std"), tuple(range(n)))
        _drive(search, flags.__getitem__)
        winners = [r for r, dw in enumerate(flags) if dw]
        extreme = max(winners) if winners else None
        assert search.extreme is None or flags[search.extreme] is True
        if extreme is not None and False not in flags[:extreme]:
            assert search.extreme == extreme, flags
        judged_inconclusive = [r for r, dw in search.results.items() if dw is None]
        assert len([n for n in search.notes if "neither a winner" in n]) == len(judged_inconclusive)


def test_a_monotone_ladder_with_an_inconclusive_middle_rung_still_finds_its_extreme() -> None:
    # Bisection would stop at rung 3 (inconclusive) under the two-valued rule; it must go on.
    pattern = [True, True, True, None, True, True, False, False]
    search = LadderSearch(("P", "d", 1.0, "imp", "std"), tuple(range(8)))
    _drive(search, pattern.__getitem__)
    assert search.extreme == 5
    assert search.results[3] is None


def _grid(
    boundaries: dict[str, int], rungs: int, fails_under: tuple[str, ...] = ("st", "at")
) -> tuple[list[Job], dict]:
    """Transfer jobs of two ladders plus dense, and the accuracy each would measure; a rung
    above its ladder's boundary loses under the regimes ``fails_under`` only."""
    jobs, accuracy = [], {}
    ladder = [round(1 - 0.8**k, 6) for k in range(1, rungs + 1)]
    for method in ("dense", *boundaries):
        points = [0.0] if method == "dense" else ladder
        for index, sparsity in enumerate(points):
            for regime in ("st", "at"):
                for seed in (0, 1):
                    labels = {
                        "pretraining": "AT",
                        "dataset": "digits",
                        "fraction": 1.0,
                        "method": method,
                        "imp_regime": "",
                        "sparsity": sparsity,
                        "rung": "" if method == "dense" else index + 1,
                        "regime": regime,
                        "seed": seed,
                    }
                    spec = TransferSpec(
                        weights="w", ticket=f"{method}@{sparsity}", seed=seed, train=_train(regime)
                    )
                    job = Job("transfer", spec, (), labels)
                    jobs.append(job)
                    wins = (
                        method == "dense"
                        or index <= boundaries[method]
                        or regime not in fails_under
                    )
                    # Dense: 80 ± 1 points over seeds; a winner matches, a loser is 10 below.
                    base = 80.0 + (1.0 if seed else -1.0)
                    accuracy[job.id] = base if wins else base - 10.0
    return jobs, accuracy


def _train(regime: str):
    from doublewin.core.specs import TrainSpec

    return TrainSpec(regime="std" if regime == "st" else "at")


def _runner(accuracy: dict, done: dict[str, dict]):
    def run(batch: list[Job]) -> list[dict]:
        for job in batch:
            value = accuracy[job.id]
            done[job.id] = {
                **job.labels,
                "sa_best_sa": value,
                "ra_best_sa": value,
                "sa_best_ra": value,
                "ra_best_ra": value,
            }
        return list(done.values())

    return run


@pytest.mark.parametrize("fails_under", [("st", "at"), ("st",), ("at",)])
def test_a_rung_that_fails_under_st_never_runs_its_at_transfers(fails_under) -> None:
    jobs, accuracy = _grid({"imp": 6, "omp": 2}, rungs=12, fails_under=fails_under)
    done: dict[str, dict] = {}
    outcome = search_extreme(jobs, _runner(accuracy, done), VerdictConfig())
    ladder = [round(1 - 0.8**k, 6) for k in range(1, 13)]
    assert {s.key[3]: s.extreme for s in outcome.ladders} == {"imp": ladder[6], "omp": ladder[2]}
    at_runs = [row for row in done.values() if row["regime"] == "at"]
    failing = {
        s.key[3]: {s.sparsities[r] for r, dw in s.results.items() if not dw}
        for s in outcome.ladders
    }
    at_of_failing = [
        row
        for row in at_runs
        if row["method"] != "dense" and row["sparsity"] in failing[row["method"]]
    ]
    if "st" in fails_under:
        assert not at_of_failing
    else:  # ST cannot tell: every judged rung needed its AT runs
        assert at_of_failing


def test_search_extreme_matches_the_full_grid_with_fewer_transfer_runs() -> None:
    jobs, accuracy = _grid({"imp": 6, "omp": 2}, rungs=12)
    done: dict[str, dict] = {}
    outcome = search_extreme(jobs, _runner(accuracy, done), VerdictConfig())
    extremes = {s.key[3]: s.extreme for s in outcome.ladders}
    ladder = [round(1 - 0.8**k, 6) for k in range(1, 13)]
    assert extremes == {"imp": ladder[6], "omp": ladder[2]}
    assert outcome.full_grid_transfer_runs == len(jobs)
    assert outcome.transfer_runs == len(done)
    assert outcome.transfer_runs <= outcome.full_grid_transfer_runs / 2


def test_anchor_rungs_are_judged_under_every_regime_and_bound_the_bisection() -> None:
    """The top rung as an anchor of both methods: it fails under ST, yet its AT runs are
    spent (IMP and OMP meet there with all four accuracies), and each search still finds the
    full grid's extreme below it."""
    jobs, accuracy = _grid({"imp": 6, "omp": 2}, rungs=12)
    done: dict[str, dict] = {}
    outcome = search_extreme(
        jobs, _runner(accuracy, done), VerdictConfig(), anchors={"imp": [12], "omp": [12]}
    )
    ladder = [round(1 - 0.8**k, 6) for k in range(1, 13)]
    assert {s.key[3]: s.extreme for s in outcome.ladders} == {"imp": ladder[6], "omp": ladder[2]}
    top = {(r["method"], r["regime"]) for r in done.values() if r["sparsity"] == ladder[11]}
    assert top == {("imp", "st"), ("imp", "at"), ("omp", "st"), ("omp", "at")}
    for search in outcome.ladders:
        assert search.results[11] is False  # recorded once, as the anchor
    plain: dict[str, dict] = {}
    search_extreme(jobs, _runner(accuracy, plain), VerdictConfig())
    assert not [r for r in plain.values() if r["sparsity"] == ladder[11] and r["regime"] == "at"]


def test_a_setting_without_a_ladder_runs_its_dense_baselines_in_full() -> None:
    """The no-pre-training control has no tickets: under the search its dense runs still go
    through every regime, at every seed, so pre-training can be compared with it."""
    jobs, accuracy = _grid({"imp": 3}, rungs=6)
    control = [
        Job(
            "transfer",
            TransferSpec(weights="c", ticket="", seed=j.spec.seed, train=j.spec.train),
            (),
            {**j.labels, "pretraining": "CONTROL"},
        )
        for j in jobs
        if j.labels["method"] == "dense"
    ]
    for job in control:
        accuracy[job.id] = 50.0
    done: dict[str, dict] = {}
    search_extreme([*jobs, *control], _runner(accuracy, done), VerdictConfig())
    ran = {(r["regime"], r["seed"]) for r in done.values() if r["pretraining"] == "CONTROL"}
    assert ran == {("st", 0), ("st", 1), ("at", 0), ("at", 1)}
