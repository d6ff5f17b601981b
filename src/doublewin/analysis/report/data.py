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
from doublewin.analysis.summaries import Cell, CellKey, Stat, known_extreme, percent
from doublewin.analysis.verdict import ExtremeSparsity, TicketVerdict, VerdictConfig
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
    if e is None:
        return "—"
    if e.extreme is None:
        return "none" if known_extreme(e) == 0.0 else "?"
    mark = {True: "", False: " †", None: " ‡"}[e.all_lower_double_win]
    return percent(e.extreme) + mark


def rung_mark(e: ExtremeSparsity, sparsity: float, double_win: bool | None) -> str:
    """The MARK of one rung of ``e``."""
    if double_win is not None:
        return MARK["double-win" if double_win else "not double-win"]
    return MARK["inconclusive" if sparsity in e.inconclusive else None]


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
