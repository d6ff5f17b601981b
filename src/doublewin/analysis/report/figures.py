"""The report's figures as PNG bytes (matplotlib's Agg canvas; no pyplot, no global state).

Figures are small (about 100 dpi) and drawn straight onto an Agg canvas, so a report of a
thousand rows renders in a few seconds on a laptop CPU. Sparsities are drawn on an axis that
spaces IMP rungs evenly (position −log(1 − sparsity), labelled in percent), because 20% per
round crowds the sparse rungs near 100% on a linear axis.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from doublewin.analysis.summaries import (
    Cell,
    CellKey,
    dense_cell,
    fraction_text,
    ladder_label,
    ticket_score,
)
from doublewin.analysis.verdict import ExtremeSparsity

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100
_COLORS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
_REGIME_NAMES = {"st": "ST transfer", "at": "AT transfer"}
_METRIC_NAMES = {"sa": "SA (%)", "ra": "RA (%)"}


def accuracy_vs_sparsity(
    cells: Mapping[CellKey, Cell],
    *,
    dataset: str,
    fraction: float,
    ladder: tuple[str, str],
    pretrainings: Sequence[str],
    double_win: Mapping[tuple[str, float], bool | None],
) -> bytes:
    """SA and RA (points) against sparsity under ST and AT transfer, one line per pre-training.

    Each line is the ticket mean over seeds with its 95% t-interval as error bars; the shaded
    band is the dense model's 95% interval (dashed line: its mean). A filled marker is a
    double-win rung, a hollow one a rung that is not, a small dot one inconclusive or
    undetermined.
    ``double_win`` maps (pre-training, sparsity) → the rung's verdict."""
    figure = new_figure(figsize=(8.4, 5.8), dpi=DPI)
    axes = figure.subplots(2, 2, sharex=True)
    sparsities: set[float] = set()
    for row, regime in enumerate(("st", "at")):
        for col, metric in enumerate(("sa", "ra")):
            ax = axes[row][col]
            panel = _Panel(ax, cells, ladder, regime, metric, legend=(row, col) == (0, 0))
            for index, label in enumerate(pretrainings):
                color = _COLORS[index % len(_COLORS)]
                setting = (label, dataset, fraction)
                panel.dense_band(setting, label, color)
                verdicts = {s: v for (p, s), v in double_win.items() if p == label}
                sparsities |= panel.ticket_line(setting, label, color, verdicts)
            ax.set_title(f"{_REGIME_NAMES[regime]} — {metric.upper()}", fontsize=10)
            ax.set_ylabel(_METRIC_NAMES[metric], fontsize=9)
            ax.grid(alpha=0.3, linewidth=0.5)
            ax.tick_params(labelsize=8)
    _sparsity_ticks(axes[1][0], sparsities)
    _sparsity_ticks(axes[1][1], sparsities)
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.suptitle(
        f"{dataset}, {fraction_text(fraction)} of the training data, "
        f"{ladder_label(*ladder)} tickets",
        fontsize=11,
        y=0.99,
    )
    if handles:
        figure.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.95),
            ncol=min(len(labels), 6),
            fontsize=8,
            frameon=False,
        )
    figure.text(
        0.5,
        0.005,
        "filled: double-win rung · hollow: not double-win · dot: inconclusive or "
        "undetermined · bars and band: 95% intervals over seeds",
        ha="center",
        fontsize=8,
        color="#555",
    )
    # Fixed margins instead of tight_layout: a third of the drawing time, same look.
    figure.subplots_adjust(left=0.08, right=0.985, top=0.86, bottom=0.14, hspace=0.3, wspace=0.22)
    return png_bytes(figure)


