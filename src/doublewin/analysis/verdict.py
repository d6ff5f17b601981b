"""The double-win verdict (definitions in docs/verdict.md).

Matching under transfer regime R ∈ {ST, AT} for metric M ∈ {SA, RA}: the ticket's mean M is at
least the dense model's mean M minus a tolerance, both over the same seeds. The default
tolerance is one standard deviation of the dense runs; with a single dense seed it is a fixed
number of points. Double-win: matching for both metrics under both regimes. Extreme double-win
sparsity: the largest ladder sparsity whose ticket is double-win.

Rows are plain mappings with the columns of ``results.csv``: ``pretraining``, ``dataset``,
``fraction``, ``method`` (``dense`` for the baseline), ``imp_regime``, ``sparsity`` (fraction),
``regime`` (``st``/``at``), ``seed`` and the test accuracies in points ``sa_best_sa``,
``ra_best_sa``, ``sa_best_ra``, ``ra_best_ra`` (SA/RA at the best-val-SA / best-val-RA
checkpoint).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from doublewin.core.results import (
    METRICS,
    REGIMES,
    LadderKey,
    is_dense,
    ladder_of,
    regime_of,
    setting_of,
    sparsity_of,
)

# Accuracies are compared in points; differences below this are float noise, not a gap.
_EPSILON = 1e-9


@dataclass(frozen=True)
class VerdictConfig:
    """How matching is decided.

    ``tolerance``: ``std`` = ``std_multiplier`` × the sample standard deviation of the dense
    runs (``points`` when only one dense seed ran); ``points`` = always ``points``.
    ``selection``: which checkpoint's test accuracy counts — ``per-metric`` takes SA at the
    best-val-SA checkpoint and RA at the best-val-RA checkpoint; ``best-sa`` / ``best-ra`` take
    both metrics at one checkpoint.
    """

    tolerance: Literal["std", "points"] = "std"
    std_multiplier: float = 1.0
    points: float = 1.0
    selection: Literal["per-metric", "best-sa", "best-ra"] = "per-metric"


@dataclass(frozen=True)
class TicketKey:
    """One ticket transferred to one downstream setting (all seeds and regimes together)."""

    pretraining: str
    dataset: str
    fraction: float
    method: str
    imp_regime: str
    sparsity: float

    @property
    def group(self) -> LadderKey:
        """The ladder this ticket sits on (everything but the sparsity)."""
        return (self.pretraining, self.dataset, self.fraction, self.method, self.imp_regime)


@dataclass(frozen=True)
class Comparison:
    """Ticket vs dense for one regime and one metric; accuracies in points."""

    regime: str
    metric: str
    seeds: tuple[int, ...]
    ticket_mean: float | None
    dense_mean: float | None
    dense_std: float | None
    tolerance: float | None
    matching: bool | None  # None: no common seeds, nothing to compare

    @property
    def margin(self) -> float | None:
        """Points by which the ticket clears (≥ 0) or misses (< 0) the matching bar."""
        if self.ticket_mean is None or self.dense_mean is None or self.tolerance is None:
            return None
        return self.ticket_mean - (self.dense_mean - self.tolerance)


@dataclass(frozen=True)
class TicketVerdict:
    key: TicketKey
    comparisons: tuple[Comparison, ...]

    @property
    def double_win(self) -> bool | None:
        """True/False when all four comparisons were made; None when any is missing."""
        found = {(c.regime, c.metric): c.matching for c in self.comparisons}
        values = [found.get((r, m)) for r in REGIMES for m in METRICS]
        if any(v is False for v in values):
            return False
        if any(v is None for v in values):
            return None
        return True

    def matching(self, regime: str, metric: str) -> bool | None:
        for c in self.comparisons:
            if c.regime == regime and c.metric == metric:
                return c.matching
        return None


@dataclass(frozen=True)
class ExtremeSparsity:
    """The extreme double-win sparsity of one ladder."""

    pretraining: str
    dataset: str
    fraction: float
    method: str
    imp_regime: str
    extreme: float | None  # None: no rung is double-win
    all_lower_double_win: bool | None  # every tested rung below the extreme is double-win
    rungs: tuple[tuple[float, bool | None], ...] = field(default_factory=tuple)


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
        return Comparison(regime, metric, (), None, None, None, None, None)
    ticket_mean = statistics.fmean(ticket[s] for s in seeds)
    dense_values = [dense[s] for s in seeds]
    dense_mean = statistics.fmean(dense_values)
    dense_std = statistics.stdev(dense_values) if len(dense_values) > 1 else None
    if config.tolerance == "std" and dense_std is not None:
        tolerance = config.std_multiplier * dense_std
    else:
        tolerance = config.points
    matching = ticket_mean >= dense_mean - tolerance - _EPSILON
    return Comparison(
        regime, metric, seeds, ticket_mean, dense_mean, dense_std, tolerance, matching
    )


def verdicts(
    rows: Iterable[Mapping[str, Any]], config: VerdictConfig | None = None
) -> list[TicketVerdict]:
    """A verdict for every ticket in ``rows`` against the dense rows of the same pre-training,
    dataset and fraction. Dense rows themselves get no verdict."""
    config = config or VerdictConfig()
    # (pretraining, dataset, fraction) -> regime -> metric -> seed -> value
    dense: dict[tuple, dict[str, dict[str, dict[int, float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(dict))
    )
    tickets: dict[TicketKey, dict[str, dict[str, dict[int, float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(dict))
    )
    for row in rows:
        regime, seed = regime_of(row), int(row["seed"])
        for metric in METRICS:
            value = metric_value(row, metric, config.selection)
            if value is None:
                continue
            if is_dense(row):
                dense[setting_of(row)][regime][metric][seed] = value
            else:
                key = TicketKey(*ladder_of(row), sparsity_of(row))
                tickets[key][regime][metric][seed] = value
    out = []
    for key in sorted(tickets, key=_sort_key):
        baseline = dense.get((key.pretraining, key.dataset, key.fraction), {})
        comparisons = tuple(
            compare(
                tickets[key].get(r, {}).get(m, {}),
                baseline.get(r, {}).get(m, {}),
                regime=r,
                metric=m,
                config=config,
            )
            for r in REGIMES
            for m in METRICS
        )
        out.append(TicketVerdict(key, comparisons))
    return out


def extreme_sparsities(ticket_verdicts: Sequence[TicketVerdict]) -> list[ExtremeSparsity]:
    """Per ladder: the largest sparsity whose ticket is double-win, and whether every lower
    rung is double-win too."""
    ladders: dict[tuple, list[TicketVerdict]] = defaultdict(list)
    for verdict in ticket_verdicts:
        ladders[verdict.key.group].append(verdict)
    out = []
    for group, items in sorted(ladders.items(), key=lambda kv: _group_sort(kv[0])):
        items = sorted(items, key=lambda v: v.key.sparsity)
        rungs = tuple((v.key.sparsity, v.double_win) for v in items)
        winners = [s for s, dw in rungs if dw]
        extreme = max(winners) if winners else None
        if extreme is None:
            all_lower = None
        else:
            all_lower = all(dw is True for s, dw in rungs if s < extreme)
        out.append(
            ExtremeSparsity(*group, extreme=extreme, all_lower_double_win=all_lower, rungs=rungs)
        )
    return out


def _sort_key(key: TicketKey) -> tuple:
    return (*_group_sort(key.group), key.sparsity)


def _group_sort(group: tuple) -> tuple:
    pretraining, dataset, fraction, method, imp_regime = group
    return (pretraining, dataset, -fraction, method, imp_regime)
