"""The report's sections about the verdicts themselves: the findings at a glance (the forest
plot that opens the report) and every ticket's four comparisons with their intervals."""

from __future__ import annotations

from collections import Counter

from doublewin.analysis.report.data import (
    COMPARISON_MARK,
    MARK,
    MARK_LEGEND,
    ReportData,
    pretraining_index,
)
from doublewin.analysis.report.document import Bullets, Figure, Paragraph, Section, Table
from doublewin.analysis.report.forest import forest_plot
from doublewin.analysis.report.words import finding_title, shortfall_sentence
from doublewin.analysis.summaries import fraction_text, ladder_label, percent
from doublewin.analysis.verdict import Comparison, SeedPlan, TicketVerdict
from doublewin.core import paths
from doublewin.core.results import METRICS, REGIMES


def headline(data: ReportData) -> Paragraph:
    """What the run found, in one paragraph: the tickets certified, the extreme double-win
    sparsity of each pre-training at each data fraction (headline ladder), and which findings
    support or contradict the paper."""
    if not data.verdicts:
        return Paragraph("**What this run found:** no ticket has been transferred yet.")
    counts = Counter(v.outcome for v in data.verdicts)
    parts = [
        f"**What this run found:** of {len(data.verdicts)} tickets judged, "
        f"{counts['double-win']} are certified double-win, {counts['not double-win']} not "
        f"double-win and {counts['inconclusive']} inconclusive"
        + (f" ({counts[None]} undetermined)" if counts[None] else "")
        + "."
    ]
    if data.primary is not None:
        parts += bracket_sentences(data)
    shortfall = shortfall_sentence(data.verdicts, data.primary, data.pretrainings)
    if shortfall:
        parts.append(shortfall)
    for status in ("supports", "contradicts"):
        named = [
            f"{i} ({finding_title(f.key)})"
            for i, f in enumerate(data.findings, 1)
            if f.status == status
        ]
        if named:
            verb = "support" if status == "supports" else "contradict"
            parts.append(f"Findings {', '.join(named)} {verb} the paper.")
    for status, words in (
        ("cannot tell", "cannot tell here (too few decided comparisons)"),
        (
            "not testable",
            "are not testable here (pre-training does not beat the control "
            "where they would be judged)",
        ),
    ):
        numbers = [str(i) for i, f in enumerate(data.findings, 1) if f.status == status]
        if numbers:
            parts.append(f"Findings {', '.join(numbers)} {words}.")
    return Paragraph(" ".join(parts))


def bracket_sentences(data: ReportData) -> list[str]:
    """Each pre-training's bracket on the headline ladder in words, per data fraction
    (``with 100% data: STD double-win up to 49.00% (59.00% fails)``), then whether robust
    pre-training came out sparser there, and why not where that cannot be told."""
    out = []
    for fraction in data.fractions:
        found: dict[str, list[str]] = {}
        for e in data.extremes:
            if (e.method, e.imp_regime) == data.primary and e.fraction == fraction:
                found.setdefault(e.pretraining, []).append(e.bracket_text)
        # One entry per pre-training; over several datasets, each distinct bracket once.
        per = [f"{label} {' / '.join(dict.fromkeys(v))}" for label, v in found.items()]
        if per:
            out.append(f"with {fraction_text(fraction)} data: " + "; ".join(per))
    if out:
        out = [
            f"Extreme double-win sparsity ({ladder_label(*data.primary)}) — "
            + " — ".join(out)
            + "."
        ]
    for finding in data.findings:
        if finding.key in ("robust-sparser", "robust-sparser-limited"):
            out.append(sparser_sentence(finding))
    return out


def sparser_sentence(finding) -> str:
    """Whether robust pre-training came out sparser, and why where that cannot be told."""
    where = "with limited data" if finding.key.endswith("limited") else "with full data"
    if finding.status in ("supports", "contradicts"):
        came = "came out sparser" if finding.status == "supports" else "did not come out sparser"
        return f"Robust pre-training {came} {where} ({finding.test_text})."
    if finding.status == "not testable":
        return f"Whether robust pre-training is sparser {where} is not testable: {finding.note}"
    undecided = [line for line in finding.evidence if line.endswith("— neither")]
    why = undecided[0].removesuffix(" — neither") if undecided else finding.note.rstrip(".")
    if not why:
        why = f"{finding.wins} comparison(s) for, {finding.losses} against, {finding.test_text}"
    return f"Whether robust pre-training is sparser {where} cannot be told: {why}."


def glance_section(data: ReportData) -> tuple[Section, list[Figure]]:
    section = Section("Findings at a glance")
    section.blocks.append(headline(data))
    figure = Figure(
        paths.figure("findings"),
        forest_plot(data.findings),
        "Each finding of the paper on this run: the share of its decided comparisons that "
        "came out for the paper, with its exact 95% interval; colour by status (green "
        "supports, red contradicts, grey cannot tell or not testable). Details in *Findings of "
        "the paper, checked on this run*.",
    )
    section.blocks.append(figure)
    return section, [figure]


