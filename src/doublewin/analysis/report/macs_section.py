"""The report's SuperTickets section: accuracy against MACs, and two-in-one against
search-then-prune at equal MACs and sparsity.

Tickets of different methods meet on MACs, not only on sparsity: a SuperTicket's network is
smaller than the supernet its IMP tickets mask. Every transfer row records ``macs`` (one image
through the transferred network) and ``kept_macs`` (with the pruned weights skipped). A
SuperTicket and the search-then-prune ticket of the same pre-training, regime and rung share
the seeds (the same head initialization, data order and attack starts), so their difference is
taken seed by seed.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from doublewin.analysis.report.data import MARK, ReportData, settings, slug, stat
from doublewin.analysis.report.document import Figure, Paragraph, Section, Table
from doublewin.analysis.report.figures import DPI, new_figure, png_bytes
from doublewin.analysis.summaries import CellKey, fraction_text, ladder_label, percent
from doublewin.analysis.verdict.matching import metric_value
from doublewin.analysis.verdict.stats import paired_difference
from doublewin.core import paths
from doublewin.core.results import METRICS, REGIMES, is_dense, ladder_of, sparsity_of
from doublewin.core.ticket_parts import NETWORK_METHODS

TWO_IN_ONE, SEARCH_THEN_PRUNE = NETWORK_METHODS
Ticket = tuple[str, str, float, str, str, float]  # setting, method, IMP regime, sparsity
_NAMES = {
    ("st", "sa"): "ST SA",
    ("st", "ra"): "ST RA",
    ("at", "sa"): "AT SA",
    ("at", "ra"): "AT RA",
}


def macs_section(data: ReportData) -> tuple[Section | None, list[Figure]]:
    """The section, or None when no SuperTickets were transferred."""
    if not any(k.method in NETWORK_METHODS for k in data.cells):
        return None, []
    macs = _macs(data.rows)
    section = Section("SuperTickets: accuracy against MACs")
    section.blocks.append(
        Paragraph(
            "Every transferred ticket with the multiply-accumulates of one image through its "
            "network (*MACs*: a SuperTicket's shrunk network, the supernet for the dense model "
            "and its IMP tickets) and with its pruned weights skipped (*kept MACs*), in millions, "
            "and its four accuracies (mean ± the 95% interval's half-width over seeds, points; "
            f"verdict {MARK['double-win']} double-win, {MARK['not double-win']} not, "
            f"{MARK['inconclusive']} inconclusive)."
        )
    )
    section.blocks.append(_accuracy_table(data, macs))
    made = _figures(data, macs)
    section.blocks += made
    section.blocks += _two_in_one(data, macs)
    return section, made


def _macs(rows: Sequence[Mapping[str, Any]]) -> dict[Ticket, tuple[float, float]]:
    """Ticket → (MACs, kept MACs) in millions, the mean over its rows."""
    values: dict[Ticket, list[tuple[float, float]]] = defaultdict(list)
    for row in rows:
        if row.get("macs") in (None, "") or row.get("kept_macs") in (None, ""):
            continue
        key = (*ladder_of(row), 0.0 if is_dense(row) else sparsity_of(row))
        values[key].append((float(row["macs"]) / 1e6, float(row["kept_macs"]) / 1e6))  # type: ignore[arg-type]
    return {
        k: (statistics.fmean(v[0] for v in vs), statistics.fmean(v[1] for v in vs))
        for k, vs in values.items()
    }


def _ladders(data: ReportData) -> list[tuple[str, str]]:
    return [("dense", "")] + list(data.ladders)


def _accuracy_table(data: ReportData, macs: Mapping[Ticket, tuple[float, float]]) -> Table:
    outcomes = data.outcomes
    rows = []
    for setting in settings(data):
        for ladder in _ladders(data):
            rungs = sorted(
                {k.sparsity for k in data.cells if (k.setting, k.ladder) == (setting, ladder)}
            )
            for sparsity in rungs:
                ticket = (*setting, *ladder, sparsity)
                if ticket not in macs:
                    continue
                accuracies = []
                for regime in REGIMES:
                    cell = data.cells.get(CellKey(*ticket, regime))
                    for metric in METRICS:
                        accuracies.append(stat(cell.metric(metric)) if cell else "—")
                seeds = {
                    s
                    for r in REGIMES
                    if (c := data.cells.get(CellKey(*ticket, r)))
                    for s in c.seeds
                }
                verdict = "" if ladder[0] == "dense" else MARK[outcomes.get(ticket)]
                rows.append(
                    (
                        setting[0],
                        setting[1],
                        fraction_text(setting[2]),
                        ladder_label(*ladder),
                        percent(sparsity),
                        f"{macs[ticket][0]:.3f}",
                        f"{macs[ticket][1]:.3f}",
                        *accuracies,
                        str(len(seeds)),
                        verdict,
                    )
                )
    return Table(
        (
            "pre-training",
            "dataset",
            "data",
            "method",
            "sparsity",
            "MACs (M)",
            "kept MACs (M)",
            "ST SA",
            "ST RA",
            "AT SA",
            "AT RA",
            "seeds",
            "verdict",
        ),
        tuple(rows),
        "Accuracy against MACs: each rung of each ladder, and the dense model.",
    )


def _seed_values(data: ReportData) -> dict[tuple[Ticket, str, str], dict[int, float]]:
    """(ticket, regime, metric) → seed → test accuracy (points), at the verdict's checkpoints."""
    out: dict[tuple[Ticket, str, str], dict[int, float]] = defaultdict(dict)
    for row in data.rows:
        if is_dense(row):
            continue
        ticket = (*ladder_of(row), sparsity_of(row))
        for metric in METRICS:
            value = metric_value(row, metric, data.config.selection)
            if value is not None:
                out[(ticket, str(row["regime"]).lower(), metric)][int(row["seed"])] = value
    return out


