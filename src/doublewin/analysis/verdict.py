"""The double-win verdict (definitions and a worked example in docs/verdict.md).

Matching under transfer regime R ∈ {ST, AT} for metric M ∈ {SA, RA} compares a ticket with its
dense model over the seeds both ran. Three rules (``VerdictConfig.rule``):

- ``interval`` (the default): a non-inferiority decision. The ticket − dense difference, paired
  by seed (or Welch's, for unpaired runs), gets its 95% t-interval; the margin is
  δ = max(``margin_floor``, ``std_multiplier`` × the dense runs' standard deviation). The ticket
  is *matching* when the interval's lower end is ≥ −δ, *not matching* when its upper end is
  < −δ, and *inconclusive* otherwise (and with one seed, unless ``single_seed: margin``).
- ``paper``: the ticket's mean is at least the dense mean minus ``std_multiplier`` × the dense
  standard deviation (``points`` with one seed): the rule of earlier reports.
- ``points``: the ticket's mean is at least the dense mean minus ``points``.

Double-win: matching on every counted comparison (SA and RA under AT; ``st_metrics`` under ST);
not double-win when any counted comparison is not matching; inconclusive otherwise. Extreme
double-win sparsity: the largest ladder sparsity whose ticket is double-win.

Rows are plain mappings with the columns of ``results.csv`` (docs/report.md): ``pretraining``,
``dataset``, ``fraction``, ``method`` (``dense`` for the baseline), ``imp_regime``,
``sparsity``, ``regime`` (``st``/``at``), ``seed`` and the test accuracies in points
``sa_best_sa``, ``ra_best_sa``, ``sa_best_ra``, ``ra_best_ra``.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from doublewin.analysis.stats import (
    Interval,
    mean_interval,
    seeds_to_resolve,
    welch_difference,
)
from doublewin.core.errors import UserError
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
from doublewin.core.typed import Range, checked, from_dict

# Accuracies are compared in points; differences below this are float noise, not a gap.
_EPSILON = 1e-9

Rule = Literal["interval", "paper", "points"]
Outcome = Literal["matching", "not matching", "inconclusive"]
TicketOutcome = Literal["double-win", "not double-win", "inconclusive"]
# Earlier experiment files and run metadata spelled the rule as ``tolerance``.
_LEGACY_TOLERANCE = {"std": "paper", "points": "points"}


@dataclass(frozen=True)
class VerdictConfig:
    """How matching is decided (``verdict:`` in the experiment file; docs/verdict.md).

    ``selection``: which checkpoint's test accuracy counts — ``per-metric`` takes SA at the
    best-val-SA checkpoint and RA at the best-val-RA checkpoint; ``best-sa`` / ``best-ra`` take
    both metrics at one checkpoint.
    """

    rule: Rule = "interval"
    confidence: float = checked(0.95, range=Range(0.5, 1.0, high_open=True))
    margin_floor: float = checked(1.0, range=Range(0.0, 100.0))  # δ never below this (points)
    std_multiplier: float = checked(1.0, range=Range(0.0, 100.0))
    points: float = checked(1.0, range=Range(0.0, 100.0))  # rule points; paper with one seed
    pairing: Literal["seed", "welch"] = "seed"  # interval: paired by seed, or Welch's
    single_seed: Literal["inconclusive", "margin"] = "inconclusive"
    st_metrics: tuple[Literal["sa", "ra"], ...] = ("sa", "ra")
    selection: Literal["per-metric", "best-sa", "best-ra"] = "per-metric"

    def __post_init__(self) -> None:
        if "sa" not in self.st_metrics:
            raise UserError(
                "verdict.st_metrics: must include sa; use [sa, ra] (both metrics) or [sa]"
            )

    def counted(self, regime: str) -> tuple[str, ...]:
        """The metrics that decide double-win under ``regime``."""
        return tuple(m for m in METRICS if m in self.st_metrics) if regime == "st" else METRICS

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None, path: str = "verdict") -> VerdictConfig:
        """From an experiment file's or a run's ``verdict:`` mapping; the earlier key
        ``tolerance: std|points`` reads as ``rule: paper|points``."""
        raw = dict(raw or {})
        if "tolerance" in raw:
            legacy = raw.pop("tolerance")
            if legacy not in _LEGACY_TOLERANCE:
                raise UserError(
                    f"{path}.tolerance: {legacy!r} is not std or points; "
                    "write rule: interval, paper or points instead"
                )
            if "rule" in raw:
                raise UserError(
                    f"{path}: both rule and the earlier key tolerance are set; keep rule only"
                )
            raw["rule"] = _LEGACY_TOLERANCE[legacy]
        return from_dict(cls, raw, path=path)


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


@dataclass(frozen=True)
class TicketVerdict:
    key: TicketKey
    comparisons: tuple[Comparison, ...]
    counted: tuple[tuple[str, str], ...] = tuple((r, m) for r in REGIMES for m in METRICS)

    @property
    def outcome(self) -> TicketOutcome | None:
        """Double-win, not double-win, inconclusive; None when a counted comparison could not
        be made (a missing run) and none failed."""
        found = {(c.regime, c.metric): c.outcome for c in self.comparisons}
        values = [found.get(pair) for pair in self.counted]
        if "not matching" in values:
            return "not double-win"
        if None in values:
            return None
        if "inconclusive" in values:
            return "inconclusive"
        return "double-win"

    @property
    def double_win(self) -> bool | None:
        """True double-win, False not double-win, None inconclusive or undetermined."""
        return {"double-win": True, "not double-win": False}.get(self.outcome or "")

    def comparison(self, regime: str, metric: str) -> Comparison | None:
        for c in self.comparisons:
            if c.regime == regime and c.metric == metric:
                return c
        return None

    def matching(self, regime: str, metric: str) -> bool | None:
        c = self.comparison(regime, metric)
        return None if c is None else c.matching

    @property
    def heading(self) -> TicketOutcome | None:
        """For an inconclusive verdict, where its means point: not double-win when some
        inconclusive counted comparison's mean difference is below −δ, else double-win."""
        if self.outcome != "inconclusive":
            return None
        return "not double-win" if self._failing() else "double-win"

    @property
    def seeds_needed(self) -> int | None:
        """Roughly how many seeds would decide an inconclusive verdict at the observed spread:
        the fewest that fail one comparison heading below −δ (one failure decides), else the
        most that every comparison needs to match. None when that cannot be said."""
        if self.outcome != "inconclusive":
            return None
        failing = [c.seeds_needed for c in self._failing() if c.seeds_needed is not None]
        if self._failing():
            return min(failing) if failing else None
        needs = [c.seeds_needed for c in self._undecided()]
        return None if None in needs else max(n for n in needs if n is not None)

    def _undecided(self) -> list[Comparison]:
        return [
            c
            for c in self.comparisons
            if (c.regime, c.metric) in self.counted and c.outcome == "inconclusive"
        ]

    def _failing(self) -> list[Comparison]:
        return [
            c
            for c in self._undecided()
            if c.difference is not None and c.delta is not None and c.difference.mean < -c.delta
        ]


