"""A ladder's extreme double-win sparsity as a bracket: what the judged rungs say about it.

Only transferred rungs are judged, so the extreme (the largest rung certified double-win) is
known from below; the rung right above it says how far: *certified not double-win* (the extreme
is decided), *inconclusive*, *undetermined* (a run missing) or *not transferred*. A ladder is
**decided** when that next rung is certified not double-win or the extreme is the ladder's top
rung.

Reading a bracket as a set of possible extremes assumes the monotonicity the extreme's
definition reads into a ladder: **a rung above a certified failure is not double-win either**.
The extreme then lies at or above the largest certified double-win rung (0%, the dense model,
when none is) and below the first certified failure above it; with no such failure, anywhere up
to the top rung. Comparisons of brackets (``order``) count only where those sets do not overlap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

DOUBLE_WIN = "double-win"
NOT_DOUBLE_WIN = "not double-win"
INCONCLUSIVE = "inconclusive"
UNDETERMINED = "undetermined"
NOT_TRANSFERRED = "not transferred"
RungState = Literal[
    "double-win", "not double-win", "inconclusive", "undetermined", "not transferred"
]
Order = Literal["higher", "lower", "equal", "overlap"]


@dataclass(frozen=True)
class LadderRung:
    """One rung of a ladder and what is known of it."""

    number: int | None  # 1-based place on the ladder, where known
    sparsity: float | None  # None: a results table that names the rung's number only
    state: str  # a RungState

    def text(self) -> str:
        """``59.00%``, or ``rung 4`` when only its number is known."""
        if self.sparsity is not None:
            return f"{100 * self.sparsity:.2f}%"
        return f"rung {self.number}"


@dataclass(frozen=True)
class Span:
    """The sparsities a ladder's extreme can take: from ``low`` to ``high``, ``high`` itself
    excluded when ``open`` (the first certified failure, where the rungs below it are not all
    known)."""

    low: float
    high: float
    open: bool = False

    @property
    def point(self) -> bool:
        return self.low == self.high and not self.open


def build_ladder(
    judged: Mapping[float, str],
    ladder: Sequence[float] | None = None,
    numbers: Mapping[float, int] | None = None,
) -> tuple[LadderRung, ...]:
    """Every rung of a ladder in order with its state. ``judged``: sparsity → state of the
    transferred rungs; ``ladder``: every rung's sparsity where the plan is known (a run);
    ``numbers``: sparsity → 1-based rung number as a results table gives them, to place the
    rungs a table does not name (used when ``ladder`` is None and the numbers are consistent)."""
    if ladder is not None:
        known = sorted({*ladder, *judged})
        place = {s: i + 1 for i, s in enumerate(sorted(set(ladder)))}
        return tuple(LadderRung(place.get(s), s, judged.get(s, NOT_TRANSFERRED)) for s in known)
    ordered = sorted(judged)
    numbered = [numbers.get(s) for s in ordered] if numbers else []
    if numbered and _consistent(numbered):
        by_number = dict(zip(numbered, ordered, strict=True))
        return tuple(
            LadderRung(
                n, by_number.get(n), judged[by_number[n]] if n in by_number else NOT_TRANSFERRED
            )
            for n in range(1, max(by_number) + 1)
        )
    return tuple(LadderRung(None, s, judged[s]) for s in ordered)


def _consistent(numbers: Sequence[int | None]) -> bool:
    """Rung numbers that can place a table's rungs: all known, positive, rising with sparsity."""
    if any(n is None or n < 1 for n in numbers):
        return False
    return all(a < b for a, b in zip(numbers, numbers[1:], strict=False))  # type: ignore[operator]


def extreme_index(ladder: Sequence[LadderRung]) -> int | None:
    """Index of the largest certified double-win rung, None when none is."""
    winners = [i for i, r in enumerate(ladder) if r.state == DOUBLE_WIN]
    return winners[-1] if winners else None


def next_rung(ladder: Sequence[LadderRung]) -> LadderRung | None:
    """The rung right above the extreme (the first rung when none is double-win); None when
    the extreme is the top rung."""
    index = extreme_index(ladder)
    above = 0 if index is None else index + 1
    return ladder[above] if above < len(ladder) else None


def decided(ladder: Sequence[LadderRung]) -> bool:
    """The extreme is known to one rung: the next rung up is certified not double-win, or the
    extreme is the top rung."""
    if not ladder:
        return False
    following = next_rung(ladder)
    return following is None or following.state == NOT_DOUBLE_WIN