class _Panel:
    """One panel of `accuracy_vs_sparsity`: ``metric`` under ``regime`` for the tickets of
    ``ladder``, each pre-training's line drawn over its dense model's band."""

    def __init__(
        self,
        ax: Any,
        cells: Mapping[CellKey, Cell],
        ladder: tuple[str, str],
        regime: str,
        metric: str,
        *,
        legend: bool,
    ):
        self.ax, self.cells, self.ladder = ax, cells, ladder
        self.regime, self.metric, self.legend = regime, metric, legend

    def dense_band(self, setting: tuple[str, str, float], label: str, color: str) -> None:
        """The dense model's 95% interval as a band, its mean as a dashed line."""
        dense = dense_cell(self.cells, setting, self.regime)
        stat = dense.metric(self.metric) if dense else None
        if stat is None:
            return
        has_tickets = any(k.setting == setting and k.ladder == self.ladder for k in self.cells)
        spread = stat.half or 0.0
        self.ax.axhspan(
            max(0.0, stat.mean - spread),  # accuracies stay within 0–100
            min(100.0, stat.mean + spread),
            color=color,
            alpha=0.12,
            linewidth=0,
        )
        # A pre-training without tickets (the control) is in the legend by its dense line:
        # the line every ticket is read against.
        self.ax.axhline(
            stat.mean,
            color=color,
            linestyle="--",
            linewidth=0.9,
            label=f"{label} (dense only)" if self.legend and not has_tickets else None,
        )

    def ticket_line(
        self,
        setting: tuple[str, str, float],
        label: str,
        color: str,
        verdicts: Mapping[float, bool | None],
    ) -> set[float]:
        """The tickets' means with their intervals as error bars, one marker per rung by its
        verdict (``verdicts``: sparsity → double-win); returns the sparsities drawn."""
        points = sorted(
            (key.sparsity, cell.metric(self.metric))
            for key, cell in self.cells.items()
            if key.setting == setting
            and key.ladder == self.ladder
            and key.regime == self.regime
            and cell.metric(self.metric) is not None
        )
        if not points:
            return set()
        xs = [_position(s) for s, _ in points]
        ys = [v.mean for _, v in points]
        # The interval's half-width, clipped to the 0–100 an accuracy can take.
        errors = [
            [max(0.0, min(v.half or 0.0, v.mean)) for _, v in points],
            [max(0.0, min(v.half or 0.0, 100.0 - v.mean)) for _, v in points],
        ]
        self.ax.errorbar(
            xs,
            ys,
            yerr=errors,
            color=color,
            linewidth=1.3,
            capsize=2,
            marker="none",
            label=label if self.legend else None,
        )
        # One marker artist per verdict kind, not per point: drawing stays fast.
        groups: dict[bool | None, list[tuple[float, float]]] = {True: [], False: [], None: []}
        for (sparsity, _), x, y in zip(points, xs, ys, strict=True):
            groups[verdicts.get(round(sparsity, 6))].append((x, y))
        for verdict, xy in groups.items():
            if xy:
                self.ax.plot(
                    [x for x, _ in xy],
                    [y for _, y in xy],
                    linestyle="none",
                    color=color,
                    **_marker(verdict, color),
                )
        return {s for s, _ in points}


def _marker(verdict: bool | None, color: str) -> dict[str, Any]:
    """Filled: double-win; hollow: not double-win; a small dot: undecided."""
    if verdict is None:
        return {"marker": ".", "markersize": 4}
    return {"marker": "o", "markersize": 6, "markerfacecolor": color if verdict else "white"}


def extreme_vs_fraction(
    extremes: Sequence[ExtremeSparsity], *, ladder: tuple[str, str], pretrainings: Sequence[str]
) -> bytes:
    """Extreme double-win sparsity (percent) against the data fraction, one panel per
    dataset and one line per pre-training: the largest certified double-win rung (0 for none),
    with a bar up to the highest rung its bracket allows where the next rung up is not
    certified to fail."""
    chosen = [e for e in extremes if (e.method, e.imp_regime) == ladder]
    datasets = sorted({e.dataset for e in chosen})
    figure, panels = _panel_grid(len(datasets), (3.6, 3.0), (0.6, 0.6))
    for ax, dataset in zip(panels, datasets, strict=True):
        for p_index, label in enumerate(pretrainings):
            spans = sorted(
                (e.fraction, e.span)
                for e in chosen
                if e.dataset == dataset and e.pretraining == label and e.span is not None
            )
            if spans:
                color = _COLORS[p_index % len(_COLORS)]
                xs = [f for f, _ in spans]
                lows = [100 * v.low for _, v in spans]
                ax.plot(xs, lows, marker="o", color=color, label=label)
                ax.vlines(xs, lows, [100 * v.high for _, v in spans], color=color, alpha=0.5)
        fractions = sorted({e.fraction for e in chosen if e.dataset == dataset})
        ax.set_xscale("log")
        ax.set_xticks(fractions, [fraction_text(f) for f in fractions])
        ax.minorticks_off()
        ax.set_ylim(-3, 103)
        ax.set_title(dataset, fontsize=10)
        ax.set_xlabel("downstream training data", fontsize=9)
        ax.set_ylabel("extreme double-win sparsity (%)", fontsize=9)
        ax.grid(alpha=0.3, linewidth=0.5)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=8, frameon=False)
    figure.suptitle(f"Data efficiency, {ladder_label(*ladder)} tickets", fontsize=11)
    figure.tight_layout()
    return png_bytes(figure)