def _two_in_one(data: ReportData, macs: Mapping[Ticket, tuple[float, float]]) -> list[Any]:
    """SuperTickets minus search-then-prune, per ticket pair and accuracy, seed by seed."""
    values = _seed_values(data)
    pairs = sorted(
        {(k.setting, k.imp_regime, k.sparsity) for k in data.cells if k.method == TWO_IN_ONE}
        & {
            (k.setting, k.imp_regime, k.sparsity)
            for k in data.cells
            if k.method == SEARCH_THEN_PRUNE
        }
    )
    title = "Two-in-one against search-then-prune"
    if not pairs:
        return [
            Paragraph(
                f"**{title}**: no search-then-prune ticket met a SuperTicket at the same "
                "pre-training, regime and rung; add `search-then-prune` after `supertickets` "
                "under `tickets.methods` to compare them."
            )
        ]
    rows, above, below, spans = [], 0, 0, 0
    for setting, regime_inside, sparsity in pairs:
        st = (*setting, TWO_IN_ONE, regime_inside, sparsity)
        stp = (*setting, SEARCH_THEN_PRUNE, regime_inside, sparsity)
        cells = []
        for regime in REGIMES:
            for metric in METRICS:
                diff = paired_difference(
                    values.get((st, regime, metric), {}), values.get((stp, regime, metric), {})
                )
                cells.append("—" if diff is None else diff.text(2))
                if diff is not None and diff.low is not None:
                    above += diff.above_zero
                    below += diff.below_zero
                    spans += not (diff.above_zero or diff.below_zero)
        rows.append(
            (
                setting[0],
                setting[1],
                fraction_text(setting[2]),
                regime_inside.upper().replace("STD", "ST"),
                percent(sparsity),
                f"{macs.get(st, (0, 0))[0]:.3f} / {macs.get(stp, (0, 0))[0]:.3f}",
                *cells,
            )
        )
    summary = (
        f"**{title}** at equal sparsity, with search-then-prune shrunk to at most the "
        "SuperTicket's MACs: SuperTickets − search-then-prune, seed by seed, mean with the 95% "
        f"t-interval (points). Of the comparisons with an interval, {above} are above zero "
        f"(two-in-one better), {below} below (search-then-prune better) and {spans} span zero."
    )
    table = Table(
        (
            "pre-training",
            "dataset",
            "data",
            "inside",
            "sparsity",
            "MACs (M) ST / S+P",
            *[_NAMES[(r, m)] for r in REGIMES for m in METRICS],
        ),
        tuple(rows),
    )
    return [Paragraph(summary), table]


def _figures(data: ReportData, macs: Mapping[Ticket, tuple[float, float]]) -> list[Figure]:
    made = []
    for fraction in data.fractions:
        for dataset in data.datasets:
            shown = [t for t in macs if t[1:3] == (dataset, fraction)]
            if not any(t[3] in NETWORK_METHODS for t in shown):
                continue
            made.append(
                Figure(
                    paths.figure(f"macs-{slug(dataset)}-{round(100 * fraction)}"),
                    _plot(data, macs, shown, dataset, fraction),
                    f"{dataset}, {fraction_text(fraction)} of the training data: accuracy "
                    "against kept MACs (log scale), one line per pre-training and method "
                    "through its rungs, the dense model a star; bars: 95% intervals over seeds.",
                )
            )
    return made


def _plot(data: ReportData, macs, shown: list[Ticket], dataset: str, fraction: float) -> bytes:
    figure = new_figure(figsize=(9.0, 6.6), dpi=DPI)
    axes = figure.subplots(2, 2, squeeze=False)
    groups = sorted({(t[0], t[3], t[4]) for t in shown})
    colors = {ladder: f"C{i}" for i, ladder in enumerate(_ladders(data))}
    markers = {p: m for p, m in zip(data.pretrainings, "osD^vP<>", strict=False)}
    for i, regime in enumerate(REGIMES):
        for j, metric in enumerate(METRICS):
            ax = axes[i][j]
            for pretraining, method, inside in groups:
                points = []
                for t in sorted(
                    (t for t in shown if (t[0], t[3], t[4]) == (pretraining, method, inside)),
                    key=lambda t: macs[t][1],
                ):
                    cell = data.cells.get(CellKey(*t, regime))
                    value = cell.metric(metric) if cell else None
                    if value is not None:
                        points.append((macs[t][1], value.mean, value.half or 0.0))
                if not points:
                    continue
                label = f"{pretraining} {ladder_label(method, inside)}"
                ax.errorbar(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    yerr=[p[2] for p in points],
                    color=colors.get((method, inside), "k"),
                    marker="*" if method == "dense" else markers.get(pretraining, "o"),
                    markersize=8 if method == "dense" else 5,
                    linewidth=1.0,
                    capsize=2,
                    label=label,
                )
            ax.set_xscale("log")
            ax.set_title(_NAMES[(regime, metric)], fontsize=10)
            ax.set_xlabel("kept MACs (millions)", fontsize=8)
            ax.set_ylabel("accuracy (%)", fontsize=8)
            ax.grid(alpha=0.3, linewidth=0.5)
            ax.tick_params(labelsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize=7, frameon=False)
    figure.suptitle(
        f"Accuracy against MACs on {dataset}, {fraction_text(fraction)} of the data", fontsize=11
    )
    figure.tight_layout(rect=(0, 0.12, 1, 1))
    return png_bytes(figure)
