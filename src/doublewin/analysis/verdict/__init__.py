"""The double-win verdict (definitions and a worked example in docs/verdict.md).

Matching under transfer regime R ∈ {ST, AT} for metric M ∈ {SA, RA} compares a ticket with its
dense model over the seeds both ran. Three rules (``VerdictConfig.rule``):

- ``interval`` (the default): a non-inferiority decision. The ticket − dense difference, paired
  by seed (or Welch's, for unpaired runs), gets its 95% t-interval; the margin is
  δ = max(``margin_floor``, ``std_multiplier`` × the dense runs' standard deviation). The ticket
  is *matching* when the interval's lower end is ≥ −δ, *not matching* when its upper end is
  < −δ, and *inconclusive* otherwise (and with one seed, unless ``single_seed: margin``).
- ``paper``: the ticket's mean is at least the dense mean minus ``std_multiplier`` × the dense
  standard deviation (``points`` with one seed): the rule of earlier reports.
- ``points``: the ticket's mean is at least the dense mean minus ``points``.

Double-win: matching on every counted comparison (SA and RA under AT; ``st_metrics`` under ST);
not double-win when any counted comparison is not matching; inconclusive otherwise. Extreme
double-win sparsity: the largest ladder sparsity whose ticket is double-win, reported as a
bracket with the next rung up and its state (bracket.py).

Rows are plain mappings with the columns of ``results.csv`` (docs/report.md): ``pretraining``,
``dataset``, ``fraction``, ``method`` (``dense`` for the baseline), ``imp_regime``,
``sparsity``, ``regime`` (``st``/``at``), ``seed`` and the test accuracies in points
``sa_best_sa``, ``ra_best_sa``, ``sa_best_ra``, ``ra_best_ra``.
"""

from doublewin.analysis.verdict.bracket import LadderRung, Span
from doublewin.analysis.verdict.config import Rule, VerdictConfig
from doublewin.analysis.verdict.double_win import (
    ExtremeSparsity,
    TicketKey,
    TicketOutcome,
    TicketVerdict,
    extreme_sparsities,
    rung_numbers,
    verdicts,
)
from doublewin.analysis.verdict.matching import Comparison, Outcome, compare, metric_value
from doublewin.analysis.verdict.sequential import SeedPlan

__all__ = [
    "Comparison",
    "ExtremeSparsity",
    "LadderRung",
    "Outcome",
    "Rule",
    "SeedPlan",
    "Span",
    "TicketKey",
    "TicketOutcome",
    "TicketVerdict",
    "VerdictConfig",
    "compare",
    "extreme_sparsities",
    "metric_value",
    "rung_numbers",
    "verdicts",
]
