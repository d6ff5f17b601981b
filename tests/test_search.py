"""The adaptive extreme-sparsity search: bisection over a ladder, confirmed at neighbours."""

from __future__ import annotations

import math

import pytest

from doublewin.analysis.verdict import VerdictConfig
from doublewin.experiments.experiment import Job
from doublewin.experiments.search import LadderSearch, search_extreme
from doublewin.experiments.specs import TransferSpec


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
        # Bisection plus at most the one confirmation below the boundary.
        assert spent <= math.ceil(math.log2(n + 1)) + 1


def test_a_non_monotone_ladder_is_flagged_and_reports_the_largest_evaluated_winner() -> None:
    search = LadderSearch(("P", "d", 1.0, "imp", "std"), tuple(range(8)))
    pattern = {0: True, 1: True, 2: True, 3: True, 4: False, 5: True, 6: False, 7: False}
    _drive(search, pattern.__getitem__)
    assert search.extreme == 5
    assert any("not monotone" in note for note in search.notes)


def _grid(boundaries: dict[str, int], rungs: int) -> tuple[list[Job], dict]:
    """Transfer jobs of two ladders plus dense, and the accuracy each would measure."""
    jobs, accuracy = [], {}
    ladder = [round(1 - 0.8 ** k, 6) for k in range(1, rungs + 1)]
    for method in ("dense", *boundaries):
        points = [0.0] if method == "dense" else ladder
        for index, sparsity in enumerate(points):
            for regime in ("st", "at"):
                for seed in (0, 1):
                    labels = {"pretraining": "AT", "dataset": "digits", "fraction": 1.0,
                              "method": method, "imp_regime": "", "sparsity": sparsity,
                              "regime": regime, "seed": seed}
                    spec = TransferSpec(weights="w", ticket=f"{method}@{sparsity}",
                                        seed=seed, train=_train(regime))
                    job = Job("transfer", spec, (), labels)
                    jobs.append(job)
                    wins = method == "dense" or index <= boundaries[method]
                    # Dense: 80 ± 1 points over seeds; a winner matches, a loser is 10 below.
                    base = 80.0 + (1.0 if seed else -1.0)
                    accuracy[job.id] = base if wins else base - 10.0
    return jobs, accuracy


def _train(regime: str):
    from doublewin.experiments.specs import TrainSpec

    return TrainSpec(regime="std" if regime == "st" else "at")


def test_search_extreme_matches_the_full_grid_with_fewer_transfer_runs() -> None:
    jobs, accuracy = _grid({"imp": 6, "omp": 2}, rungs=12)
    done: dict[str, dict] = {}

    def run(batch: list[Job]) -> list[dict]:
        for job in batch:
            value = accuracy[job.id]
            done[job.id] = {**job.labels, "sa_best_sa": value, "ra_best_sa": value,
                            "sa_best_ra": value, "ra_best_ra": value}
        return list(done.values())

    outcome = search_extreme(jobs, run, VerdictConfig())
    extremes = {s.key[3]: s.extreme for s in outcome.ladders}
    ladder = [round(1 - 0.8 ** k, 6) for k in range(1, 13)]
    assert extremes == {"imp": ladder[6], "omp": ladder[2]}
    assert outcome.full_grid_transfer_runs == len(jobs)
    assert outcome.transfer_runs == len(done)
    assert outcome.transfer_runs <= outcome.full_grid_transfer_runs / 2
