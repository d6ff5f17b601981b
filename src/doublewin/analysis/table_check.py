"""Checks of a results table before anything is judged: one line naming the row, the column
and the fix for each kind of bad table (docs/report.md lists the columns).

``check_rows`` is what every reader runs (the report, ``doublewin verdict``); ``strict`` adds
what a table handed to ``doublewin verdict`` must also hold: the accuracy columns the checkpoint
selection reads, numbers in points, and a dense baseline for every ticket.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from doublewin.core.errors import UserError
from doublewin.core.numbers import SEED, UNIT_CLOSED_OPEN, UNIT_OPEN_CLOSED, read_number
from doublewin.core.results import (
    DENSE,
    REGIMES,
    REQUIRED_COLUMNS,
    TEST_METRICS,
    is_dense,
    method_key,
)
from doublewin.core.specs import TicketSpec
from doublewin.core.ticket_parts import TicketMethod

# The range each numeric label cell must lie in: (range, whole number, hint).
CELL_RANGES = {
    "fraction": (UNIT_OPEN_CLOSED, False, "; fractions are 0–1 (50% is 0.5), above 0"),
    "sparsity": (UNIT_CLOSED_OPEN, False, "; sparsities are fractions in [0, 1) (90% is 0.9)"),
    "seed": (SEED, True, ""),
}
KNOWN_METHODS = (DENSE, *typing.get_args(TicketMethod))
PATTERNS = typing.get_args(typing.get_type_hints(TicketSpec)["pattern"])
# Which accuracy columns each checkpoint selection reads (see verdict.metric_value).
SELECTION_COLUMNS = {
    "per-metric": ("sa_best_sa", "ra_best_ra"),
    "best-sa": ("sa_best_sa", "ra_best_sa"),
    "best-ra": ("sa_best_ra", "ra_best_ra"),
}


def check_rows(
    rows: Sequence[Mapping[str, Any]],
    *,
    source: str | None = None,
    strict: bool = False,
    selection: str = "per-metric",
    unit: str = "auto",
) -> None:
    """Raise ``UserError`` on the first bad row. ``source`` names a CSV file: rows are then
    called by their line in it (the header is line 1). ``unit``: ``auto`` refuses a strict
    table whose accuracies are all at most 1 (a 0–1 scale read as points would call every
    ticket matching); ``points`` or ``fraction`` say what they are."""

    def where(index: int) -> str:
        return f"{source} line {index + 2}" if source else f"results row {index + 1}"

    seen: dict[tuple, int] = {}
    for index, row in enumerate(rows):
        for column in REQUIRED_COLUMNS:
            if row.get(column) is None or row.get(column) == "":
                raise UserError(
                    f"{where(index)} has no {column!r}; every row needs "
                    f"{', '.join(REQUIRED_COLUMNS)} (see docs/report.md)"
                )
        for column, (rng, whole, hint) in CELL_RANGES.items():
            value = row[column]
            read_number(
                value if isinstance(value, (int, float)) else str(value),
                name=f"{where(index)}, column {column!r}",
                range=rng,
                whole=whole,
                hint=hint,
            )
        _check_names(row, where(index))
        if str(row["regime"]).lower() not in REGIMES:
            raise UserError(
                f"{where(index)}, column 'regime': {row['regime']!r} is not st or at; "
                "transfer regimes are st (standard) and at (adversarial)"
            )
        key = _run_key(row)
        if key in seen:
            first = f"line {seen[key] + 2}" if source else f"row {seen[key] + 1}"
            raise UserError(
                f"{where(index)} repeats {first}: two rows for "
                f"{_describe(row)} seed {row['seed']}; keep one row per seed"
            )
        seen[key] = index
        if strict:
            _check_accuracies(row, where(index))
    if strict:
        _check_columns(rows, selection, source or "the results table")
        _check_dense(rows, where)
        if unit == "auto":
            _check_points(rows, source or "the results table")


def _check_names(row: Mapping[str, Any], where: str) -> None:
    """A method or pattern written in another case than doublewin's (``IMP``) would be a
    ladder of its own that no rule or finding reads: refused, naming the spelling."""
    for column, known in (("method", KNOWN_METHODS), ("pattern", PATTERNS)):
        value = str(row.get(column) or "")
        if value.lower() in known and value not in known:
            raise UserError(
                f"{where}, column {column!r}: {value!r} is {value.lower()} in doublewin's "
                f"spelling (lower case); write {value.lower()}"
            )


def _check_columns(rows: Sequence[Mapping[str, Any]], selection: str, source: str) -> None:
    names = {str(k) for row in rows for k in row}
    for column in SELECTION_COLUMNS[selection]:
        if column not in names:
            raise UserError(
                f"{source} has no column {column!r}, which verdict.selection {selection} "
                f"reads; add it (columns: docs/report.md) or choose another selection"
            )


def _check_accuracies(row: Mapping[str, Any], where: str) -> None:
    """Every accuracy is a finite number of points in [0, 100] (an empty cell: unfinished)."""
    for column in TEST_METRICS:
        value = row.get(column)
        if value is None or value == "":
            continue  # a run that did not finish: its comparisons stay undetermined
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise UserError(
                f"{where}, column {column!r}: {value!r} is not a number; accuracies are "
                "points from 0 to 100"
            ) from None
        if math.isnan(number):
            raise UserError(
                f"{where}, column {column!r}: NaN; a run without an accuracy must not count "
                "as a seed: rerun it, or leave the cell empty to mark it unfinished"
            )
        if not 0.0 <= number <= 100.0:
            raise UserError(
                f"{where}, column {column!r}: {number:g} is outside 0–100; accuracies are "
                "points from 0 to 100"
            )


def _check_points(rows: Sequence[Mapping[str, Any]], source: str) -> None:
    values = [
        float(row[c])
        for row in rows
        for c in TEST_METRICS
        if row.get(c) not in (None, "") and not math.isnan(float(row[c]))
    ]
    if values and max(values) <= 1.0:
        raise UserError(
            f"{source}: every accuracy is at most 1, a 0–1 scale? doublewin reads points "
            "(0–100); pass --unit fraction to read them as fractions, or --unit points if "
            "they are points"
        )


def scaled_to_points(
    rows: Sequence[Mapping[str, Any]], source: str = "the results table"
) -> list[dict[str, Any]]:
    """Rows whose accuracy columns are 0–1 fractions, in points; a cell above 1 (a table in
    points after all) is refused rather than scaled to a thousands of points."""
    out = []
    for index, row in enumerate(rows):
        row = dict(row)
        for column in TEST_METRICS:
            if row.get(column) in (None, ""):
                continue
            try:
                value = float(row[column])
            except (TypeError, ValueError):
                continue  # named by the accuracy check, in points
            if value > 1.0:
                raise UserError(
                    f"--unit fraction: {source} line {index + 2}, column {column!r} holds "
                    f"{row[column]}, above 1, so the table is in points; pass --unit points "
                    "or --unit auto"
                )
            row[column] = 100.0 * value
        out.append(row)
    return out


def _check_dense(rows: Sequence[Mapping[str, Any]], where) -> None:
    dense = {_setting_regime(row) for row in rows if is_dense(row)}
    for index, row in enumerate(rows):
        if not is_dense(row) and _setting_regime(row) not in dense:
            raise UserError(
                f"{where(index)}: the ticket {_describe(row)} has no dense baseline (no row "
                "with method dense and the same pretraining, dataset, fraction and regime); "
                "add the dense runs"
            )


def _setting_regime(row: Mapping[str, Any]) -> tuple:
    return (
        str(row["pretraining"]),
        str(row["dataset"]),
        float(row["fraction"]),
        str(row["regime"]).lower(),
    )


def _run_key(row: Mapping[str, Any]) -> tuple:
    sparsity = 0.0 if is_dense(row) else round(float(row["sparsity"]), 6)
    imp_regime = "" if is_dense(row) else str(row.get("imp_regime") or "")
    return (*_setting_regime(row), method_key(row), imp_regime, sparsity, int(row["seed"]))


def _describe(row: Mapping[str, Any]) -> str:
    method = method_key(row)
    ladder = (
        method if not row.get("imp_regime") or is_dense(row) else f"{method}/{row['imp_regime']}"
    )
    return (
        f"{row['pretraining']} → {row['dataset']} at fraction {float(row['fraction']):g}, "
        f"{ladder} at sparsity {float(row['sparsity']):g}, regime {str(row['regime']).lower()}"
    )
