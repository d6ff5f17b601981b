"""Means and spreads of the result rows, the tables the report and the findings read.

Accuracies are in points (0–100) and follow the verdict's checkpoint ``selection`` (by default
SA at the best-val-SA checkpoint, RA at the best-val-RA one), so the numbers shown are the
numbers judged. Unlike the verdict, which compares a ticket with the dense model on their
common seeds only, these summaries average every seed a cell has; both counts are shown.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from doublewin.analysis.verdict import ExtremeSparsity, TicketKey, VerdictConfig, metric_value
from doublewin.analysis.verdict.stats import mean_interval
from doublewin.core.results import (
    METRICS,
    REGIMES,
    UNSTRUCTURED,
    Setting,
    ladder_of,
    regime_of,
    sparsity_of,
    split_method,
)

# ``control``: the no-pre-training control (seeded initialization, not trained).
PRETRAINING_KINDS = ("std", "fat", "at", "control")
_KIND_NAMES = {
    "std": "standard",
    "fat": "fast adversarial (FAT)",
    "at": "PGD adversarial (AT)",
    "control": "none (the no-pre-training control)",
}
_METHOD_NAMES = {
    "imp": "IMP",
    "omp": "OMP",
    "random": "random",
    "snip": "SNIP",
    "grasp": "GraSP",
    "synflow": "SynFlow",
    "gem-miner": "Gem-Miner",
    "gem_miner": "Gem-Miner",
    "supertickets": "SuperTickets",
    "search-then-prune": "search-then-prune",
    "hydra": "HYDRA",
    "harp": "HARP",
    "lwm": "LWM",
    "dense": "dense",
}


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation and the half-width of the 95% t-interval of the mean
    (both None for one value) of ``n`` values, in points."""

    mean: float
    std: float | None
    n: int
    half: float | None = None

    def text(self, digits: int = 2) -> str:
        """``90.00 ± 2.54`` (± the 95% interval's half-width), or ``90.00`` for one seed."""
        if self.half is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.half:.{digits}f}"


def stat(values: Iterable[float]) -> Stat | None:
    values = [v for v in values if not math.isnan(v)]
    interval = mean_interval(values)
    if interval is None:
        return None
    std = statistics.stdev(values) if len(values) > 1 else None
    half = None if interval.high is None else interval.high - interval.mean
    return Stat(interval.mean, std, len(values), half)


@dataclass(frozen=True)
class CellKey(TicketKey):
    """One transfer setting of one ticket (or the dense model) under one regime."""

    regime: str

    @property
    def ladder(self) -> tuple[str, str]:
        return (self.method, self.imp_regime)

    @property
    def setting(self) -> Setting:
        return (self.pretraining, self.dataset, self.fraction)


@dataclass(frozen=True)
class Cell:
    key: CellKey
    sa: Stat | None
    ra: Stat | None
    seeds: tuple[int, ...]

    def metric(self, metric: str) -> Stat | None:
        return self.sa if metric == "sa" else self.ra


