"""How matching is decided: ``verdict:`` in an experiment file, or ``doublewin verdict --config``
(docs/verdict.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from doublewin.analysis.verdict.sequential import SeedPlan
from doublewin.core.errors import UserError
from doublewin.core.results import METRICS
from doublewin.core.typed import Range, checked, from_dict

Rule = Literal["interval", "paper", "points"]


@dataclass(frozen=True)
class VerdictConfig:
    """How matching is decided (``verdict:`` in the experiment file; docs/verdict.md).

    ``selection``: which checkpoint's test accuracy counts — ``per-metric`` takes SA at the
    best-val-SA checkpoint and RA at the best-val-RA checkpoint; ``best-sa`` / ``best-ra`` take
    both metrics at one checkpoint. ``seeds``: the plan of a run whose seeds were added on
    demand; the interval rule then judges each comparison at the plan's last look its seeds
    reach, with the group-sequential interval of that look (sequential.py). None: the seeds
    were fixed in advance, the fixed-sample interval.
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
    seeds: SeedPlan | None = None

    def __post_init__(self) -> None:
        if "sa" not in self.st_metrics:
            raise UserError(
                "verdict.st_metrics: must include sa; use [sa, ra] (both metrics) or [sa]"
            )
        if self.seeds is not None and self.rule != "interval":
            raise UserError(
                f"verdict.rule: {self.rule} has no interval, so seeds cannot be added on "
                "demand (verdict.seeds, --seeds auto); use rule: interval"
            )
        if self.seeds is not None and self.pairing != "seed":
            raise UserError(
                "verdict.pairing: seeds on demand (verdict.seeds, --seeds auto) pair the runs "
                "by seed; use pairing: seed"
            )

    def counted(self, regime: str) -> tuple[str, ...]:
        """The metrics that decide double-win under ``regime``."""
        return tuple(m for m in METRICS if m in self.st_metrics) if regime == "st" else METRICS

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None, path: str = "verdict") -> VerdictConfig:
        """From an experiment file's or a run's ``verdict:`` mapping."""
        return from_dict(cls, dict(raw or {}), path=path)
