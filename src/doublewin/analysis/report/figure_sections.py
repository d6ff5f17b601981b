"""The report's sections with figures: accuracy against sparsity, data efficiency, and the
ticket methods side by side."""

from __future__ import annotations

from collections import defaultdict

from doublewin.analysis.report import figures
from doublewin.analysis.report.data import (
    MARK,
    MARK_LEGEND,
    ReportData,
    extreme_text,
    mean,
    pretraining_index,
    settings,
    slug,
    stat,
)
from doublewin.analysis.report.document import Figure, Paragraph, Section, Table
from doublewin.analysis.summaries import (
    dense_cell,
    fraction_text,
    ladder_label,
    percent,
    ticket_score,
)
from doublewin.analysis.verdict import ExtremeSparsity
from doublewin.core import paths


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
            "and AT transfer, for each dataset and data fraction: means over seeds with 95% "
            "t-intervals as error bars, the dense model's interval as a shaded band, double-win "
            "rungs filled. Other ticket methods are "
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
                paths.figure(f"accuracy-{slug(dataset)}-{slug(fraction_text(fraction))}"),
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
                "100%, 10%, 1% of the training images). Dense accuracies are mean ± the "
                "95% interval's half-width in points, over the seeds column's count; "
                "the extreme sparsity is that of the "
                f"{ladder_label(*data.primary) if data.primary else 'main'} ladder."
            )
        )
    extremes = {
        (e.pretraining, e.dataset, e.fraction): e
        for e in data.extremes
        if (e.method, e.imp_regime) == data.primary
    }
    rows = [_efficiency_row(data, setting, extremes.get(setting)) for setting in settings(data)]
    if rows:
        section.blocks.append(Table(EFFICIENCY_COLUMNS, tuple(rows)))
    made = []
    # A figure only where it shows something: most pre-training × fraction points decided.
    decided = [e for e in extremes.values() if e.decided]
    if len(data.fractions) >= 2 and extremes and 2 * len(decided) < len(extremes):
        section.blocks.append(
            Paragraph(
                f"No figure: the extreme sparsity is decided at {len(decided)} of "
                f"{len(extremes)} pre-training × data-fraction points (the table says where); "
                "more seeds or rungs would decide the others."
            )
        )
    elif len(data.fractions) >= 2 and data.primary is not None and extremes:
        png = figures.extreme_vs_fraction(
            data.extremes, ladder=data.primary, pretrainings=data.pretrainings
        )
        figure = Figure(
            paths.figure("data-efficiency"),
            png,
            "Extreme double-win sparsity against the fraction of downstream training data: "
            "the largest certified double-win rung (0 = none), with a bar up to the highest "
            "rung its bracket allows where the next rung up is not certified to fail.",
        )
        section.blocks.append(figure)
        made.append(figure)
    return section, made


EFFICIENCY_COLUMNS = (
    "pre-training",
    "dataset",
    "data",
    "seeds (ST/AT)",
    "dense ST SA",
    "dense ST RA",
    "dense AT SA",
    "dense AT RA",
    "extreme",
    "double-win rungs",
)


def _efficiency_row(
    data: ReportData, setting: tuple[str, str, float], e: ExtremeSparsity | None
) -> tuple[str, ...]:
    """A setting's dense accuracies under ST and AT and its extreme double-win sparsity."""
    st, at = dense_cell(data.cells, setting, "st"), dense_cell(data.cells, setting, "at")
    wins = f"{sum(dw is True for _, dw in e.rungs)}/{len(e.rungs)}" if e else "—"
    return (
        setting[0],
        setting[1],
        fraction_text(setting[2]),
        "/".join(str(len(c.seeds)) if c else "0" for c in (st, at)),
        stat(st.sa if st else None),
        stat(st.ra if st else None),
        stat(at.sa if at else None),
        stat(at.ra if at else None),
        extreme_text(e),
        wins,
    )


Point = tuple[tuple[str, str, float], float]  # (setting, sparsity)


def methods_section(data: ReportData) -> tuple[Section, list[Figure]]:
    section = Section("Ticket methods at equal sparsity")
    meeting: dict[Point, set[tuple[str, str]]] = defaultdict(set)
    for key in data.cells:
        if key.method != "dense":
            meeting[(key.setting, key.sparsity)].add(key.ladder)
    points = sorted(
        (p for p, ladders in meeting.items() if len(ladders) > 1),
        key=lambda p: (pretraining_index(data, p[0][0]), p[0][1], -p[0][2], p[1]),
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
            f"means over seeds, points), and its verdict ({MARK_LEGEND}); the "
            "best score at each sparsity is in bold. The findings rank methods by this score."
        )
    )
    tally = _MethodTally(data, ladders)
    rows = [
        tally.row(setting, sparsity, meeting[(setting, sparsity)]) for setting, sparsity in points
    ]
    section.blocks.append(tally.summary())
    made = _methods_figures(data, points, ladders)
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


class _MethodTally:
    """The methods' scores at the points where they meet: one table row per point, and per
    method its scores, its double-win count and the headline ladder's scores at the same
    points (so the methods' means are comparable)."""

    def __init__(self, data: ReportData, ladders: list[tuple[str, str]]):
        self.data, self.ladders = data, ladders
        self.totals: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.reference: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.wins: dict[tuple[str, str], int] = defaultdict(int)

    def row(
        self, setting: tuple[str, str, float], sparsity: float, met: set[tuple[str, str]]
    ) -> tuple[str, ...]:
        data = self.data
        scores = {ladder: ticket_score(data.cells, setting, ladder, sparsity) for ladder in met}
        best = max((s for s in scores.values() if s is not None), default=None)
        cells = []
        for ladder in self.ladders:
            if ladder not in scores:
                cells.append("")
                continue
            score = scores[ladder]
            verdict = data.outcomes.get((*setting, *ladder, sparsity))
            self.wins[ladder] += verdict == "double-win"
            if score is None:
                cells.append(f"— {MARK[verdict]}")
                continue
            self.totals[ladder].append(score)
            if scores.get(data.primary) is not None:
                self.reference[ladder].append(scores[data.primary])
            text = f"{score:.2f}"
            cells.append((f"**{text}**" if score == best else text) + f" {MARK[verdict]}")
        return (setting[0], setting[1], fraction_text(setting[2]), percent(sparsity), *cells)

    def summary(self) -> Table:
        primary = ladder_label(*self.data.primary) if self.data.primary else "the main ladder"
        totals, reference = self.totals, self.reference
        return Table(
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
                    str(self.wins[ladder]),
                    mean(totals[ladder]),
                    mean(reference[ladder])
                    if len(reference[ladder]) == len(totals[ladder])
                    else "—",
                )
                for ladder in self.ladders
            ),
            "Per method, over the sparsities where at least two methods meet.",
        )


def _methods_figures(
    data: ReportData, points: list[Point], ladders: list[tuple[str, str]]
) -> list[Figure]:
    """Per dataset where methods meet on the full training data: score against sparsity."""
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
                for k, dw in data.double_win.items()
                if k[1:3] == (dataset, full)
            },
        )
        made.append(
            Figure(
                paths.figure(f"methods-{slug(dataset)}"),
                png,
                f"{dataset}, {fraction_text(full)} of the training data: ticket score "
                "of each method against sparsity (dashed: dense).",
            )
        )
    return made