def span(ladder: Sequence[LadderRung]) -> Span | None:
    """The sparsities the extreme can take under monotonicity (0.0: no rung double-win), None
    for an empty ladder."""
    if not ladder:
        return None
    low, candidates, failure = _open_part(ladder)
    if failure is not None and any(r.sparsity is None for r in candidates):
        # A rung known by its number only: anything below the failure is possible.
        return Span(low, float(failure.sparsity), open=True)  # type: ignore[arg-type]
    known = [float(r.sparsity) for r in candidates if r.sparsity is not None]
    return Span(low, max([low, *known]))


def _open_part(
    ladder: Sequence[LadderRung],
) -> tuple[float, tuple[LadderRung, ...], LadderRung | None]:
    """The extreme's sparsity (0.0 for none), the rungs above it up to the first certified
    failure (exclusive), and that failure (None: no failure above the extreme)."""
    index = extreme_index(ladder)
    low = 0.0 if index is None else float(ladder[index].sparsity or 0.0)
    above = tuple(ladder[0 if index is None else index + 1 :])
    for i, rung in enumerate(above):
        if rung.state == NOT_DOUBLE_WIN:
            return low, above[:i], rung
    return low, above, None


def highest(spans: Iterable[Span]) -> Span | None:
    """The span of the largest of several extremes (the best of a group of pre-trainings)."""
    spans = list(spans)
    if not spans:
        return None
    low = max(s.low for s in spans)
    top = max(spans, key=lambda s: (s.high, not s.open))
    return Span(low, top.high, top.open)


def order(a: Span, b: Span) -> Order:
    """Where ``a`` stands against ``b``: certainly higher, lower or equal, or ``overlap`` when
    the rungs judged cannot tell."""
    if _above(a, b):
        return "higher"
    if _above(b, a):
        return "lower"
    if a.point and b.point and a.low == b.low:
        return "equal"
    return "overlap"


def _above(a: Span, b: Span) -> bool:
    """Every value ``a`` can take is above every value ``b`` can take."""
    return a.low > b.high or (a.low == b.high and b.open)


def bracket_text(ladder: Sequence[LadderRung]) -> str:
    """The bracket in words: ``double-win up to 49.00% (59.00% fails)``."""
    if not ladder:
        return "no rung judged"
    index = extreme_index(ladder)
    following = next_rung(ladder)
    head = "no rung double-win" if index is None else f"double-win up to {ladder[index].text()}"
    if following is None:
        return f"{head}, the top rung"
    tail = {
        NOT_DOUBLE_WIN: "fails",
        INCONCLUSIVE: "is inconclusive",
        UNDETERMINED: "is undetermined (a run is missing)",
        NOT_TRANSFERRED: "was not transferred",
        DOUBLE_WIN: "passes",
    }[following.state]
    return f"{head} ({following.text()} {tail})"


def deciding_rungs(ladder: Sequence[LadderRung]) -> tuple[LadderRung, ...]:
    """The rungs whose judgement would narrow an undecided bracket: every rung between the
    extreme and the first certified failure above it (none for a decided bracket)."""
    if decided(ladder):
        return ()
    return _open_part(ladder)[1]


def possible_places(ladder: Sequence[LadderRung]) -> tuple[int, ...]:
    """The places on the ladder the extreme can take under monotonicity: 0 for no rung
    double-win, else the rung's number (its position when the table gives none)."""
    if not ladder:
        return ()
    index = extreme_index(ladder)
    places = [0 if index is None else _place(ladder, index)]
    start = 0 if index is None else index + 1
    for i in range(start, len(ladder)):
        if ladder[i].state == NOT_DOUBLE_WIN:
            break
        places.append(_place(ladder, i))
    return tuple(places)


def _place(ladder: Sequence[LadderRung], index: int) -> int:
    number = ladder[index].number
    return number if number is not None else index + 1


def lowest_from(ladder: Sequence[LadderRung], sparsity: float) -> LadderRung | None:
    """The lowest rung at or above ``sparsity``: a rung known by its number only counts when
    the next rung whose sparsity is known is at or above it (it may be the one). None when the
    ladder stops below."""
    for i, rung in enumerate(ladder):
        if rung.sparsity is not None:
            if rung.sparsity >= sparsity:
                return rung
            continue
        following = next((r.sparsity for r in ladder[i + 1 :] if r.sparsity is not None), None)
        if following is None or following >= sparsity:
            return rung
    return None
