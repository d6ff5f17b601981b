"""The report's sections about the run itself: what ran (`run_section`: the experiment, the
verdict rule, the pre-trainings compared, what the adaptive search skipped) and what it cost
(`compute_section`)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from doublewin.analysis.report.data import ReportData, is_number, number
from doublewin.analysis.report.document import Block, Bullets, Paragraph, Section, Table
from doublewin.analysis.report.rule import on_demand_text, verdict_rule
from doublewin.analysis.summaries import (
    fraction_text,
    kind_name,
    ladder_label,
    meta_pretrainings,
)


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
    margins = _margins(data, len(transfer_seeds))
    if margins is not None:
        section.blocks.append(margins)
    table = _pretrainings_table(data)
    if table is not None:
        section.blocks.append(table)
    section.blocks += _search_notes(meta.get("search"))
    return section


def _margins(data: ReportData, seeds: int) -> Paragraph | None:
    """The range of margins δ (or tolerances) the verdicts used."""
    deltas = sorted(c.delta for v in data.verdicts for c in v.comparisons if c.delta is not None)
    if not deltas:
        return None
    name = "Margins δ" if data.config.rule == "interval" else "Matching tolerances"
    text = (
        f"{name} used: {deltas[0]:.2f}–{deltas[-1]:.2f} points "
        f"(median {statistics.median(deltas):.2f})."
    )
    if data.config.rule == "paper" and 1 < seeds < 3:
        text += (
            f" With {seeds} seeds the dense standard deviation, and so "
            "the tolerance, is itself a rough estimate: verdicts near the bar can flip "
            "with another seed."
        )
    return Paragraph(text)


def _pretrainings_table(data: ReportData) -> Table | None:
    """The pre-trainings compared: kind, where the weights come from, source accuracies."""
    given = {str(p.get("label")): p for p in meta_pretrainings(data.meta)}
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
    if not table_rows:
        return None
    return Table(
        ("pre-training", "kind", "weights", "source SA", "source RA", "notes"),
        tuple(table_rows),
        "Pre-trainings compared (source accuracies in points, "
        "'—' when unknown, e.g. for imported weights).",
    )


def _search_notes(search: Any) -> list[Block]:
    """What the adaptive search ran instead of the full grid, and its notes per ladder."""
    if not isinstance(search, Mapping):
        return []
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
    return [Paragraph(text), Bullets(tuple(notes))] if notes else [Paragraph(text)]


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
    texts = []
    if on_demand := meta.get("on_demand"):
        ran, most = on_demand["transfer_runs"], on_demand["fixed_max_runs"]
        texts.append(
            f"Seeds on demand ran {ran} transfer runs in {on_demand['waves']} waves: "
            f"{ran / most:.0%} of the {most} the maximum seeds everywhere take "
            f"({most - ran} saved; {on_demand['fixed_min_runs']} for the minimum)."
            if most
            else f"Seeds on demand ran {ran} transfer runs."
        )
    if search := meta.get("search"):
        ran, full = search["transfer_runs"], search["full_grid_transfer_runs"]
        texts.append(
            f"The extreme search ran {ran} of the full grid's {full} transfer runs "
            f"({ran / full:.0%}; {full - ran} saved)."
            if full
            else f"The extreme search ran {ran} transfer runs."
        )
    return [Paragraph(text) for text in texts]