def aggregate(rows: Iterable[Mapping[str, Any]], config: VerdictConfig) -> dict[CellKey, Cell]:
    """Per (pre-training, dataset, fraction, method, IMP regime, sparsity, regime): SA and RA
    over seeds, read at the checkpoints ``config.selection`` names."""
    values: dict[CellKey, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for row in rows:
        # A row without accuracies still makes its cell known (both stats None).
        by_metric = values[cell_key(row)]
        seed = int(row["seed"])
        for metric in METRICS:
            value = metric_value(row, metric, config.selection)
            if value is not None:
                by_metric[metric][seed] = value
    out = {}
    for key, by_metric in values.items():
        seeds = sorted(set(by_metric.get("sa", {})) | set(by_metric.get("ra", {})))
        out[key] = Cell(
            key,
            stat(by_metric.get("sa", {}).values()),
            stat(by_metric.get("ra", {}).values()),
            tuple(seeds),
        )
    return out


def cell_key(row: Mapping[str, Any]) -> CellKey:
    return CellKey(*ladder_of(row), sparsity_of(row), regime_of(row))


def dense_cell(
    cells: Mapping[CellKey, Cell], setting: tuple[str, str, float], regime: str
) -> Cell | None:
    return cells.get(CellKey(*setting, "dense", "", 0.0, regime))


def ticket_score(
    cells: Mapping[CellKey, Cell],
    setting: tuple[str, str, float],
    ladder: tuple[str, str],
    sparsity: float,
) -> float | None:
    """Mean of the four accuracies (ST SA, ST RA, AT SA, AT RA; points) of one ticket, or
    None when any of the four is missing: one number to rank tickets by."""
    parts = []
    for regime in REGIMES:
        cell = cells.get(CellKey(*setting, *ladder, round(sparsity, 6), regime))
        for metric in METRICS:
            value = cell.metric(metric) if cell else None
            if value is None:
                return None
            parts.append(value.mean)
    return statistics.fmean(parts)


def pretraining_kinds(labels: Iterable[str], meta: Mapping[str, Any]) -> dict[str, str | None]:
    """Label → ``std``/``fat``/``at``/``control`` (or None): the metadata's regime, else a
    label that is a kind's own name (STD, FAT, AT, CONTROL, in any case). Nothing is guessed
    from other words in a label."""
    given = {str(p.get("label")): p for p in meta_pretrainings(meta)}
    out: dict[str, str | None] = {}
    for label in labels:
        regime = str(given.get(label, {}).get("regime") or "").lower()
        named = label.strip().lower()
        out[label] = next((k for k in (regime, named) if k in PRETRAINING_KINDS), None)
    return out


def meta_pretrainings(meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The metadata's pre-trainings as a list of dicts with a ``label`` (accepts a list of
    dicts or a mapping label → dict)."""
    raw = meta.get("pretrainings") or []
    if isinstance(raw, Mapping):
        return [
            {"label": str(k), **(dict(v) if isinstance(v, Mapping) else {})} for k, v in raw.items()
        ]
    return [dict(p) for p in raw if isinstance(p, Mapping)]


def kind_name(kind: str | None) -> str:
    return _KIND_NAMES.get(kind or "", "unknown")


def ladder_label(method: str, imp_regime: str) -> str:
    """``imp``/``std`` → ``IMP (ST)`` (so ``supertickets``/``at`` → ``SuperTickets (AT)``);
    other methods by their paper names; a pattern other than unstructured after a comma
    (``imp:channel`` → ``IMP (ST), channel``)."""
    method, pattern = split_method(method)
    name = _METHOD_NAMES.get(method, method)
    suffix = "" if pattern == UNSTRUCTURED else f", {pattern}"
    if imp_regime in ("std", "at"):  # the training inside IMP or a SuperTickets search
        return f"{name} ({'ST' if imp_regime == 'std' else imp_regime.upper()}){suffix}"
    return (f"{name} ({imp_regime})" if imp_regime else name) + suffix


def primary_ladder(ladders: Iterable[tuple[str, str]]) -> tuple[str, str] | None:
    """The ladder the headline comparisons use: IMP with ST inside IMP (the paper's default),
    else IMP with another regime, else the first method alphabetically."""
    # The paper's findings read unstructured tickets only: a pattern's ladder is never primary.
    ladders = sorted(set(ladder for ladder in ladders if ":" not in ladder[0]))
    if not ladders:
        return None
    if ("imp", "std") in ladders:
        return ("imp", "std")
    imp = [ladder for ladder in ladders if ladder[0] == "imp"]
    return imp[0] if imp else ladders[0]


def extremes_by_setting(
    extremes: Sequence[ExtremeSparsity],
) -> dict[tuple[str, str], dict[tuple[str, str, float], ExtremeSparsity]]:
    """ladder → (pre-training, dataset, fraction) → its extreme sparsity."""
    out: dict[tuple[str, str], dict[tuple[str, str, float], ExtremeSparsity]] = defaultdict(dict)
    for e in extremes:
        out[(e.method, e.imp_regime)][(e.pretraining, e.dataset, e.fraction)] = e
    return out


def percent(sparsity: float | None, digits: int = 2) -> str:
    """A sparsity fraction as the paper writes it (``0.8926`` → ``89.26%``)."""
    return "—" if sparsity is None else f"{100 * sparsity:.{digits}f}%"


def fraction_text(fraction: float) -> str:
    """A data fraction as a percentage of the downstream training set (``0.1`` → ``10%``)."""
    return f"{100 * fraction:g}%"
