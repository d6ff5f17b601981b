"""Matching: one ticket against its dense model, for one metric under one regime, over the seeds
both ran (the interval, paper and points rules of docs/verdict.md)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from doublewin.analysis.verdict.config import VerdictConfig
from doublewin.analysis.verdict.sequential import SeedPlan, looks_to_resolve, sequential_interval
from doublewin.analysis.verdict.stats import (
    Interval,
    mean_interval,
    seeds_to_resolve,
    welch_difference,
)

# Accuracies are compared in points; differences below this are float noise, not a gap.
_EPSILON = 1e-9

Outcome = Literal["matching", "not matching", "inconclusive"]


@dataclass(frozen=True)
class Comparison:
    """Ticket vs dense for one regime and one metric; accuracies in points.

    ``difference``: ticket − dense with its confidence interval (the interval rule's evidence;
    also filled under the other rules, for the tables). ``delta``: how far below the dense
    model the ticket may fall (δ of the interval rule, the tolerance of the others).
    ``seeds_needed``: for an inconclusive comparison, roughly how many seeds would decide it at
    the observed spread (None when that cannot be said)."""

    regime: str
    metric: str
    seeds: tuple[int, ...]
    ticket_mean: float | None
    dense_mean: float | None
    dense_std: float | None
    difference: Interval | None
    delta: float | None
    outcome: Outcome | None  # None: no common seeds, nothing to compare
    seeds_needed: int | None = None

    @property
    def matching(self) -> bool | None:
        """True matching, False not matching, None inconclusive or not compared."""
        return {"matching": True, "not matching": False}.get(self.outcome or "")


def metric_value(row: Mapping[str, Any], metric: str, selection: str) -> float | None:
    """The test accuracy (points) of ``metric`` for a row under a checkpoint ``selection``."""
    checkpoint = {"per-metric": metric, "best-sa": "sa", "best-ra": "ra"}[selection]
    value = row.get(f"{metric}_best_{checkpoint}")
    if value is None or value == "":
        return None
    value = float(value)
    return None if math.isnan(value) else value


def compare(
    ticket: Mapping[int, float],
    dense: Mapping[int, float],
    *,
    regime: str,
    metric: str,
    config: VerdictConfig,
) -> Comparison:
    """Matching of one metric under one regime; ``ticket``/``dense`` map seed → points."""
    seeds = tuple(sorted(set(ticket) & set(dense)))
    if not seeds:
        return Comparison(regime, metric, (), None, None, None, None, None, None)
    plan = config.seeds if config.rule == "interval" else None
    if plan is not None:
        # Judged at the plan's last look reached, on the first seeds of that look: a look
        # outside the plan would spend error the boundaries did not budget for.
        look = plan.look_at(len(seeds))
        if look is None:
            return _before_first_look(ticket, dense, seeds, regime, metric, config, plan)
        seeds = seeds[:look]
    ticket_values = [ticket[s] for s in seeds]
    dense_values = [dense[s] for s in seeds]
    ticket_mean = statistics.fmean(ticket_values)
    dense_mean = statistics.fmean(dense_values)
    dense_std = statistics.stdev(dense_values) if len(seeds) > 1 else None
    difference, spread = _difference(ticket_values, dense_values, config, plan)
    needed = None
    outcome: Outcome
    if config.rule == "interval":
        delta = max(config.margin_floor, config.std_multiplier * (dense_std or 0.0))
        outcome = _interval_outcome(difference, delta, config)
        if outcome == "inconclusive" and plan is not None:
            needed = looks_to_resolve(
                spread, difference.mean, -delta, len(seeds), plan, config.confidence
            )
        elif outcome == "inconclusive":
            needed = seeds_to_resolve(
                spread, difference.mean, -delta, len(seeds), config.confidence
            )
    else:
        if config.rule == "paper" and dense_std is not None:
            delta = config.std_multiplier * dense_std
        else:
            delta = config.points
        outcome = "matching" if ticket_mean >= dense_mean - delta - _EPSILON else "not matching"
    return Comparison(
        regime,
        metric,
        seeds,
        ticket_mean,
        dense_mean,
        dense_std,
        difference,
        delta,
        outcome,
        needed,
    )


def _difference(
    ticket_values: list[float],
    dense_values: list[float],
    config: VerdictConfig,
    plan: SeedPlan | None,
) -> tuple[Interval, float | None]:
    """The ticket − dense difference with its interval (paired by seed: the t-interval, or the
    group-sequential one under a seed plan; unpaired: Welch's), and the per-seed spread."""
    if config.pairing == "seed":
        diffs = [t - d for t, d in zip(ticket_values, dense_values, strict=True)]
        if plan is not None:
            mean, low, high, n = sequential_interval(diffs, plan, config.confidence)  # type: ignore[misc]
            difference = Interval(mean, low, high, n)
        else:
            difference = mean_interval(diffs, config.confidence)
        spread = statistics.stdev(diffs) if len(diffs) > 1 else None
    else:
        difference = welch_difference(ticket_values, dense_values, config.confidence)
        spread = (
            math.sqrt(statistics.variance(ticket_values) + statistics.variance(dense_values))
            if len(ticket_values) > 1
            else None
        )
    assert difference is not None  # at least one common seed
    return difference, spread


def _interval_outcome(difference: Interval, delta: float, config: VerdictConfig) -> Outcome:
    """The interval rule: matching when the interval's lower end is ≥ −δ, not matching when
    its upper end is < −δ; one seed (no interval) is inconclusive unless ``single_seed:
    margin`` judges its difference against −δ."""
    if difference.low is None or difference.high is None:  # one seed: no interval
        if config.single_seed == "margin":
            return "matching" if difference.mean >= -delta - _EPSILON else "not matching"
        return "inconclusive"
    if difference.low >= -delta - _EPSILON:
        return "matching"
    if difference.high < -delta - _EPSILON:
        return "not matching"
    return "inconclusive"


def _before_first_look(
    ticket: Mapping[int, float],
    dense: Mapping[int, float],
    seeds: tuple[int, ...],
    regime: str,
    metric: str,
    config: VerdictConfig,
    plan: SeedPlan,
) -> Comparison:
    """A comparison with fewer common seeds than the plan's first look: inconclusive, and the
    first look is what would decide it."""
    dense_values = [dense[s] for s in seeds]
    return Comparison(
        regime,
        metric,
        seeds,
        statistics.fmean(ticket[s] for s in seeds),
        statistics.fmean(dense_values),
        statistics.stdev(dense_values) if len(seeds) > 1 else None,
        Interval(statistics.fmean(ticket[s] - dense[s] for s in seeds), None, None, len(seeds)),
        max(config.margin_floor, config.std_multiplier * (_stdev(dense_values) or 0.0)),
        "inconclusive",
        plan.min,
    )


def _stdev(values: Sequence[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else None
