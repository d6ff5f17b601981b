"""The paper's findings, each judged on this run's rows by an explicit rule.

Every finding breaks into comparisons (one per dataset, setting or sparsity), each of which
comes out for the paper (a *win*), against it (a *loss*), or neither (a tie, or data too thin
to compare). The status comes from a two-sided exact sign test of the wins against the losses
at α = 0.05 (``finding.decide``): **supports** or **contradicts** when it rejects "no effect"
in that direction, **cannot tell** otherwise. The existence findings need every dataset
certified instead (``finding.decide_every``); the findings about pre-training are **not
testable** where no pre-training beats the no-pre-training control.

Each finding carries the rule in words and the numbers of every comparison, so a reader can
redo it. docs/report.md lists the rules. Sparsities are fractions 0–1 (written as percent),
accuracies points 0–100.
"""

from __future__ import annotations

from doublewin.analysis.findings.accuracy import (
    at_ra_above,
    fat_low_at_high,
    imp_beats,
    pretraining_helps,
)
from doublewin.analysis.findings.finding import IMP_BASELINES, Finding, FindingsInput, decide
from doublewin.analysis.findings.landscape import landscape
from doublewin.analysis.findings.patterns import robust_every_pattern
from doublewin.analysis.findings.sparsity import (
    exist,
    exist_limited,
    imp_regime,
    order,
    robust_sparser,
)
from doublewin.analysis.summaries import extremes_by_setting, primary_ladder

__all__ = ["Finding", "FindingsInput", "decide", "findings"]


def findings(data: FindingsInput) -> list[Finding]:
    """Every finding, in the order of the paper."""
    ladders = extremes_by_setting(data.extremes)
    primary = primary_ladder(ladders)
    fractions = sorted({key.fraction for key in data.cells}, reverse=True)
    full = fractions[0] if fractions else None
    limited = fractions[1:]
    return [
        pretraining_helps(data),
        exist(ladders, primary, full),
        robust_sparser(data, ladders, primary, [full] if full is not None else [], limited=False),
        order(data, ladders, primary, full),
        at_ra_above(data),
        exist_limited(ladders, primary, limited),
        robust_sparser(data, ladders, primary, limited, limited=True),
        fat_low_at_high(data, primary, limited),
        imp_regime(data, ladders),
        *[imp_beats(data, primary, method) for method in IMP_BASELINES],
        landscape(data),
        robust_every_pattern(data),
    ]