def methods_vs_sparsity(
    cells: Mapping[CellKey, Cell],
    *,
    dataset: str,
    fraction: float,
    ladders: Sequence[tuple[str, str]],
    pretrainings: Sequence[str],
    double_win: Mapping[tuple[str, str, str, float], bool | None],
) -> bytes:
    """Ticket score (mean of ST SA, ST RA, AT SA, AT RA; points) against sparsity, one panel
    per pre-training and one line per ticket method. ``double_win`` maps (pre-training,
    method, IMP regime, sparsity) → the rung's verdict (filled marker: double-win)."""
    shown = [
        p
        for p in pretrainings
        if any(
            k.pretraining == p
            and k.dataset == dataset
            and k.fraction == fraction
            and k.method != "dense"
            for k in cells
        )
    ]
    figure, panels = _panel_grid(len(shown), (3.8, 3.1), (0.4, 0.7))
    for ax, label in zip(panels, shown, strict=True):
        verdicts = {k[1:]: v for k, v in double_win.items() if k[0] == label}
        _methods_panel(ax, cells, (label, dataset, fraction), ladders, verdicts)
    figure.suptitle(
        f"Ticket methods on {dataset}, {fraction_text(fraction)} of the training "
        "data (filled: double-win)",
        fontsize=11,
    )
    figure.tight_layout()
    return png_bytes(figure)


def _methods_panel(
    ax: Any,
    cells: Mapping[CellKey, Cell],
    setting: tuple[str, str, float],
    ladders: Sequence[tuple[str, str]],
    verdicts: Mapping[tuple[str, str, float], bool | None],
) -> None:
    """One pre-training's panel of `methods_vs_sparsity`: the dense score as a dashed line,
    each ladder's ticket scores (``verdicts``: (method, IMP regime, sparsity) → double-win)."""
    sparsities: set[float] = set()
    dense = [dense_cell(cells, setting, r) for r in ("st", "at")]
    if all(c is not None and c.sa is not None and c.ra is not None for c in dense):
        ax.axhline(
            sum(c.sa.mean + c.ra.mean for c in dense) / 4,
            color="black",
            linestyle="--",
            linewidth=0.9,
            label="dense",
        )
    for l_index, ladder in enumerate(ladders):
        color = _COLORS[l_index % len(_COLORS)]
        points = []
        for sparsity in sorted(
            {k.sparsity for k in cells if k.setting == setting and k.ladder == ladder}
        ):
            score = ticket_score(cells, setting, ladder, sparsity)
            if score is not None:
                points.append((sparsity, score))
        if not points:
            continue
        sparsities.update(s for s, _ in points)
        xs = [_position(s) for s, _ in points]
        ax.plot(xs, [v for _, v in points], color=color, linewidth=1.2, label=ladder_label(*ladder))
        won = [bool(verdicts.get((*ladder, round(s, 6)))) for s, _ in points]
        for kind, face in ((True, color), (False, "white")):
            xy = [(x, v) for (_, v), x, w in zip(points, xs, won, strict=True) if w is kind]
            if xy:
                ax.plot(
                    [x for x, _ in xy],
                    [y for _, y in xy],
                    linestyle="none",
                    marker="o",
                    markersize=5,
                    color=color,
                    markerfacecolor=face,
                )
    _sparsity_ticks(ax, sparsities)
    ax.set_title(setting[0], fontsize=10)
    ax.set_ylabel("score: mean of 4 accuracies (%)", fontsize=8)
    ax.grid(alpha=0.3, linewidth=0.5)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7, frameon=False)


def _panel_grid(
    count: int, size: tuple[float, float], margin: tuple[float, float]
) -> tuple[Figure, list[Any]]:
    """A figure of ``count`` panels, at most three a row, each ``size`` inches (width, height)
    plus ``margin`` in all; the unused places hidden. Returns the figure and its panels."""
    columns = max(1, min(3, count))
    rows = max(1, math.ceil(count / columns))
    width, height = size[0] * columns + margin[0], size[1] * rows + margin[1]
    figure = new_figure(figsize=(width, height), dpi=DPI)
    axes = figure.subplots(rows, columns, squeeze=False)
    places = [axes[i // columns][i % columns] for i in range(rows * columns)]
    for ax in places[count:]:
        ax.set_visible(False)
    return figure, places[:count]


def _position(sparsity: float) -> float:
    # −log10 of the remaining density: IMP rungs at 20% per round are equally spaced.
    return -math.log10(max(1.0 - sparsity, 1e-6))


def _sparsity_ticks(ax, sparsities: set[float]) -> None:
    ordered = sorted(sparsities)
    if len(ordered) > 8:  # keep the labels readable: about eight evenly spread rungs
        step = math.ceil(len(ordered) / 8)
        ordered = ordered[::step] + ([ordered[-1]] if (len(ordered) - 1) % step else [])
    ax.set_xticks(
        [_position(s) for s in ordered],
        [f"{100 * s:.1f}" for s in ordered],
        rotation=45,
        fontsize=7,
    )
    ax.set_xlabel("sparsity (%)", fontsize=9)


def new_figure(**options: Any) -> Figure:
    # deferred: matplotlib loads in about 0.5 s; only a report with figures needs it
    from matplotlib.figure import Figure

    return Figure(**options)


def png_bytes(figure: Figure) -> bytes:
    # deferred: see new_figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
