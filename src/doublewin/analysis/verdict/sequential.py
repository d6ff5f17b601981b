"""Seeds on demand: group-sequential intervals over planned looks (docs/verdict.md).

Adding seeds until an interval clears the margin, then stopping, is optional stopping: a
fixed-sample 95% interval looked at after every seed certifies a ticket whose true difference
is exactly −δ far more often than 2.5% of the time. The plan fixes the looks in advance —
n = ``min``, ``min + step``, …, up to ``max`` common seeds — and each look k gets its own
critical value c_k, so that over the whole sequence the probability of certifying "matching"
when ticket − dense is exactly −δ stays at most α/2 (and the same for "not matching" when it
is exactly −δ from the other side). At look k the comparison's interval is the repeated
confidence interval d̄ ± c_k · sd(d) / √n_k (Jennison & Turnbull): the interval rule reads it
exactly as it reads a fixed-sample one.

Three ways to spend α over the looks (``spending``):

- ``bonferroni``: α/2 split evenly, c_k = t(1 − α/(2K), n_k − 1). Valid by the union bound
  alone; the most conservative.
- ``pocock``: one nominal level α' at every look, c_k = t(1 − α', n_k − 1), with α' the
  largest that keeps the sequence's error at α/2. Decides clear cases early.
- ``obrien-fleming``: nominal levels from the boundary C·√(n_K / n_k) on the normal scale,
  c_k = t(Φ(C·√(n_K/n_k)), n_k − 1), with C the smallest that keeps the error at α/2. Strict
  early, close to the fixed-sample interval of ``max`` seeds at the last look.

The last two are calibrated by simulating the sequence of one-sample t statistics under the
null. Under normal per-seed differences that sequence does not depend on the spread σ (every
t statistic is scale-free), so one simulation per plan serves every comparison. It is seeded
and uses the same draws for every candidate constant, so the boundaries are a deterministic
function of the plan and α.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from doublewin.core.errors import UserError
from doublewin.core.typed import Range, checked

Spending = Literal["bonferroni", "pocock", "obrien-fleming"]
SIMULATIONS = 200_000  # null sequences per calibration: the error rate to about ±0.0004
_CALIBRATION_SEED = 20220712  # fixed: the boundaries must not change from run to run


@dataclass(frozen=True)
class SeedPlan:
    """``verdict.seeds``: run ``min`` seeds everywhere, then add ``step`` seeds to each
    comparison still inconclusive, up to ``max``; the looks are at min, min + step, … ≤ max
    common seeds, judged with the ``spending`` boundaries."""

    min: int = checked(3, range=Range(2, None))
    max: int = checked(10, range=Range(2, None))
    step: int = checked(1, range=Range(1, None))
    spending: Spending = "pocock"

    def __post_init__(self) -> None:
        if self.min > self.max:
            raise UserError(
                f"verdict.seeds.min: {self.min} is above verdict.seeds.max {self.max}; "
                "set min ≤ max (e.g. min: 3, max: 10)"
            )

    @property
    def looks(self) -> tuple[int, ...]:
        """The planned numbers of common seeds at which a comparison is judged."""
        return tuple(range(self.min, self.max + 1, self.step))

    def look_at(self, seeds: int) -> int | None:
        """The last planned look reached with ``seeds`` common seeds (None: before the first)."""
        reached = [n for n in self.looks if n <= seeds]
        return reached[-1] if reached else None

    def next_look(self, seeds: int) -> int | None:
        """The planned look after ``seeds`` common seeds (None: the plan is spent)."""
        later = [n for n in self.looks if n > seeds]
        return later[0] if later else None


def critical_value(plan: SeedPlan, seeds: int, confidence: float) -> float:
    """c_k of the look at ``seeds`` common seeds (one of ``plan.looks``): the interval at that
    look is d̄ ± c_k · sd / √seeds."""
    looks = plan.looks
    if seeds not in looks:
        raise ValueError(f"{seeds} seeds is not a planned look of {looks}")
    return _boundaries(looks, plan.spending, round(1.0 - confidence, 12))[looks.index(seeds)]


@functools.cache
def _boundaries(looks: tuple[int, ...], spending: str, alpha: float) -> tuple[float, ...]:
    side = alpha / 2
    k = len(looks)
    if spending == "bonferroni" or k == 1:
        level = side / k if spending == "bonferroni" else side
        return tuple(float(stats.t.ppf(1 - level, n - 1)) for n in looks)
    t_paths = _null_t_paths(looks)
    last = looks[-1]

    def values(constant: float) -> np.ndarray:
        if spending == "pocock":
            levels = [constant] * k  # the nominal one-sided level at each look
        else:
            levels = [float(stats.norm.sf(constant * math.sqrt(last / n))) for n in looks]
        return np.array([stats.t.isf(p, n - 1) for p, n in zip(levels, looks, strict=True)])

    def error(constant: float) -> float:
        return float(np.mean((t_paths >= values(constant)).any(axis=1)))

    if spending == "pocock":
        # The error grows with the nominal level: the largest level with error ≤ side.
        low, high = side / k, side
        for _ in range(50):
            middle = (low + high) / 2
            low, high = (middle, high) if error(middle) <= side else (low, middle)
        return tuple(float(v) for v in values(low))
    # O'Brien–Fleming: the error falls as C grows: the smallest C with error ≤ side.
    low, high = float(stats.norm.isf(side)), float(stats.norm.isf(side / k)) + 1.0
    for _ in range(50):
        middle = (low + high) / 2
        low, high = (low, middle) if error(middle) <= side else (middle, high)
    return tuple(float(v) for v in values(high))


def _null_t_paths(looks: tuple[int, ...]) -> np.ndarray:
    """One-sample t statistics at every look of ``SIMULATIONS`` sequences of standard normal
    differences (the null: the true mean on the bar): [SIMULATIONS, len(looks)]."""
    rng = np.random.default_rng(_CALIBRATION_SEED)
    draws = rng.standard_normal((SIMULATIONS, looks[-1]))
    columns = []
    for n in looks:
        head = draws[:, :n]
        mean = head.mean(axis=1)
        sd = head.std(axis=1, ddof=1)
        columns.append(mean / (sd / math.sqrt(n)))
    return np.stack(columns, axis=1)


def sequential_interval(
    diffs: list[float], plan: SeedPlan, confidence: float
) -> tuple[float, float, float, int] | None:
    """(mean, low, high, n) of the repeated confidence interval at the last planned look the
    differences ``diffs`` (in seed order) reach, on the first n of them; None before the first
    look."""
    n = plan.look_at(len(diffs))
    if n is None:
        return None
    head = diffs[:n]
    mean = math.fsum(head) / n
    sd = float(np.std(head, ddof=1))
    half = critical_value(plan, n, confidence) * sd / math.sqrt(n)
    return mean, mean - half, mean + half, n


def looks_to_resolve(
    spread: float | None, mean: float, bar: float, have: int, plan: SeedPlan, confidence: float
) -> int | None:
    """The first planned look after ``have`` seeds whose interval would clear ``bar`` at the
    observed spread (the sequential version of ``stats.seeds_to_resolve``); None when no look
    of the plan would, or it cannot be said."""
    distance = abs(mean - bar)
    if spread is None or distance == 0:
        return None
    for n in plan.looks:
        if n > have and critical_value(plan, n, confidence) * spread / math.sqrt(n) < distance:
            return n
    return None
