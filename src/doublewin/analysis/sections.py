"""The report's sections, each built from the analysed rows (``ReportData``).

Every section is present whatever the data: when the rows are too thin for it, it says in
words what is missing and how to get it. Numbers: accuracies in points (0–100) as mean ± sample
standard deviation over seeds, sparsities and data fractions in percent.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from doublewin.analysis import figures
from doublewin.analysis.document import Bullets, Figure, Paragraph, Section, Table
from doublewin.analysis.findings import Finding
from doublewin.analysis.summaries import (
    Cell,
    CellKey,
    Stat,
    dense_cell,
    fraction_text,
    kind_name,
    known_extreme,
    ladder_label,
    meta_pretrainings,
    percent,
    ticket_score,
)
from doublewin.analysis.verdict import ExtremeSparsity, TicketVerdict, VerdictConfig
from doublewin.core import paths

_MARK = {True: "✓", False: "✗", None: "?"}


@dataclass(frozen=True)
class ReportData:
    """Everything the sections read, computed once from the rows."""

    rows: Sequence[Mapping[str, Any]]
    meta: Mapping[str, Any]
    config: VerdictConfig
    cells: Mapping[CellKey, Cell]
    verdicts: Sequence[TicketVerdict]
    extremes: Sequence[ExtremeSparsity]
    kinds: Mapping[str, str | None]
    pretrainings: Sequence[str]  # in the experiment's order
    datasets: Sequence[str]
    fractions: Sequence[float]  # largest first
    ladders: Sequence[tuple[str, str]]  # (method, IMP regime), dense excluded
    primary: tuple[str, str] | None
    findings: Sequence[Finding]

    @property
    def double_win(self) -> dict[tuple[str, str, float, str, str, float], bool | None]:
        return {(*v.key.group, v.key.sparsity): v.double_win for v in self.verdicts}


def run_section(data: ReportData) -> Section:
    meta = data.meta
    section = Section("Run")
    transfer_seeds = sorted({int(r["seed"]) for r in data.rows})
    facts = [
        f"Experiment: **{meta.get('name') or 'unnamed'}**; architecture: "
        f"`{meta.get('arch') or 'not given'}`.",
        f"Transfer runs: {len(data.rows)} (one row each in results.csv); seeds: "
        f"{', '.join(map(str, transfer_seeds)) or 'none'}.",
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
    tolerances = sorted(
        c.tolerance for v in data.verdicts for c in v.comparisons if c.tolerance is not None
    )
    if tolerances:
        text = (
            f"Matching tolerances used: {tolerances[0]:.2f}–{tolerances[-1]:.2f} points "
            f"(median {statistics.median(tolerances):.2f})."
        )
        if data.config.tolerance == "std" and 1 < len(transfer_seeds) < 3:
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
        origin = (
            f"imported from `{p['weights']}`"
            if p.get("weights")
            else "pre-trained in this run"
            if p.get("spec") or p.get("ref")
            else "—"
        )
        notes = "collapsed (FAT catastrophic overfitting guard fired)" if p.get("collapsed") else ""
        table_rows.append(
            (
                label,
                kind_name(data.kinds.get(label)),
                origin,
                _number(p.get("source_sa")),
                _number(p.get("source_ra")),
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


def verdict_rule(config: VerdictConfig) -> str:
    """The matching rule of ``config`` in one sentence."""
    if config.tolerance == "std":
        multiplier = "" if config.std_multiplier == 1 else f"{config.std_multiplier:g} × "
        tolerance = (
            f"{multiplier}the standard deviation of the dense runs over the same seeds "
            f"({_points(config.points)} when only one seed ran)"
        )
    else:
        tolerance = _points(config.points)
    selection = {
        "per-metric": "SA at the best-validation-SA checkpoint and RA at the best-validation-RA "
        "checkpoint",
        "best-sa": "SA and RA both at the best-validation-SA checkpoint",
        "best-ra": "SA and RA both at the best-validation-RA checkpoint",
    }[config.selection]
    return (
        f"**Verdict rule.** A ticket *matches* the dense model on a metric under a transfer "
        f"regime when its mean test accuracy is at least the dense mean minus {tolerance}, "
        f"over the seeds both ran. It is *double-win* when it matches on SA and RA under "
        f"both ST and AT transfer. Accuracies are read as {selection}."
    )


def dense_section(data: ReportData) -> Section:
    section = Section("Dense baselines")
    rows = []
    for key in sorted((k for k in data.cells if k.method == "dense"), key=_setting_order(data)):
        cell = data.cells[key]
        rows.append(
            (
                key.pretraining,
                key.dataset,
                fraction_text(key.fraction),
                key.regime.upper(),
                str(len(cell.seeds)),
                _stat(cell.sa),
                _stat(cell.ra),
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
            "ticket is judged against. Mean ± standard deviation over seeds (points); a single "
            "seed shows no spread."
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
            "Extreme double-win sparsity: the largest tested sparsity whose ticket is double-win. "
            "**†** marks an extreme with a lower rung that is *not* double-win; **none** means "
            "every tested rung was judged and none is double-win; **?** means no rung is double-win "
            "but some could not be judged (a regime, metric or dense baseline is missing). The "
            "paper's ImageNet ResNet-50 numbers for comparison: STD 89.26% / 73.79%, FAT 89.26% / "
            "79.03%, AT 91.41% / 83.22% on CIFAR-10 / CIFAR-100."
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
            rows.append((label, *[_extreme_text(found.get((label, d, f))) for d, f in columns]))
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
            _pretraining_index(data, e.pretraining),
            e.dataset,
            -e.fraction,
            e.method,
            e.imp_regime,
        ),
    ):
        rungs = " ".join(f"{100 * s:.1f}{_MARK[dw]}" for s, dw in e.rungs)
        lower = {True: "yes", False: "no", None: "—"}[e.all_lower_double_win]
        details.append(
            (
                e.pretraining,
                e.dataset,
                fraction_text(e.fraction),
                ladder_label(e.method, e.imp_regime),
                _extreme_text(e),
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
                "extreme",
                "all lower rungs double-win",
                "rungs (sparsity % and verdict)",
            ),
            tuple(details),
            "Every ladder rung by rung: ✓ double-win, ✗ not double-win, ? undetermined.",
        )
    )
    return section


def accuracy_section(data: ReportData) -> tuple[Section, list[Figure]]:
    section = Section("Accuracy against sparsity")
    if data.primary is None:
        section.blocks.append(
            Paragraph(
                "No ticket has been transferred, so there is nothing to plot against sparsity; the "
                "dense baselines are in their own section."
            )
        )
        return section, []
    section.blocks.append(
        Paragraph(
            f"SA and RA of the {ladder_label(*data.primary)} tickets against sparsity, under ST "
            "and AT transfer, for each dataset and data fraction: mean ± std over seeds, the dense "
            "model's mean ± std as a shaded band, double-win rungs filled. Other ticket methods are "
            "compared in their own section."
        )
    )
    double_win = data.double_win
    made = []
    for fraction in data.fractions:
        for dataset in data.datasets:
            if not any(
                k.dataset == dataset and k.fraction == fraction and k.ladder == data.primary
                for k in data.cells
            ):
                continue
            marks = {
                (k[0], k[5]): dw
                for k, dw in double_win.items()
                if k[1:3] == (dataset, fraction) and k[3:5] == data.primary
            }
            png = figures.accuracy_vs_sparsity(
                data.cells,
                dataset=dataset,
                fraction=fraction,
                ladder=data.primary,
                pretrainings=data.pretrainings,
                double_win=marks,
            )
            figure = Figure(
                paths.figure(f"accuracy-{_slug(dataset)}-{_slug(fraction_text(fraction))}"),
                png,
                f"{dataset}, {fraction_text(fraction)} of the training data: "
                f"SA and RA of {ladder_label(*data.primary)} tickets against "
                "sparsity under ST and AT transfer.",
            )
            section.blocks.append(figure)
            made.append(figure)
    return section, made


def data_efficiency_section(data: ReportData) -> tuple[Section, list[Figure]]:
    section = Section("Data efficiency")
    if len(data.fractions) < 2:
        only = fraction_text(data.fractions[0]) if data.fractions else "no"
        section.blocks.append(
            Paragraph(
                f"The run transferred with {only} data fraction only, so data efficiency cannot be "
                "assessed. Add fractions to the transfer section (the paper uses "
                "`fractions: [1.0, 0.1, 0.01]`)."
            )
        )
    else:
        section.blocks.append(
            Paragraph(
                "The verdict and the accuracies as the downstream training set shrinks (the paper: "
                "100%, 10%, 1% of the training images). Dense accuracies are mean ± std in points; "
                "the extreme sparsity is that of the "
                f"{ladder_label(*data.primary) if data.primary else 'main'} ladder."
            )
        )
    extremes = {
        (e.pretraining, e.dataset, e.fraction): e
        for e in data.extremes
        if (e.method, e.imp_regime) == data.primary
    }
    rows = []
    for setting in _settings(data):
        st, at = dense_cell(data.cells, setting, "st"), dense_cell(data.cells, setting, "at")
        e = extremes.get(setting)
        wins = f"{sum(dw is True for _, dw in e.rungs)}/{len(e.rungs)}" if e else "—"
        rows.append(
            (
                setting[0],
                setting[1],
                fraction_text(setting[2]),
                _stat(st.sa if st else None),
                _stat(st.ra if st else None),
                _stat(at.sa if at else None),
                _stat(at.ra if at else None),
                _extreme_text(e),
                wins,
            )
        )
    if rows:
        section.blocks.append(
            Table(
                (
                    "pre-training",
                    "dataset",
                    "data",
                    "dense ST SA",
                    "dense ST RA",
                    "dense AT SA",
                    "dense AT RA",
                    "extreme",
                    "double-win rungs",
                ),
                tuple(rows),
            )
        )
    made = []
    if len(data.fractions) >= 2 and data.primary is not None and extremes:
        png = figures.extreme_vs_fraction(
            data.extremes, ladder=data.primary, pretrainings=data.pretrainings
        )
        figure = Figure(
            paths.figure("data-efficiency"),
            png,
            "Extreme double-win sparsity against the "
            "fraction of downstream training data (0 = no double-win rung).",
        )
        section.blocks.append(figure)
        made.append(figure)
    return section, made


def methods_section(data: ReportData) -> tuple[Section, list[Figure]]:
    section = Section("Ticket methods at equal sparsity")
    meeting: dict[tuple[tuple[str, str, float], float], set[tuple[str, str]]] = defaultdict(set)
    for key in data.cells:
        if key.method != "dense":
            meeting[(key.setting, key.sparsity)].add(key.ladder)
    points = sorted(
        (p for p, ladders in meeting.items() if len(ladders) > 1),
        key=lambda p: (_pretraining_index(data, p[0][0]), p[0][1], -p[0][2], p[1]),
    )
    if not points:
        count = len(data.ladders)
        section.blocks.append(
            Paragraph(
                (
                    "The run has a single ticket method, so there is nothing to compare. "
                    if count <= 1
                    else "No two ticket methods were transferred at the same sparsity in the same setting. "
                )
                + "Add methods under `tickets.methods` (e.g. `[imp, omp, random]`); one-shot methods "
                "are drawn at the IMP ladder's sparsities so they meet IMP rung for rung."
            )
        )
        return section, []
    ladders = [ladder for ladder in data.ladders if any(ladder in meeting[p] for p in points)]
    section.blocks.append(
        Paragraph(
            "Tickets of different methods at the same sparsity in the same setting. Each cell is "
            "the ticket's *score*, the mean of its four accuracies (ST SA, ST RA, AT SA, AT RA; "
            "means over seeds, points), and its verdict (✓ double-win, ✗ not, ? undetermined); the "
            "best score at each sparsity is in bold. The findings rank methods by this score."
        )
    )
    double_win = data.double_win
    rows = []
    totals: dict[tuple[str, str], list[float]] = defaultdict(list)
    # The headline ladder's scores at the same points, so the method means are comparable.
    reference: dict[tuple[str, str], list[float]] = defaultdict(list)
    wins: dict[tuple[str, str], int] = defaultdict(int)
    for setting, sparsity in points:
        scores = {
            ladder: ticket_score(data.cells, setting, ladder, sparsity)
            for ladder in meeting[(setting, sparsity)]
        }
        best = max((s for s in scores.values() if s is not None), default=None)
        cells = []
        for ladder in ladders:
            if ladder not in scores:
                cells.append("")
                continue
            score = scores[ladder]
            verdict = double_win.get((*setting, *ladder, sparsity))
            wins[ladder] += verdict is True
            if score is None:
                cells.append(f"— {_MARK[verdict]}")
                continue
            totals[ladder].append(score)
            if scores.get(data.primary) is not None:
                reference[ladder].append(scores[data.primary])
            text = f"{score:.2f}"
            cells.append((f"**{text}**" if score == best else text) + f" {_MARK[verdict]}")
        rows.append((setting[0], setting[1], fraction_text(setting[2]), percent(sparsity), *cells))
    primary = ladder_label(*data.primary) if data.primary else "the main ladder"
    section.blocks.append(
        Table(
            (
                "method",
                "tickets compared",
                "double-win",
                "mean score",
                f"{primary} at the same sparsities",
            ),
            tuple(
                (
                    ladder_label(*ladder),
                    str(len(totals[ladder])),
                    str(wins[ladder]),
                    _mean(totals[ladder]),
                    _mean(reference[ladder])
                    if len(reference[ladder]) == len(totals[ladder])
                    else "—",
                )
                for ladder in ladders
            ),
            "Per method, over the sparsities where at least two methods meet.",
        )
    )
    made = []
    full = data.fractions[0]
    for dataset in data.datasets:
        if not any(p[0][1:] == (dataset, full) for p in points):
            continue
        png = figures.methods_vs_sparsity(
            data.cells,
            dataset=dataset,
            fraction=full,
            ladders=ladders,
            pretrainings=data.pretrainings,
            double_win={
                (k[0], k[3], k[4], k[5]): dw
                for k, dw in double_win.items()
                if k[1:3] == (dataset, full)
            },
        )
        made.append(
            Figure(
                paths.figure(f"methods-{_slug(dataset)}"),
                png,
                f"{dataset}, {fraction_text(full)} of the training data: ticket score "
                "of each method against sparsity (dashed: dense).",
            )
        )
    section.blocks += made
    section.blocks.append(
        Table(
            (
                "pre-training",
                "dataset",
                "data",
                "sparsity",
                *[ladder_label(*ladder) for ladder in ladders],
            ),
            tuple(rows),
        )
    )
    return section, made


def findings_section(data: ReportData) -> Section:
    section = Section("Findings of the paper, checked on this run")
    section.blocks.append(
        Paragraph(
            "Each finding is split into comparisons (per dataset, setting or sparsity) that come out "
            "for the paper, against it, or neither. The finding is **supports** when the "
            "comparisons for outnumber those against, **contradicts** when those against outnumber "
            "those for, and **cannot tell** otherwise, including when nothing could be compared. "
            "A small run can disagree with the paper for reasons of scale (architecture, source "
            "data, epochs, seeds): a disagreement below is about this run, stated as measured."
        )
    )
    section.blocks.append(
        Table(
            ("#", "claim", "this run", "for", "against"),
            tuple(
                (str(i), f.claim, f"**{f.status}**", str(f.wins), str(f.losses))
                for i, f in enumerate(data.findings, start=1)
            ),
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
    section = Section("Compute")
    timed = [r for r in data.rows if _is_number(r.get("seconds"))]
    if not timed:
        section.blocks.append(
            Paragraph(
                "The rows carry no timing column (`seconds`), so the cost of the run is unknown."
            )
        )
        return section
    by_regime: dict[str, list[float]] = defaultdict(list)
    for row in timed:
        by_regime[str(row["regime"]).upper()].append(float(row["seconds"]))
    total = sum(sum(v) for v in by_regime.values())
    rows = tuple(
        (regime, str(len(v)), f"{statistics.fmean(v):.1f}", f"{sum(v) / 3600:.2f}")
        for regime, v in sorted(by_regime.items())
    )
    section.blocks.append(
        Paragraph(
            f"Transfer runs took {total / 3600:.2f} hours of device time in all "
            f"({len(timed)} of {len(data.rows)} rows timed)."
        )
    )
    section.blocks.append(Table(("transfer", "runs", "mean seconds per run", "hours"), rows))
    return section


# ---------------------------------------------------------------------------------------------


def _settings(data: ReportData) -> list[tuple[str, str, float]]:
    settings = {k.setting for k in data.cells}
    return sorted(settings, key=lambda s: (_pretraining_index(data, s[0]), s[1], -s[2]))


def _setting_order(data: ReportData):
    return lambda k: (
        _pretraining_index(data, k.pretraining),
        k.dataset,
        -k.fraction,
        ("st", "at").index(k.regime) if k.regime in ("st", "at") else 2,
        k.regime,
    )


def _ladder_order(data: ReportData):
    order = list(data.ladders)
    return lambda ladder: order.index(ladder) if ladder in order else len(order)


def _pretraining_index(data: ReportData, label: str) -> int:
    return data.pretrainings.index(label) if label in data.pretrainings else len(data.pretrainings)


def _extreme_text(e: ExtremeSparsity | None) -> str:
    if e is None:
        return "—"
    if e.extreme is None:
        return "none" if known_extreme(e) == 0.0 else "?"
    return percent(e.extreme) + ("" if e.all_lower_double_win else " †")


def _mean(values: Sequence[float]) -> str:
    return f"{statistics.fmean(values):.2f}" if values else "—"


def _points(value: float) -> str:
    return f"{value:g} point" + ("" if value == 1 else "s")


def _stat(value: Stat | None) -> str:
    return "—" if value is None else value.text()


def _number(value: Any) -> str:
    return f"{float(value):.2f}" if _is_number(value) else "—"


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, bool)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "x"
