"""The report's sections, each built from the analysed rows (``ReportData``).

Every section is present whatever the data: when the rows are too thin for it, it says in
words what is missing and how to get it. Numbers: accuracies in points (0–100) as mean ± sample
standard deviation over seeds, sparsities and data fractions in percent.
"""

from __future__ import annotations

from collections import defaultdict

from doublewin.analysis.findings.finding import ALPHA, Finding
from doublewin.analysis.report.data import (
    MARK_LEGEND,
    ReportData,
    extreme_text,
    ladder_rung_text,
    pretraining_index,
    setting_order,
    stat,
)
from doublewin.analysis.report.document import Bullets, Paragraph, Section, Table
from doublewin.analysis.summaries import (
    fraction_text,
    ladder_label,
)
from doublewin.analysis.verdict import ExtremeSparsity


def dense_section(data: ReportData) -> Section:
    section = Section("Dense baselines")
    rows = []
    for key in sorted((k for k in data.cells if k.method == "dense"), key=setting_order(data)):
        cell = data.cells[key]
        rows.append(
            (
                key.pretraining,
                key.dataset,
                fraction_text(key.fraction),
                key.regime.upper(),
                str(len(cell.seeds)),
                stat(cell.sa),
                stat(cell.ra),
            )
        )
    if not rows:
        section.blocks.append(
            Paragraph(
                "No dense baseline has finished, so no ticket can be judged: every verdict below is "
                "undetermined. The dense runs are part of every grid (method `dense`); run the "
                "experiment until they finish."
            )
        )
        return section
    section.blocks.append(
        Paragraph(
            "The fully dense pre-trained model transferred with the same recipe: the bar every "
            "ticket is judged against. Mean ± the half-width of its 95% t-interval over the "
            "seeds column's count (points); a single seed shows no interval."
        )
    )
    section.blocks.append(
        Table(("pre-training", "dataset", "data", "transfer", "seeds", "SA", "RA"), tuple(rows))
    )
    return section


def double_win_section(data: ReportData) -> Section:
    section = Section("Double-win tickets")
    if not data.extremes:
        section.blocks.append(
            Paragraph(
                "No ticket has been transferred yet, so there is no double-win table. Add ticket "
                "methods under `tickets.methods` and run the experiment."
            )
        )
        return section
    section.blocks.append(
        Paragraph(
            "Extreme double-win sparsity: the largest transferred rung whose ticket is "
            "certified double-win, bracketed by the next rung up (certified not double-win, "
            "inconclusive, undetermined or not transferred). A single value is a decided "
            "extreme: the next rung up fails, or the extreme is the top rung. A range is what "
            "the rungs judged allow, assuming a rung above a certified failure fails too: from "
            "the largest double-win rung (0 for none) to the highest rung below the first "
            "certified failure above it. **none** means the first rung fails. **†** marks an "
            "extreme with a lower rung that is *not* double-win, **‡** one with a lower rung "
            "inconclusive or undetermined. The paper's ImageNet ResNet-50 numbers for "
            "comparison: STD 89.26% / 73.79%, FAT 89.26% / 79.03%, AT 91.41% / 83.22% on "
            "CIFAR-10 / CIFAR-100."
        )
    )
    section.blocks += _extreme_tables(data)
    section.blocks.append(_rungs_table(data))
    return section


def _extreme_tables(data: ReportData) -> list[Table]:
    """Per ladder: the extreme double-win sparsity of each pre-training (rows) at each dataset
    and data fraction (columns)."""
    by_ladder: dict[tuple[str, str], dict[tuple[str, str, float], ExtremeSparsity]] = defaultdict(
        dict
    )
    for e in data.extremes:
        by_ladder[(e.method, e.imp_regime)][(e.pretraining, e.dataset, e.fraction)] = e
    tables = []
    for ladder in data.ladders:
        found = by_ladder.get(ladder, {})
        columns = [
            (d, f)
            for f in data.fractions
            for d in data.datasets
            if any(k[1:] == (d, f) for k in found)
        ]
        rows = []
        for label in data.pretrainings:
            if not any(k[0] == label for k in found):
                continue
            rows.append((label, *[extreme_text(found.get((label, d, f))) for d, f in columns]))
        headers = ("pre-training", *[f"{d} · {fraction_text(f)}" for d, f in columns])
        tables.append(
            Table(
                headers,
                tuple(rows),
                f"{ladder_label(*ladder)}: extreme double-win sparsity "
                "(dataset · fraction of the training data)",
            )
        )
    return tables


