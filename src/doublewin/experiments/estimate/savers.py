"""What the two savers are expected to spend, before a run: seeds on demand and the extreme
search, alone and together, as transfer runs.

Seeds on demand: each (ticket, regime) cell takes seeds until its verdict is decided or the
plan's max is reached (adaptive/on_demand.py). How many it takes depends on how far the
ticket's true gap to its dense model lies from the margin, measured in the per-seed spread of
the difference; before a run neither is known, so the expectation is the plan's operating
characteristics (the sequential rule of analysis/verdict/sequential.py, simulated) at an
assumed spread, with the true gap equally likely anywhere from three margins below the dense
model to one above. The dense baselines of a setting run as many seeds as its longest cell; the
no-pre-training control runs the max.

The extreme search: on each ladder the search (adaptive/search.py's `LadderSearch`, driven
here) judges a few rungs; the expectation is over the ladder's extreme being any of its rungs
(or none) with equal probability, a rung that fails costing its standard transfer and, half the
time, its adversarial one (the failure was in the AT verdict).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from doublewin.analysis.verdict import SeedPlan, VerdictConfig
from doublewin.analysis.verdict.sequential import critical_value
from doublewin.core.results import is_dense, setting_of
from doublewin.experiments.adaptive.search import LadderSearch
from doublewin.experiments.plan.grid import Job

DEFAULT_SPREAD = (
    0.5  # points: the per-seed spread of ticket − dense at the demo's 20% rung (docs/verdict.md)
)
GAP_RANGE = (-3.0, 1.0)  # the true gap, in margins δ: equally likely anywhere in this range
SIMULATIONS = 4000
FAIL_IN_AT = 0.5  # a failing rung's share that passes ST (its AT runs are spent too)


@dataclass(frozen=True)
class SaverEstimate:
    """Expected transfer runs of a saver (or both), against the fixed grid's, and its basis."""

    expected: float
    full_grid: int
    basis: str

    @property
    def share(self) -> float:
        return self.expected / self.full_grid if self.full_grid else 0.0


def stopping_seeds(plan: SeedPlan, spread: float, delta: float, seed: int = 0) -> np.ndarray:
    """Seeds each simulated cell takes under ``plan``, true gaps drawn from GAP_RANGE × δ and
    per-seed differences with standard deviation ``spread``."""
    return simulated_cells(plan, spread, delta, seed)[0]