@dataclass(frozen=True)
class ExtremeSparsity:
    """The extreme double-win sparsity of one ladder."""

    pretraining: str
    dataset: str
    fraction: float
    method: str
    imp_regime: str
    extreme: float | None  # None: no rung is double-win
    # False: a rung below the extreme is not double-win; None: one is inconclusive or missing.
    all_lower_double_win: bool | None
    rungs: tuple[tuple[float, bool | None], ...] = field(default_factory=tuple)
    inconclusive: tuple[float, ...] = ()  # rungs judged inconclusive (not merely missing)


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
    ticket_values = [ticket[s] for s in seeds]
    dense_values = [dense[s] for s in seeds]
    ticket_mean = statistics.fmean(ticket_values)
    dense_mean = statistics.fmean(dense_values)
    dense_std = statistics.stdev(dense_values) if len(seeds) > 1 else None
    if config.pairing == "seed":
        diffs = [t - d for t, d in zip(ticket_values, dense_values, strict=True)]
        difference = mean_interval(diffs, config.confidence)
        spread = statistics.stdev(diffs) if len(diffs) > 1 else None
    else:
        difference = welch_difference(ticket_values, dense_values, config.confidence)
        spread = (
            math.sqrt(statistics.variance(ticket_values) + statistics.variance(dense_values))
            if len(seeds) > 1
            else None
        )
    assert difference is not None  # at least one common seed
    needed = None
    if config.rule == "interval":
        delta = max(config.margin_floor, config.std_multiplier * (dense_std or 0.0))
        if difference.low is None or difference.high is None:  # one seed: no interval
            if config.single_seed == "margin":
                outcome: Outcome = (
                    "matching" if difference.mean >= -delta - _EPSILON else "not matching"
                )
            else:
                outcome = "inconclusive"
        elif difference.low >= -delta - _EPSILON:
            outcome = "matching"
        elif difference.high < -delta - _EPSILON:
            outcome = "not matching"
        else:
            outcome = "inconclusive"
        if outcome == "inconclusive":
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


def verdicts(
    rows: Iterable[Mapping[str, Any]], config: VerdictConfig | None = None
) -> list[TicketVerdict]:
    """A verdict for every ticket in ``rows`` against the dense rows of the same pre-training,
    dataset and fraction. Dense rows themselves get no verdict."""
    config = config or VerdictConfig()
    counted = tuple((r, m) for r in REGIMES for m in config.counted(r))
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
        out.append(TicketVerdict(key, comparisons, counted))
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
        all_lower: bool | None = None
        if extreme is not None:
            lower = [dw for s, dw in rungs if s < extreme]
            all_lower = False if False in lower else (None if None in lower else True)
        out.append(
            ExtremeSparsity(
                *group,
                extreme=extreme,
                all_lower_double_win=all_lower,
                rungs=rungs,
                inconclusive=tuple(v.key.sparsity for v in items if v.outcome == "inconclusive"),
            )
        )
    return out


def _sort_key(key: TicketKey) -> tuple:
    return (*_group_sort(key.group), key.sparsity)


def _group_sort(group: tuple) -> tuple:
    pretraining, dataset, fraction, method, imp_regime = group
    return (pretraining, dataset, -fraction, method, imp_regime)
