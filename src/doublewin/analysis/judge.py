"""``doublewin verdict``: judge any results table (ours, or one converted from another tool's
logs) and say per ticket whether it is double-win, each ladder's extreme sparsity and what the
paper's findings come to, as text or as JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from doublewin.analysis.findings.finding import Finding
from doublewin.analysis.report import analyse
from doublewin.analysis.report.data import COMPARISON_MARK, MARK, ReportData
from doublewin.analysis.report.rule import verdict_rule
from doublewin.analysis.results_table import read_results_csv
from doublewin.analysis.summaries import (
    PRETRAINING_KINDS,
    fraction_text,
    ladder_label,
    percent,
)
from doublewin.analysis.table_check import check_rows, scaled_to_points
from doublewin.analysis.verdict import (
    ExtremeSparsity,
    LadderRung,
    TicketVerdict,
    VerdictConfig,
)
from doublewin.analysis.verdict.claim import comparison_record
from doublewin.analysis.verdict.stats import Interval
from doublewin.core.errors import UserError
from doublewin.core.foreign import load_yaml
from doublewin.core.typed import to_dict


def load_verdict_file(path: Path | None) -> tuple[VerdictConfig, dict[str, Any]]:
    """The verdict options and the metadata of a YAML file: either the options themselves
    (``rule: interval``…) or an experiment-like file with ``verdict:`` and optionally
    ``pretrainings:`` (label → regime std|fat|at|control)."""
    if path is None:
        return VerdictConfig(), {}
    raw = load_yaml(path, "verdict options (docs/verdict.md)")
    meta: dict[str, Any] = {}
    if "verdict" in raw or "pretrainings" in raw:
        regimes = raw.get("pretrainings") or {}
        if not isinstance(regimes, Mapping):
            raise UserError(f"{path}: pretrainings must map each label to std, fat, at or control")
        meta["pretrainings"] = [
            {"label": str(label), "regime": _regime(path, label, value)}
            for label, value in regimes.items()
        ]
        raw = raw.get("verdict") or {}
    return VerdictConfig.from_mapping(raw), meta


def _regime(path: Path, label: Any, value: Any) -> str:
    """A pre-training's kind in a verdict file: std, fat, at or control (as its own value or
    under ``regime``); anything else would leave the findings without their groups."""
    regime = value.get("regime") if isinstance(value, Mapping) else value
    if str(regime).lower() not in PRETRAINING_KINDS:
        raise UserError(
            f"{path}: pretrainings.{label} is {regime!r}; write one of "
            f"{', '.join(PRETRAINING_KINDS)}"
        )
    return regime


def judge_table(
    csv_path: Path,
    config: VerdictConfig,
    meta: Mapping[str, Any] | None = None,
    *,
    unit: str = "auto",
    notes: list[str] | None = None,
) -> ReportData:
    """Read, check (strictly: docs/report.md's columns) and judge a results table. ``unit``:
    the accuracies' scale, ``points`` (0–100), ``fraction`` (0–1, converted) or ``auto``
    (points; a table of values all at most 1 is refused). How the file's shape was read (a
    byte-order mark, semicolons, decimal commas) is added to ``notes``."""
    rows = read_results_csv(csv_path, notes)
    if not rows:
        raise UserError(f"{csv_path} has no rows; it needs a header and one row per transfer run")
    if unit == "fraction":
        rows = scaled_to_points(rows, str(csv_path))
    check_rows(rows, source=str(csv_path), strict=True, selection=config.selection, unit=unit)
    return analyse(rows, meta=meta or {}, verdict_config=config)


def judgement(data: ReportData) -> dict[str, Any]:
    """Everything ``doublewin verdict --json`` prints."""
    return {
        "verdict": to_dict(data.config),
        "tickets": [_ticket(v) for v in data.verdicts],
        "extremes": [_extreme(e) for e in data.extremes],
        "findings": [_finding(f) for f in data.findings],
    }


def judgement_lines(data: ReportData) -> list[str]:
    """The same as plain text, one line per ticket, ladder and finding."""
    lines = [_plain(verdict_rule(data.config)), "", f"Tickets ({len(data.verdicts)}):"]
    for v in data.verdicts:
        k = v.key
        cells = "  ".join(
            f"{c.regime.upper()} {c.metric.upper()} {_interval(c.difference)} {COMPARISON_MARK[c.outcome]}"
            + ("" if (c.regime, c.metric) in v.counted else " (not counted)")
            for c in v.comparisons
        )
        seeds = max((len(c.seeds) for c in v.comparisons), default=0)
        need = f"; about {v.seeds_needed} seeds would decide it" if v.seeds_needed else ""
        lines.append(
            f"  {MARK[v.outcome]} {k.pretraining} → {k.dataset} {fraction_text(k.fraction)}  "
            f"{ladder_label(k.method, k.imp_regime)} {percent(k.sparsity)}  {seeds} seed(s)  "
            f"{v.outcome or 'undetermined'}{need}  |  {cells}"
        )
    lines += ["", "Extreme double-win sparsity, bracketed by the next rung up:"]
    for e in data.extremes:
        lines.append(
            f"  {e.pretraining} → {e.dataset} {fraction_text(e.fraction)}  "
            f"{ladder_label(e.method, e.imp_regime)}: {e.bracket_text}"
            + ("" if e.decided else " — undecided")
        )
    lines += ["", "Findings:"]
    for i, f in enumerate(data.findings, start=1):
        lines.append(f"  {i:2d}. [{f.status}] {f.claim} {f.summary}")
    return lines


def _ticket(v: TicketVerdict) -> dict[str, Any]:
    return {
        **dataclasses.asdict(v.key),
        "outcome": v.outcome,
        "seeds_needed": v.seeds_needed,
        "comparisons": [
            comparison_record(c, (c.regime, c.metric) in v.counted) for c in v.comparisons
        ],
    }


def _extreme(e: ExtremeSparsity) -> dict[str, Any]:
    return {
        "pretraining": e.pretraining,
        "dataset": e.dataset,
        "fraction": e.fraction,
        "method": e.method,
        "imp_regime": e.imp_regime,
        "extreme": e.extreme,
        "all_lower_double_win": e.all_lower_double_win,
        "rungs": [{"sparsity": s, "double_win": dw} for s, dw in e.rungs],
        "inconclusive": list(e.inconclusive),
        "bracket": _bracket(e),
    }


def _bracket(e: ExtremeSparsity) -> dict[str, Any]:
    """The bracket of ``e``: the next rung up, whether it is decided, the sparsities the
    extreme can take (monotonicity assumed) and every rung of the ladder with its state."""
    value = e.span
    return {
        "text": e.bracket_text,
        "decided": e.decided,
        "next": None if e.next_rung is None else _rung(e.next_rung),
        "span": None
        if value is None
        else {"low": value.low, "high": value.high, "high_excluded": value.open},
        "deciding_rungs": [_rung(r) for r in e.deciding_rungs],
        "ladder": [_rung(r) for r in e.ladder],
    }


def _rung(rung: LadderRung) -> dict[str, Any]:
    return {"number": rung.number, "sparsity": rung.sparsity, "state": rung.state}


def _finding(f: Finding) -> dict[str, Any]:
    test = f.sign
    return {
        "key": f.key,
        "claim": f.claim,
        "status": f.status,
        "wins": f.wins,
        "losses": f.losses,
        "test": f.test,
        "p_value": test.p_value,
        "share": test.share,
        "share_interval": None if test.low is None else [test.low, test.high],
        "rule": f.rule,
        "note": f.note,
        "evidence": list(f.evidence),
    }


def _interval(d: Interval | None) -> str:
    return "—" if d is None else d.text()


def _plain(text: str) -> str:
    return text.replace("**", "").replace("*", "")


__all__ = ["judge_table", "judgement", "judgement_lines", "load_verdict_file"]
