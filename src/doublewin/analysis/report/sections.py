"""The report's sections, each built from the analysed rows (``ReportData``).

Every section is present whatever the data: when the rows are too thin for it, it says in
words what is missing and how to get it. Numbers: accuracies in points (0–100) as mean ± sample
standard deviation over seeds, sparsities and data fractions in percent.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from doublewin.analysis.findings.finding import ALPHA, Finding
from doublewin.analysis.report.data import (
    MARK_LEGEND,
    ReportData,
    extreme_text,
    is_number,
    ladder_rung_text,
    number,
    pretraining_index,
    setting_order,
    stat,
)
from doublewin.analysis.report.document import Bullets, Paragraph, Section, Table
from doublewin.analysis.report.rule import on_demand_text, verdict_rule
from doublewin.analysis.summaries import (
    fraction_text,
    kind_name,
    ladder_label,
    meta_pretrainings,
)
from doublewin.analysis.verdict import ExtremeSparsity


def run_section(data: ReportData) -> Section:
    meta = data.meta
    section = Section("Run")
    transfer_seeds = sorted({int(r["seed"]) for r in data.rows})
    facts = [
        f"Experiment: **{meta.get('name') or 'unnamed'}**; architecture: "
        f"`{meta.get('arch') or 'not given'}`.",
        f"Transfer runs: {len(data.rows)} (one row each in results.csv); seeds: "
        f"{', '.join(map(str, transfer_seeds)) or 'none'}."
        + on_demand_text(meta.get("on_demand"), data.config),
        f"Downstream datasets: {', '.join(data.datasets) or 'none'}; data fractions: "
        f"{', '.join(fraction_text(f) for f in data.fractions) or 'none'}.",
        "Ticket ladders: "
        + (
            ", ".join(ladder_label(*ladder) for ladder in data.ladders)
            or "none (dense baselines only)"
        )
        + ".",
    ]
    if meta.get("description"):
        facts.insert(1, str(meta["description"]))
    section.blocks.append(Bullets(tuple(facts)))
    section.blocks.append(Paragraph(verdict_rule(data.config)))
    deltas = sorted(c.delta for v in data.verdicts for c in v.comparisons if c.delta is not None)
    if deltas:
        name = "Margins δ" if data.config.rule == "interval" else "Matching tolerances"
        text = (
            f"{name} used: {deltas[0]:.2f}–{deltas[-1]:.2f} points "
            f"(median {statistics.median(deltas):.2f})."
        )
        if data.config.rule == "paper" and 1 < len(transfer_seeds) < 3:
            text += (
                f" With {len(transfer_seeds)} seeds the dense standard deviation, and so "
                "the tolerance, is itself a rough estimate: verdicts near the bar can flip "
                "with another seed."
            )
        section.blocks.append(Paragraph(text))
    given = {str(p.get("label")): p for p in meta_pretrainings(meta)}
    table_rows = []
    for label in data.pretrainings:
        p = given.get(label, {})
        if p.get("weights"):
            origin = f"imported from `{p['weights']}`"
        elif data.kinds.get(label) == "control":
            origin = "not trained: the seeded initialization"
        elif p.get("spec") or p.get("ref"):
            origin = "pre-trained in this run"
        else:
            origin = "—"
        notes = "collapsed (FAT catastrophic overfitting guard fired)" if p.get("collapsed") else ""
        table_rows.append(
            (
                label,
                kind_name(data.kinds.get(label)),
                origin,
                number(p.get("source_sa")),
                number(p.get("source_ra")),
                notes,
            )
        )
    if table_rows:
        section.blocks.append(
            Table(
                ("pre-training", "kind", "weights", "source SA", "source RA", "notes"),
                tuple(table_rows),
                "Pre-trainings compared (source accuracies in points, "
                "'—' when unknown, e.g. for imported weights).",
            )
        )
    search = meta.get("search")
    if isinstance(search, Mapping):
        text = (
            f"Adaptive search for the extreme sparsity: {search.get('transfer_runs')} "
            f"transfer runs instead of the full grid's {search.get('full_grid_transfer_runs')};"
            " rungs it skipped appear as untested below."
        )
        notes = [
            f"{' / '.join(map(str, item.get('key', [])))}: {note}"
            for item in search.get("ladders", [])
            if isinstance(item, Mapping)
            for note in item.get("notes", [])
        ]
        section.blocks.append(Paragraph(text))
        if notes:
            section.blocks.append(Bullets(tuple(notes)))
    return section


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
    by_ladder: dict[tuple[str, str], dict[tuple[str, str, float], ExtremeSparsity]] = defaultdict(
        dict
    )
    for e in data.extremes:
        by_ladder[(e.method, e.imp_regime)][(e.pretraining, e.dataset, e.fraction)] = e
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
        section.blocks.append(
            Table(
                headers,
                tuple(rows),
                f"{ladder_label(*ladder)}: extreme double-win sparsity "
                "(dataset · fraction of the training data)",
            )
        )
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
    section.blocks.append(
        Table(
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
    )
    return section


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


def compute_section(data: ReportData) -> Section:
    """The compute the run spent, per stage (worker-hours and image passes), what the savers
    saved against the fixed grid, and the transfer runs by regime."""
    section = Section("Compute")
    compute = data.meta.get("compute") or {}
    if compute:
        rows = tuple(
            (
                stage,
                str(int(c["jobs"])),
                f"{c['seconds'] / 3600:.3f}",
                f"{c['passes']:.3g}",
            )
            for stage, c in compute.items()
        )
        hours = sum(c["seconds"] for c in compute.values()) / 3600
        untimed = sum(int(c["jobs"] - c.get("timed", c["jobs"])) for c in compute.values())
        section.blocks.append(
            Paragraph(
                f"The run's finished jobs took {hours:.2f} worker-hours (each job's own wall "
                "seconds: setup, training, evaluation, writing; with N workers the run's wall "
                "time is about this divided by N)"
                + (f"; {untimed} jobs finished before jobs were timed" if untimed else "")
                + ". An image pass is one forward and backward of one image (an attack step "
                "costs about one)."
            )
        )
        section.blocks.append(Table(("stage", "jobs", "worker-hours", "image passes"), rows))
    section.blocks.extend(_savings(data.meta))
    timed = [r for r in data.rows if is_number(r.get("job_seconds") or r.get("seconds"))]
    if not timed and not compute:
        section.blocks.append(
            Paragraph("The rows carry no timing column, so the cost of the run is unknown.")
        )
        return section
    by_regime: dict[str, list[float]] = defaultdict(list)
    for row in timed:
        value = row.get("job_seconds") if is_number(row.get("job_seconds")) else row["seconds"]
        by_regime[str(row["regime"]).upper()].append(float(value))
    rows = tuple(
        (regime, str(len(v)), f"{statistics.fmean(v):.1f}", f"{sum(v) / 3600:.3f}")
        for regime, v in sorted(by_regime.items())
    )
    if rows:
        section.blocks.append(
            Table(("transfer regime", "runs", "mean seconds per run", "worker-hours"), rows)
        )
    return section


def _savings(meta: Mapping[str, Any]) -> list[Paragraph]:
    """What seeds on demand and the extreme search saved against the fixed grid."""
    out = []
    on_demand = meta.get("on_demand")
    if on_demand:
        ran, most = on_demand["transfer_runs"], on_demand["fixed_max_runs"]
        out.append(
            Paragraph(
                f"Seeds on demand ran {ran} transfer runs in {on_demand['waves']} waves: "
                f"{ran / most:.0%} of the {most} the maximum seeds everywhere take "
                f"({most - ran} saved; {on_demand['fixed_min_runs']} for the minimum)."
                if most
                else f"Seeds on demand ran {ran} transfer runs."
            )
        )
    search = meta.get("search")
    if search:
        ran, full = search["transfer_runs"], search["full_grid_transfer_runs"]
        out.append(
            Paragraph(
                f"The extreme search ran {ran} of the full grid's {full} transfer runs "
                f"({ran / full:.0%}; {full - ran} saved)."
                if full
                else f"The extreme search ran {ran} transfer runs."
            )
        )
    return out


def share_text(finding: Finding) -> str:
    """``83% [36%, 100%]``: the share of decided comparisons for the paper."""
    test = finding.sign
    if test.share is None or test.low is None or test.high is None:
        return "—"
    return f"{100 * test.share:.0f}% [{100 * test.low:.0f}%, {100 * test.high:.0f}%]"