def _rungs_table(data: ReportData) -> Table:
    """Every ladder rung by rung, with its bracket and whether every lower rung won."""
    details = []
    for e in sorted(
        data.extremes,
        key=lambda e: (
            pretraining_index(data, e.pretraining),
            e.dataset,
            -e.fraction,
            e.method,
            e.imp_regime,
        ),
    ):
        rungs = " ".join(ladder_rung_text(rung) for rung in e.ladder)
        lower = {True: "yes", False: "no", None: "—"}[e.all_lower_double_win]
        details.append(
            (
                e.pretraining,
                e.dataset,
                fraction_text(e.fraction),
                ladder_label(e.method, e.imp_regime),
                e.bracket_text,
                lower,
                rungs,
            )
        )
    return Table(
        (
            "pre-training",
            "dataset",
            "data",
            "ladder",
            "bracket",
            "all lower rungs double-win",
            "rungs (sparsity % and verdict)",
        ),
        tuple(details),
        f"Every ladder rung by rung: {MARK_LEGEND}; · not transferred.",
    )


def findings_section(data: ReportData) -> Section:
    section = Section("Findings of the paper, checked on this run")
    section.blocks.append(
        Paragraph(
            "Each finding is split into comparisons (per dataset, setting or sparsity) that come out "
            "for the paper, against it, or neither. A two-sided exact sign test of the decided "
            f'comparisons judges the finding: **supports** when it rejects "no effect" at α = '
            f"{ALPHA:g} in the paper's direction, **contradicts** when it rejects in the opposite "
            "direction, **cannot tell** otherwise (six decided comparisons, all one way, are the "
            "fewest that can reject). The two existence findings are claims about every dataset: "
            "they support when every dataset has a certified double-win ticket at non-trivial "
            "sparsity and contradict when one certainly has none. A finding about pre-training is "
            "**not testable** where no pre-training beats the no-pre-training control (see *Does "
            "pre-training help here?*). A small run can disagree with the paper for reasons of "
            "scale (architecture, source data, epochs, seeds): a disagreement below is about this "
            "run, stated as measured."
        )
    )
    section.blocks.append(
        Table(
            ("#", "claim", "this run", "for", "against", "test", "share for [95% CI]"),
            tuple(
                (
                    str(i),
                    f.claim,
                    f"**{f.status}**",
                    str(f.wins),
                    str(f.losses),
                    f.test_text,
                    share_text(f),
                )
                for i, f in enumerate(data.findings, start=1)
            ),
            "share for: the fraction of decided comparisons that came out for the paper, with "
            "its exact (Clopper–Pearson) interval.",
        )
    )
    for i, f in enumerate(data.findings, start=1):
        section.blocks.append(Paragraph(f"**{i}. {f.claim}** — **{f.status}**. {f.summary}"))
        items = [f"Paper: {f.paper}", f"Rule: {f.rule}"]
        if f.note and (f.wins or f.losses):
            items.append(f"Note: {f.note}")
        items += list(f.evidence)
        section.blocks.append(Bullets(tuple(items)))
    return section


def share_text(finding: Finding) -> str:
    """``83% [36%, 100%]``: the share of decided comparisons for the paper."""
    test = finding.sign
    if test.share is None or test.low is None or test.high is None:
        return "—"
    return f"{100 * test.share:.0f}% [{100 * test.low:.0f}%, {100 * test.high:.0f}%]"
