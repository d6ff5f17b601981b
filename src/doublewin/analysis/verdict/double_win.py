"""Double-win: a ticket's four comparisons together, every ticket of a results table, and each
ladder's extreme double-win sparsity."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from doublewin.analysis.verdict import bracket
from doublewin.analysis.verdict.bracket import UNDETERMINED, LadderRung, Span
from doublewin.analysis.verdict.config import VerdictConfig
from doublewin.analysis.verdict.matching import Comparison, compare, metric_value
from doublewin.core.results import METRICS, REGIMES, LadderKey, transfer_place

TicketOutcome = Literal["double-win", "not double-win", "inconclusive"]


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
    """The extreme double-win sparsity of one ladder, and the bracket its judged rungs give it
    (bracket.py: the next rung up, whether it is decided, the sparsities it can take)."""

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
    # Every rung of the ladder, transferred or not, with its state (the judged rungs alone
    # where the plan is unknown).
    ladder: tuple[LadderRung, ...] = ()

    def __post_init__(self) -> None:
        if not self.ladder and self.rungs:
            # Built from its judged rungs alone: the ladder is those rungs.
            judged = {s: _state(s, dw, self.inconclusive) for s, dw in self.rungs}
            object.__setattr__(self, "ladder", bracket.build_ladder(judged))

    @property
    def group(self) -> LadderKey:
        return (self.pretraining, self.dataset, self.fraction, self.method, self.imp_regime)

    @property
    def next_rung(self) -> LadderRung | None:
        """The rung right above the extreme; None when the extreme is the top rung."""
        return bracket.next_rung(self.ladder)

    @property
    def decided(self) -> bool:
        """The next rung up is certified not double-win, or the extreme is the top rung."""
        return bracket.decided(self.ladder)

    @property
    def span(self) -> Span | None:
        """The sparsities the extreme can take, assuming monotonicity (bracket.py)."""
        return bracket.span(self.ladder)

    @property
    def bracket_text(self) -> str:
        """``double-win up to 49.00% (59.00% fails)``."""
        return bracket.bracket_text(self.ladder)

    @property
    def deciding_rungs(self) -> tuple[LadderRung, ...]:
        """The rungs whose judgement would narrow an undecided bracket."""
        return bracket.deciding_rungs(self.ladder)


def _state(sparsity: float, double_win: bool | None, inconclusive: tuple[float, ...]) -> str:
    if double_win is not None:
        return "double-win" if double_win else "not double-win"
    return "inconclusive" if sparsity in inconclusive else UNDETERMINED


# seed → accuracy (points), per regime and metric
Accuracies = dict[str, dict[str, dict[int, float]]]


def accuracies(
    rows: Iterable[Mapping[str, Any]], selection: str
) -> tuple[dict[tuple, Accuracies], dict[TicketKey, Accuracies]]:
    """The test accuracies of ``rows`` read under the checkpoint ``selection``: the dense
    models' by (pretraining, dataset, fraction), the tickets' by ticket."""
    dense: dict[tuple, Accuracies] = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    tickets: dict[TicketKey, Accuracies] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(dict))
    )
    for row in rows:
        regime, setting, ladder, sparsity = transfer_place(row)
        seed = int(row["seed"])
        for metric in METRICS:
            value = metric_value(row, metric, selection)
            if value is None:
                continue
            if ladder is None:
                dense[setting][regime][metric][seed] = value
            else:
                tickets[TicketKey(*ladder, sparsity)][regime][metric][seed] = value
    return dense, tickets


def verdicts(
    rows: Iterable[Mapping[str, Any]], config: VerdictConfig | None = None
) -> list[TicketVerdict]:
    """A verdict for every ticket in ``rows`` against the dense rows of the same pre-training,
    dataset and fraction. Dense rows themselves get no verdict."""
    config = config or VerdictConfig()
    dense, tickets = accuracies(rows, config.selection)
    return [
        judge(
            tickets[key], dense.get((key.pretraining, key.dataset, key.fraction), {}), key, config
        )
        for key in sorted(tickets, key=_sort_key)
    ]


def judge(
    ticket: Mapping[str, Mapping[str, Mapping[int, float]]],
    dense: Mapping[str, Mapping[str, Mapping[int, float]]],
    key: TicketKey,
    config: VerdictConfig,
) -> TicketVerdict:
    """The verdict of one ticket's accuracies against its dense model's (regime → metric →
    seed → points)."""
    counted = tuple((r, m) for r in REGIMES for m in config.counted(r))
    comparisons = tuple(
        compare(
            ticket.get(r, {}).get(m, {}),
            dense.get(r, {}).get(m, {}),
            regime=r,
            metric=m,
            config=config,
        )
        for r in REGIMES
        for m in METRICS
    )
    return TicketVerdict(key, comparisons, counted)


def extreme_sparsities(
    ticket_verdicts: Sequence[TicketVerdict],
    ladders: Mapping[tuple[str, str, str], Sequence[float]] | None = None,
    numbers: Mapping[LadderKey, Mapping[float, int]] | None = None,
) -> list[ExtremeSparsity]:
    """Per ladder: the largest sparsity whose ticket is double-win, whether every lower rung is
    double-win too, and its bracket. ``ladders``: (pre-training, method, IMP regime) → every
    rung's sparsity, where the plan is known; ``numbers``: ladder → sparsity → rung number, as
    a results table's ``rung`` column gives them (``rung_numbers``), to place untransferred
    rungs when the plan is not known."""
    groups: dict[tuple, list[TicketVerdict]] = defaultdict(list)
    for verdict in ticket_verdicts:
        groups[verdict.key.group].append(verdict)
    out = []
    for group, items in sorted(groups.items(), key=lambda kv: _group_sort(kv[0])):
        items = sorted(items, key=lambda v: v.key.sparsity)
        rungs = tuple((v.key.sparsity, v.double_win) for v in items)
        winners = [s for s, dw in rungs if dw]
        extreme = max(winners) if winners else None
        all_lower: bool | None = None
        if extreme is not None:
            lower = [dw for s, dw in rungs if s < extreme]
            all_lower = False if False in lower else (None if None in lower else True)
        pretraining, _, _, method, imp_regime = group
        plan = (ladders or {}).get((pretraining, method, imp_regime))
        judged = {v.key.sparsity: v.outcome or UNDETERMINED for v in items}
        out.append(
            ExtremeSparsity(
                *group,
                extreme=extreme,
                all_lower_double_win=all_lower,
                rungs=rungs,
                inconclusive=tuple(v.key.sparsity for v in items if v.outcome == "inconclusive"),
                ladder=bracket.build_ladder(judged, plan, (numbers or {}).get(group)),
            )
        )
    return out


def rung_numbers(rows: Iterable[Mapping[str, Any]]) -> dict[LadderKey, dict[float, int]]:
    """Per ladder, sparsity → the 1-based rung number of a results table's ``rung`` column
    (rows without a usable number are left out)."""
    out: dict[LadderKey, dict[float, int]] = defaultdict(dict)
    for row in rows:
        _, _, ladder, sparsity = transfer_place(row)
        if ladder is None:
            continue
        try:
            number = int(float(row.get("rung") or ""))
        except (TypeError, ValueError):
            continue
        out[ladder][sparsity] = number
    return dict(out)


def _sort_key(key: TicketKey) -> tuple:
    return (*_group_sort(key.group), key.sparsity)


def _group_sort(group: tuple) -> tuple:
    pretraining, dataset, fraction, method, imp_regime = group
    return (pretraining, dataset, -fraction, method, imp_regime)
