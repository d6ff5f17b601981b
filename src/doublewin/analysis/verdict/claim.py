"""A ticket's double-win claim as plain data, and the same comparisons judged again on
re-measured ticket accuracies.

The claim is what a certificate records (docs/certificate.md): per transfer regime and seed
the dense and ticket accuracies (points), each comparison with its interval and δ, the
verdict rule in full and the verdict. `rejudge` reads a recorded claim back and judges new
ticket accuracies against its dense ones under its own rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from doublewin.analysis.verdict.config import VerdictConfig
from doublewin.analysis.verdict.double_win import TicketKey, TicketVerdict, accuracies, judge
from doublewin.analysis.verdict.matching import Comparison
from doublewin.core.errors import UserError
from doublewin.core.results import METRICS, REGIMES
from doublewin.core.typed import to_dict


def comparison_record(c: Comparison, counted: bool) -> dict[str, Any]:
    """One comparison as plain data (``doublewin verdict --json`` and certificates)."""
    d = c.difference
    return {
        "regime": c.regime,
        "metric": c.metric,
        "counted": counted,
        "seeds": list(c.seeds),
        "ticket_mean": c.ticket_mean,
        "dense_mean": c.dense_mean,
        "dense_std": c.dense_std,
        "difference": None if d is None else {"mean": d.mean, "low": d.low, "high": d.high},
        "delta": c.delta,
        "outcome": c.outcome,
        "seeds_needed": c.seeds_needed,
    }


def claim_record(
    rows: Iterable[Mapping[str, Any]], key: TicketKey, config: VerdictConfig
) -> dict[str, Any]:
    """The claim about the ticket ``key`` that ``rows`` (results.csv rows) make under
    ``config``: ``rule`` (the verdict options), ``verdict``, ``certified`` (double-win) and
    per regime its ``seeds`` (seed, dense and ticket SA/RA) and ``comparisons``."""
    dense_all, tickets = accuracies(rows, config.selection)
    if key not in tickets:
        raise UserError(f"no results of the ticket {key} in this table; run its transfers first")
    ticket = tickets[key]
    dense = dense_all.get((key.pretraining, key.dataset, key.fraction), {})
    verdict = judge(ticket, dense, key, config)
    regimes = {}
    for regime in REGIMES:
        seeds = sorted(
            {s for m in METRICS for side in (ticket, dense) for s in _of(side, regime, m)}
        )
        regimes[regime] = {
            "seeds": [
                {
                    "seed": seed,
                    "dense": {m: _of(dense, regime, m).get(seed) for m in METRICS},
                    "ticket": {m: _of(ticket, regime, m).get(seed) for m in METRICS},
                }
                for seed in seeds
            ],
            "comparisons": {
                m: _recorded(verdict.comparison(regime, m), (regime, m) in verdict.counted)
                for m in METRICS
            },
        }
    return {
        "rule": to_dict(config),
        "verdict": verdict.outcome,
        "certified": verdict.outcome == "double-win",
        "regimes": regimes,
    }


def _of(side: Mapping[str, Any], regime: str, metric: str) -> Mapping[int, float]:
    return side.get(regime, {}).get(metric, {})


def _recorded(c: Comparison | None, counted: bool) -> dict[str, Any]:
    record = comparison_record(c, counted) if c is not None else {}
    return {k: v for k, v in record.items() if k not in ("regime", "metric", "seeds_needed")}


def claim_config(claim: Mapping[str, Any]) -> VerdictConfig:
    """The verdict options a recorded claim was judged with."""
    return VerdictConfig.from_mapping(claim["rule"], path="claim.rule")


def recorded_values(claim: Mapping[str, Any], side: str) -> dict[str, dict[str, dict[int, float]]]:
    """A recorded claim's accuracies of ``side`` (``dense`` or ``ticket``): regime → metric →
    seed → points."""
    out: dict[str, dict[str, dict[int, float]]] = {}
    for regime in REGIMES:
        per_metric: dict[str, dict[int, float]] = {m: {} for m in METRICS}
        for record in claim["regimes"][regime]["seeds"]:
            for metric in METRICS:
                value = record[side][metric]
                if value is not None:
                    per_metric[metric][int(record["seed"])] = float(value)
        out[regime] = per_metric
    return out


def rejudge(
    claim: Mapping[str, Any],
    ticket: Mapping[str, Mapping[str, Mapping[int, float]]],
    key: TicketKey,
) -> TicketVerdict:
    """The verdict of re-measured ticket accuracies (regime → metric → seed → points) against
    the claim's dense accuracies of the same seeds, under the claim's own rule."""
    return judge(ticket, recorded_values(claim, "dense"), key, claim_config(claim))
