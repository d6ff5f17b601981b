"""What the report's sections read (``ReportData``, computed once from the rows) and the small
formatting helpers they share. Accuracies in points (0–100) as mean ± the half-width of the
95% t-interval over seeds; sparsities and data fractions in percent.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from doublewin.analysis.findings import Finding
from doublewin.analysis.summaries import Cell, CellKey, Stat, percent
from doublewin.analysis.verdict import ExtremeSparsity, LadderRung, TicketVerdict, VerdictConfig
from doublewin.analysis.verdict.bracket import NOT_TRANSFERRED, UNDETERMINED
from doublewin.analysis.verdict.control import ControlComparison
from doublewin.core.results import REGIMES, Setting

# A ticket's verdict as one character: double-win, not, inconclusive, undetermined (a run missing).
MARK = {"double-win": "✓", "not double-win": "✗", "inconclusive": "~", None: "?"}
# One comparison's outcome as one character (None: not compared).
COMPARISON_MARK = {"matching": "✓", "not matching": "✗", "inconclusive": "~", None: "?"}
MARK_LEGEND = "✓ double-win, ✗ not double-win, ~ inconclusive, ? undetermined (a run missing)"


@dataclass(frozen=True)
class ReportData:
    """Everything the sections read, computed once from the rows."""

    rows: Sequence[Mapping[str, Any]]
    meta: Mapping[str, Any]
    config: VerdictConfig
    cells: Mapping[CellKey, Cell]
    verdicts: Sequence[TicketVerdict]
    extremes: Sequence[ExtremeSparsity]
    kinds: Mapping[str, str | None]
    pretrainings: Sequence[str]  # in the experiment's order
    datasets: Sequence[str]
    fractions: Sequence[float]  # largest first
    ladders: Sequence[tuple[str, str]]  # (method, IMP regime), dense excluded
    primary: tuple[str, str] | None
    findings: Sequence[Finding]
    control: ControlComparison

    @property
    def double_win(self) -> dict[tuple[str, str, float, str, str, float], bool | None]:
        return {(*v.key.group, v.key.sparsity): v.double_win for v in self.verdicts}

    @property
    def outcomes(self) -> dict[tuple[str, str, float, str, str, float], str | None]:
        """Ticket → double-win / not double-win / inconclusive / None (undetermined)."""
        return {(*v.key.group, v.key.sparsity): v.outcome for v in self.verdicts}


def settings(data: ReportData) -> list[Setting]:
    settings = {k.setting for k in data.cells}
    return sorted(settings, key=lambda s: (pretraining_index(data, s[0]), s[1], -s[2]))


def setting_order(data: ReportData):
    return lambda k: (
        pretraining_index(data, k.pretraining),
        k.dataset,
        -k.fraction,
        REGIMES.index(k.regime) if k.regime in REGIMES else 2,
        k.regime,
    )


def pretraining_index(data: ReportData, label: str) -> int:
    return data.pretrainings.index(label) if label in data.pretrainings else len(data.pretrainings)


def extreme_text(e: ExtremeSparsity | None) -> str:
    """A ladder's extreme for a table: the decided value (``49.00%``, ``none``), else the
    sparsities its bracket allows (``20.0–87.0%``; ``<`` before a bound that is itself a
    certified failure of a ladder whose rungs are not all known), with † or ‡ for a lower rung
    not double-win or undecided."""
    if e is None or e.span is None:
        return "—"
    value = e.span
    mark = "" if e.extreme is None else {True: "", False: " †", None: " ‡"}[e.all_lower_double_win]
    if value.point:
        return ("none" if value.low == 0.0 else percent(value.low)) + mark
    high = f"<{100 * value.high:.1f}" if value.open else f"{100 * value.high:.1f}"
    return f"{100 * value.low:.1f}–{high}%{mark}"


def ladder_rung_text(rung: LadderRung) -> str:
    """One rung for the rung-by-rung table: its sparsity (or ``#n``) and its MARK, ``·`` for a
    rung never transferred."""
    where = f"{100 * rung.sparsity:.1f}" if rung.sparsity is not None else f"#{rung.number}"
    if rung.state == NOT_TRANSFERRED:
        return f"{where}·"
    return where + MARK[None if rung.state == UNDETERMINED else rung.state]


def mean(values: Sequence[float]) -> str:
    return f"{statistics.fmean(values):.2f}" if values else "—"


def points(value: float) -> str:
    return f"{value:g} point" + ("" if value == 1 else "s")


def stat(value: Stat | None) -> str:
    return "—" if value is None else value.text()


def number(value: Any) -> str:
    return f"{float(value):.2f}" if is_number(value) else "—"


def is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, bool)


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "x"