def simulated_cells(
    plan: SeedPlan, spread: float, delta: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(seeds taken, true gap) of each simulated cell (see `stopping_seeds`)."""
    rng = np.random.default_rng(seed)
    gaps = rng.uniform(*GAP_RANGE, size=SIMULATIONS) * delta
    draws = gaps[:, None] + spread * rng.standard_normal((SIMULATIONS, plan.max))
    return sequential_outcomes(draws, plan, delta)[1], gaps


def sequential_outcomes(
    draws: np.ndarray, plan: SeedPlan, delta: float, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """(outcome, seeds taken) of each row of per-seed differences ``draws`` (rows × plan.max)
    judged at the plan's looks with the interval rule: +1 matching, −1 not matching, 0 still
    inconclusive at the plan's max."""
    outcome = np.zeros(len(draws), dtype=int)
    taken = np.full(len(draws), plan.max)
    for n in plan.looks:
        sample = draws[:, :n]
        mean = sample.mean(1)
        half = critical_value(plan, n, confidence) * sample.std(1, ddof=1) / math.sqrt(n)
        open_ = outcome == 0
        passed = open_ & (mean - half >= -delta)
        failed = open_ & (mean + half < -delta)
        outcome[passed], outcome[failed] = 1, -1
        taken[passed | failed] = n
    return outcome, taken


def seeds_by_outcome(config: VerdictConfig, spread: float) -> tuple[float, float]:
    """Mean seeds of a simulated cell whose true gap is at or above −δ (a rung that passes)
    and of one below it (a rung that fails): the same prior as `expected_on_demand`, split by
    the outcome the extreme search sees."""
    plan = config.seeds or SeedPlan()
    taken, gaps = simulated_cells(plan, spread, config.margin_floor)
    passing = gaps >= -config.margin_floor
    return float(taken[passing].mean()), float(taken[~passing].mean())


def expected_on_demand(
    jobs: Sequence[Job], config: VerdictConfig, controls: Sequence[str], spread: float
) -> SaverEstimate:
    plan = config.seeds or SeedPlan()
    transfers = [j for j in jobs if j.stage == "transfer"]
    seeds = sorted({int(j.labels["seed"]) for j in transfers})[: plan.max]
    cells: dict[tuple, int] = defaultdict(int)  # (setting, regime) -> ticket cells in it
    settings = set()
    for job in transfers:
        setting = (*setting_of(job.labels), job.labels["regime"])
        settings.add(setting)
        if not is_dense(job.labels) and int(job.labels["seed"]) == seeds[0]:
            cells[setting] += 1
    taken = stopping_seeds(plan, spread, config.margin_floor)
    rng = np.random.default_rng(1)
    expected = 0.0
    for setting in settings:
        if setting[0] in controls:
            expected += plan.max
            continue
        count = cells.get(setting, 0)
        expected += count * float(taken.mean())
        if count:  # the dense baseline runs as many seeds as the longest cell of its setting
            expected += float(rng.choice(taken, size=(SIMULATIONS, count)).max(1).mean())
        else:
            expected += plan.min
    return SaverEstimate(
        expected,
        len([j for j in transfers if int(j.labels["seed"]) in seeds]),
        f"the {plan.spending} plan's operating characteristics ({plan.min}–{plan.max} seeds) at "
        f"a per-seed spread of {spread:g} points, true gaps equally likely from "
        f"{GAP_RANGE[0]:g}δ to +{GAP_RANGE[1]:g}δ",
    )


def expected_search_rungs(rungs: int, anchors: Sequence[int] = ()) -> tuple[float, float, float]:
    """(rungs judged by bisection, of them failing, anchors passing) per ladder of ``rungs``
    rungs, the extreme equally likely at any rung or none; ``anchors`` (0-based) are judged
    first under every regime and their verdicts bound the bisection."""
    judged = failing = anchors_passing = 0.0
    for extreme in range(-1, rungs):
        search = LadderSearch(key=None, sparsities=tuple(range(rungs)))  # type: ignore[arg-type]
        for rung in anchors:
            search.record(rung, rung <= extreme)
        while (rung := search.next_rung()) is not None:
            search.record(rung, rung <= extreme)
        bisected = {r: dw for r, dw in search.results.items() if r not in anchors}
        judged += len(bisected)
        failing += sum(1 for dw in bisected.values() if not dw)
        anchors_passing += sum(1 for r in anchors if r <= extreme)
    cases = rungs + 1
    return judged / cases, failing / cases, anchors_passing / cases


def expected_search(
    jobs: Sequence[Job],
    seeds_per_cell: tuple[float, float] | None = None,
    anchors: Mapping[str, Sequence[int]] | None = None,
) -> SaverEstimate:
    """Transfer runs of ``--search extreme``: each judged rung at the fixed seeds per regime,
    or, with seeds on demand, at ``seeds_per_cell`` = (seeds of a passing rung, of a failing
    one) from `seeds_by_outcome`. ``anchors`` (per method, 1-based rungs) are judged under
    both regimes whatever they show."""
    transfers = [j for j in jobs if j.stage == "transfer"]
    seeds = len({int(j.labels["seed"]) for j in transfers}) or 1
    passing_seeds, failing_seeds = seeds_per_cell or (seeds, seeds)
    ladders: dict[tuple, dict[float, int]] = defaultdict(dict)
    settings = set()
    for job in transfers:
        labels = job.labels
        setting = setting_of(labels)
        settings.add(setting)
        if not is_dense(labels):
            key = (
                *setting,
                labels["method"],
                labels.get("imp_regime", ""),
                labels.get("pattern", ""),
            )
            ladders[key][float(labels["sparsity"])] = int(labels.get("rung") or 0)
    # The dense baselines, ST and AT, run as many seeds as the longest cell of their setting;
    # a setting with no ladder (the control) runs every seed (adaptive/search.py).
    searched = {key[:3] for key in ladders}
    expected = 2 * max(passing_seeds, failing_seeds) * len(settings & searched)
    expected += 2 * seeds * len(settings - searched)
    for key, numbers in ladders.items():
        ordered = [numbers[s] for s in sorted(numbers)]
        chosen = set((anchors or {}).get(key[3], ()))
        places = [i for i, number in enumerate(ordered) if number in chosen]
        judged, failing, passing_anchors = expected_search_rungs(len(ordered), places)
        expected += passing_seeds * 2 * (judged - failing)
        expected += failing_seeds * failing * (1 + FAIL_IN_AT)
        expected += 2 * (
            passing_seeds * passing_anchors + failing_seeds * (len(places) - passing_anchors)
        )
    return SaverEstimate(
        expected,
        len(transfers),
        "bisection with each ladder's extreme equally likely at any rung or none"
        + (", anchor rungs judged under both regimes" if anchors else ""),
    )
