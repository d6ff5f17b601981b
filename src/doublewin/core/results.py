"""The results vocabulary: the columns of a results row and the keys that group rows.

One row is one transfer run (a line of ``results.csv``). The verdict, the report's summaries
and findings, and the extreme-sparsity search all group rows by the same keys, defined here
once:

- a **setting**: (pre-training, dataset, fraction) — what a dense baseline and its tickets
  share;
- a **ladder**: a setting with the ticket method and the IMP regime — the rungs of one ladder
  differ only in sparsity;
- a **ticket**: a ladder and a sparsity (a fraction, rounded to 6 digits).

The dense baseline has method ``dense``, no IMP regime and sparsity 0. A ticket of another
sparsity pattern than unstructured (the ``pattern`` column: ``channel``, ``nm``) sits on a
ladder of its own: its method key is ``<method>:<pattern>`` (``imp:channel``), so every
grouping above keeps patterns apart, and a rule that reads ``imp`` reads unstructured tickets
only (the paper's). A table without a ``pattern`` column is unstructured throughout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The downstream transfer regimes users write (--regime, transfer.regimes): standard and
# adversarial, with the training regime of the engine each runs.
TRANSFER_REGIMES = {"st": "std", "at": "at"}
REGIMES = tuple(TRANSFER_REGIMES)
METRICS = ("sa", "ra")  # standard accuracy, robust accuracy
DENSE = "dense"

# Test accuracies (points) at the best-val-SA and the best-val-RA checkpoint.
TEST_METRICS = ("sa_best_sa", "ra_best_sa", "sa_best_ra", "ra_best_ra")
# The grid labels of a transfer job, first in every row.
LABEL_COLUMNS = (
    "pretraining",
    "dataset",
    "fraction",
    "method",
    "imp_regime",
    "pattern",
    "sparsity",
    "rung",
    "regime",
    "seed",
)
# Columns a row needs for the verdict.
REQUIRED_COLUMNS = ("pretraining", "dataset", "fraction", "method", "sparsity", "regime", "seed")
# Columns that change from run to run of the same spec; everything else is a function of it.
TIMING_COLUMNS = ("seconds", "images_per_second", "finished_at", "job_seconds")
# Columns that are names, never numbers, whatever their text looks like.
TEXT_COLUMNS = ("pretraining", "dataset", "method", "imp_regime", "pattern", "regime", "job")
UNSTRUCTURED = "unstructured"
SPARSITY_DIGITS = 6

Setting = tuple[str, str, float]  # pretraining, dataset, fraction
LadderKey = tuple[str, str, float, str, str]  # setting + method, imp_regime


def setting_of(row: Mapping[str, Any]) -> Setting:
    return (str(row["pretraining"]), str(row["dataset"]), float(row["fraction"]))


def is_dense(row: Mapping[str, Any]) -> bool:
    return str(row["method"]) == DENSE


def ladder_of(row: Mapping[str, Any]) -> LadderKey:
    """The ladder a ticket row sits on (a dense row: method ``dense``, no IMP regime)."""
    imp_regime = "" if is_dense(row) else str(row.get("imp_regime") or "")
    return (*setting_of(row), method_key(row), imp_regime)


def method_key(row: Mapping[str, Any]) -> str:
    """``method``, with ``:<pattern>`` for a ticket of a pattern other than unstructured."""
    method, pattern = str(row["method"]), str(row.get("pattern") or UNSTRUCTURED)
    return method if method == DENSE or pattern == UNSTRUCTURED else f"{method}:{pattern}"


def split_method(key: str) -> tuple[str, str]:
    """``imp:channel`` → (``imp``, ``channel``); ``imp`` → (``imp``, ``unstructured``)."""
    method, _, pattern = key.partition(":")
    return method, pattern or UNSTRUCTURED


def sparsity_of(row: Mapping[str, Any]) -> float:
    """The row's ladder sparsity, rounded as ladders are (0 for the dense baseline)."""
    return 0.0 if is_dense(row) else round(float(row["sparsity"]), SPARSITY_DIGITS)


def regime_of(row: Mapping[str, Any]) -> str:
    return str(row["regime"]).lower()


def transfer_place(row: Mapping[str, Any]) -> tuple[str, Setting, LadderKey | None, float]:
    """Where a transfer row sits: its regime and setting, then for a ticket its ladder and
    sparsity (None and 0 for the dense baseline)."""
    ladder = None if is_dense(row) else ladder_of(row)
    return regime_of(row), setting_of(row), ladder, sparsity_of(row)
