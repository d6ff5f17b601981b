"""Intervals over seeds, from scipy.stats.

Accuracies are points (0–100). Two kinds of difference: ``paired_difference`` takes it seed by
seed, for two runs that share what a seed fixes (a ticket and its dense model: the same θp,
head initialization, data order and attack starts); ``welch_difference`` compares two
independent samples (two pre-trainings' dense transfers, which share nothing but the recipe),
with Welch's unequal-variance t-interval.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` seeds with its two-sided confidence interval [low, high] (None when
    one seed gives no spread)."""

    mean: float
    low: float | None
    high: float | None
    n: int

    @property
    def above_zero(self) -> bool:
        return self.low is not None and self.low > 0

    @property
    def below_zero(self) -> bool:
        return self.high is not None and self.high < 0

    def text(self, digits: int = 1) -> str:
        """``+4.2 [+1.0, +7.4]`` (or ``+4.2`` with one seed)."""
        if self.low is None or self.high is None:
            return f"{self.mean:+.{digits}f}"
        return f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"


def mean_interval(values: list[float], confidence: float = CONFIDENCE) -> Interval | None:
    """Student-t interval of the mean of ``values`` (None for no values)."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return None
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Interval(mean, None, None, len(values))
    sem = statistics.stdev(values) / math.sqrt(len(values))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1)) * sem
    return Interval(mean, mean - half, mean + half, len(values))


def welch_difference(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> Interval | None:
    """mean(``a``) − mean(``b``) with Welch's t-interval (None when either is empty; no
    interval when either has a single value). ``n`` is the smaller sample."""
    a = [v for v in a if not math.isnan(v)]
    b = [v for v in b if not math.isnan(v)]
    if not a or not b:
        return None
    mean = statistics.fmean(a) - statistics.fmean(b)
    n = min(len(a), len(b))
    if n < 2:
        return Interval(mean, None, None, n)
    if statistics.pvariance(a) == 0 and statistics.pvariance(b) == 0:
        return Interval(mean, mean, mean, n)  # no spread at all: the difference is exact
    with warnings.catch_warnings():
        # Nearly identical seeds make scipy warn of lost precision; the interval is still
        # what it is (near zero width), and the report gives the values.
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = stats.ttest_ind(a, b, equal_var=False).confidence_interval(confidence)
    return Interval(mean, float(low), float(high), n)


def paired_difference(
    a: Mapping[int, float], b: Mapping[int, float], confidence: float = CONFIDENCE
) -> Interval | None:
    """``a − b`` seed by seed over the seeds both ran, with its t-interval (None when they
    share no seed)."""
    seeds = sorted(set(a) & set(b))
    return mean_interval([a[s] - b[s] for s in seeds], confidence)


def seeds_to_resolve(
    spread: float | None,
    mean: float,
    bar: float,
    have: int,
    confidence: float = CONFIDENCE,
    most: int = 1000,
) -> int | None:
    """Roughly how many seeds put a mean at ``mean`` with per-seed standard deviation
    ``spread`` clear of ``bar`` at ``confidence``: the smallest n > ``have`` whose t-interval
    half-width t(n−1)·spread/√n is below |mean − bar|, assuming the spread stays as observed.
    None when it cannot be said (no spread yet, the mean on the bar) or exceeds ``most``."""
    distance = abs(mean - bar)
    if spread is None or distance == 0:
        return None
    if spread == 0:
        return max(have, 2)
    # Every candidate n at once: one vectorised quantile call instead of one per n.
    n = np.arange(max(have + 1, 2), most + 1)
    if n.size == 0:
        return None
    clear = stats.t.ppf(0.5 + confidence / 2, n - 1) * spread / np.sqrt(n) < distance
    return int(n[np.argmax(clear)]) if clear.any() else None


@dataclass(frozen=True)
class SignTest:
    """The two-sided exact binomial sign test of ``wins`` against ``losses`` (ties dropped):
    p-value of "no effect" (a win as likely as a loss), and the share of wins with its
    Clopper–Pearson interval."""

    wins: int
    losses: int
    p_value: float | None  # None: nothing decided
    share: float | None
    low: float | None
    high: float | None


def sign_test(wins: int, losses: int, confidence: float = CONFIDENCE) -> SignTest:
    n = wins + losses
    if n == 0:
        return SignTest(wins, losses, None, None, None, None)
    result = stats.binomtest(wins, n, 0.5, alternative="two-sided")
    interval = result.proportion_ci(confidence_level=confidence, method="exact")
    return SignTest(
        wins, losses, float(result.pvalue), wins / n, float(interval.low), float(interval.high)
    )