def verdicts_section(data: ReportData) -> Section:
    section = Section("Verdicts with intervals")
    if not data.verdicts:
        section.blocks.append(
            Paragraph("No ticket has been transferred, so there is no verdict to show.")
        )
        return section
    counts = Counter(v.outcome for v in data.verdicts)
    section.blocks.append(
        Paragraph(
            f"{len(data.verdicts)} tickets judged: {counts['double-win']} double-win, "
            f"{counts['not double-win']} not double-win, {counts['inconclusive']} inconclusive, "
            f"{counts[None]} undetermined (a run missing). Each cell is ticket − dense in points "
            "over the seeds both ran, with its interval, and the comparison's outcome (✓ "
            "matching, ✗ not matching, ~ inconclusive, ? not compared) with the margin δ: a "
            "ticket matches when the interval's lower end is at least −δ. A comparison in parentheses does not count towards "
            f"double-win (`verdict.st_metrics`). Verdict: {MARK_LEGEND}."
        )
    )
    ordered = sorted(
        data.verdicts,
        key=lambda v: (
            pretraining_index(data, v.key.pretraining),
            v.key.dataset,
            -v.key.fraction,
            v.key.method != "imp",
            v.key.method,
            v.key.imp_regime,
            v.key.sparsity,
        ),
    )
    section.blocks.append(Table(VERDICT_COLUMNS, tuple(_verdict_row(v) for v in ordered)))
    undecided = [v for v in ordered if v.outcome == "inconclusive"]
    if undecided:
        section.blocks.append(
            Paragraph(
                "**Inconclusive verdicts** and roughly how many seeds would decide them, if the "
                "spread over seeds stays as observed (per comparison: the smallest n whose "
                "t-interval half-width falls below the distance between the mean difference and "
                "−δ; per ticket: the fewest that fail a comparison heading below −δ, since one "
                "failure decides, else the most that every comparison needs to match"
                + (
                    "; with seeds on demand, the first planned look whose interval would clear −δ):"
                    if data.config.seeds is not None
                    else "):"
                )
            )
        )
        section.blocks.append(Bullets(tuple(_undecided(v, data.config.seeds) for v in undecided)))
    return section


VERDICT_COLUMNS = (
    "pre-training",
    "dataset",
    "data",
    "ladder",
    "sparsity",
    "seeds (ST/AT)",
    "ST SA",
    "ST RA",
    "AT SA",
    "AT RA",
    "verdict",
)


def _verdict_row(verdict: TicketVerdict) -> tuple[str, ...]:
    """A ticket's row: where it is, its seeds per regime, each comparison, its verdict."""
    key = verdict.key
    # Seeds per regime: with seeds on demand the two regimes can stop at different looks.
    per_regime = [
        max((len(c.seeds) for c in verdict.comparisons if c.regime == r), default=0)
        for r in REGIMES
    ]
    return (
        key.pretraining,
        key.dataset,
        fraction_text(key.fraction),
        ladder_label(key.method, key.imp_regime),
        percent(key.sparsity),
        str(per_regime[0]) if len(set(per_regime)) == 1 else "/".join(map(str, per_regime)),
        *[
            _cell(verdict, verdict.comparison(regime, metric))
            for regime in REGIMES
            for metric in METRICS
        ],
        MARK[verdict.outcome],
    )


def _cell(verdict: TicketVerdict, comparison: Comparison | None) -> str:
    if comparison is None or comparison.difference is None:
        return "?"
    text = f"{comparison.difference.text()} {COMPARISON_MARK[comparison.outcome]}"
    if comparison.delta is not None:
        text += f" (δ {comparison.delta:.2f})"
    if (comparison.regime, comparison.metric) not in verdict.counted:
        text = f"({text})"
    return text


def _undecided(verdict: TicketVerdict, plan: SeedPlan | None) -> str:
    key = verdict.key
    where = (
        f"{key.pretraining} → {key.dataset} at {fraction_text(key.fraction)} data, "
        f"{ladder_label(key.method, key.imp_regime)} at {percent(key.sparsity)}"
    )
    parts = []
    for c in verdict.comparisons:
        if c.outcome != "inconclusive" or (c.regime, c.metric) not in verdict.counted:
            continue
        assert c.difference is not None and c.delta is not None
        need = (
            f"about {c.seeds_needed} seeds"
            if c.seeds_needed is not None
            else f"more than the plan's {plan.max} seeds at this spread"
            if plan is not None and len(c.seeds) > 1
            else "seeds beyond any practical count"
            if len(c.seeds) > 1
            else "a second seed first (one seed shows no spread)"
        )
        parts.append(
            f"{c.regime.upper()} {c.metric.upper()} {c.difference.text()} held against "
            f"δ = {c.delta:.2f} over {len(c.seeds)} seed(s): {need}"
        )
    total = verdict.seeds_needed
    overall = (
        f"heading for {verdict.heading}; about {total} seeds would decide it"
        if total is not None
        else f"heading for {verdict.heading}; not within the plan's {plan.max} seeds at this spread"
        if plan is not None
        else f"heading for {verdict.heading}; the seeds needed cannot be estimated"
    )
    return f"{where} ({overall}): " + "; ".join(parts)
