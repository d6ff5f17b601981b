"""Loss-landscape figures: contours of a loss grid with the projected training trajectory
(the paper's Figure 6), one panel or a grid of panels with shared contour levels.

The grids are the .npz files of the landscape stage (keys ``coords``, ``values``,
``trajectory``, ``plane``, ``loss``; see stages/landscape.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from doublewin.analysis.report.figures import new_figure, png_bytes
from doublewin.core.errors import UserError

LEVELS = 14


@dataclass(frozen=True)
class Panel:
    """One landscape: its grid file and the labels of its row and column in a grid figure."""

    path: Path
    row: str
    column: str
    note: str = ""  # e.g. the sharpness, under the title


def read_grid(path: str | Path) -> dict[str, Any]:
    """The arrays of one landscape file (plain numpy; no pickle)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise UserError(
            f"{path}: not a landscape grid file ({exc}); rerun doublewin landscape"
        ) from None


def shared_levels(grids: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Contour levels common to every grid: geometric from the lowest loss to the highest, so
    flat and sharp panels read on one scale."""
    values = np.concatenate([np.asarray(g["values"], dtype=float).ravel() for g in grids])
    values = values[np.isfinite(values)]
    low = max(float(values.min()), 1e-4)
    high = max(float(values.max()), low * 1.01)
    return np.geomspace(low, high, LEVELS)


def _draw(ax, grid: Mapping[str, Any], levels: np.ndarray, title: str) -> Any:
    coords = np.asarray(grid["coords"], dtype=float)
    values = np.asarray(grid["values"], dtype=float)
    alpha, beta = np.meshgrid(coords, coords, indexing="ij")
    filled = ax.contourf(alpha, beta, values, levels=levels, cmap="viridis", extend="both")
    ax.contour(alpha, beta, values, levels=levels, colors="white", linewidths=0.4, alpha=0.6)
    path = np.asarray(grid["trajectory"], dtype=float)
    if path.size:
        ax.plot(path[:, 0], path[:, 1], "-o", color="#d62728", markersize=2.5, linewidth=1)
        ax.plot(path[0, 0], path[0, 1], "s", color="#ff7f0e", markersize=5)
    ax.plot(0.0, 0.0, "*", color="white", markersize=8)
    ax.set_title(title, fontsize=8)
    ax.set_xlim(coords[0], coords[-1])
    ax.set_ylim(coords[0], coords[-1])
    ax.tick_params(labelsize=6)
    return filled


def panel_png(path: str | Path, title: str) -> bytes:
    """One landscape as a PNG: contours, the trajectory (square: its start, star: the final
    weights at the centre)."""
    grid = read_grid(path)
    figure = new_figure(figsize=(4.2, 3.6))
    ax = figure.add_subplot(1, 1, 1)
    filled = _draw(ax, grid, shared_levels([grid]), title)
    figure.colorbar(filled, ax=ax, label=f"{grid['loss']} loss")
    ax.set_xlabel(f"{grid['plane']} direction 1", fontsize=8)
    ax.set_ylabel(f"{grid['plane']} direction 2", fontsize=8)
    figure.tight_layout()
    return png_bytes(figure)


def grid_png(panels: Sequence[Panel], rows: Sequence[str], columns: Sequence[str]) -> bytes:
    """Panels laid out rows × columns (the paper's Figure 6: data fractions × pre-trainings)
    with one set of contour levels; a missing panel is left blank."""
    grids = {(p.row, p.column): (read_grid(p.path), p) for p in panels}
    levels = shared_levels([g for g, _ in grids.values()])
    figure = new_figure(figsize=(2.7 * len(columns) + 1.0, 2.7 * len(rows)), layout="constrained")
    filled = None
    for i, row in enumerate(rows):
        for j, column in enumerate(columns):
            ax = figure.add_subplot(len(rows), len(columns), i * len(columns) + j + 1)
            if (row, column) not in grids:
                ax.set_axis_off()
                continue
            grid, panel = grids[(row, column)]
            title = f"{column}, {row}" + (f"\n{panel.note}" if panel.note else "")
            filled = _draw(ax, grid, levels, title)
    if filled is not None:
        figure.colorbar(filled, ax=figure.axes, shrink=0.8, label="loss (shared levels)")
    return png_bytes(figure)
