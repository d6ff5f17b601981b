"""Tables that fit: every value printed whole, at any width.

On a terminal wide enough for it, a rich table. Piped, or on a terminal narrower than the
table, plain aligned columns: numbers, names and paths keep their full width, and only the
columns marked ``wraps`` (a description) give way, wrapped onto continuation lines; when even
that leaves less than ``MIN_WRAP`` characters, such a value goes on its own indented lines
below its row. Never an ellipsis inside a value.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from doublewin.cli.app import console

MIN_WRAP = 24  # narrower than this, a wrapping column moves below its row
GAP = "  "
PLAIN_WIDTH = 80  # piped output: what a reader's terminal or a log viewer shows


@dataclass(frozen=True)
class Column:
    name: str
    right: bool = False  # numbers: right-aligned
    wraps: bool = False  # may be wrapped onto several lines (descriptions only)


def print_table(title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
    """Print ``rows`` under ``columns`` whole: a rich table where it fits, plain otherwise."""
    width = console.width if console.is_terminal else PLAIN_WIDTH
    needed = _natural_width(columns, rows)
    if console.is_terminal and needed <= width:
        table = Table(title=title)
        for c in columns:
            table.add_column(c.name, justify="right" if c.right else "left", no_wrap=True)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    for line in plain_lines(title, columns, rows, width):
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def print_listing(
    title: str, rows: Sequence[Any], columns: Sequence[tuple[Column, Callable[[Any], str]]]
) -> None:
    """`print_table` of ``rows`` (JSON records), each column with how a record gives its cell."""
    print_table(title, [c for c, _ in columns], [[cell(r) for _, cell in columns] for r in rows])


def plain_lines(
    title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int
) -> list[str]:
    """The plain form at ``width`` characters: aligned fixed columns, wrapped descriptions."""
    widths = [max([len(c.name), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    fixed = [i for i, c in enumerate(columns) if not c.wraps]
    wrapping = [i for i, c in enumerate(columns) if c.wraps]
    used = sum(widths[i] for i in fixed) + len(GAP) * (len(columns) - 1)
    room = width - used
    below = bool(wrapping) and room < MIN_WRAP * len(wrapping)
    if wrapping and not below:
        share = room // len(wrapping)
        for i in wrapping:
            widths[i] = min(widths[i], share)
    shown = fixed if below else list(range(len(columns)))
    if below:
        title += " (" + ", ".join(columns[i].name for i in wrapping) + ": below each row)"
    lines = [
        title,
        _join([columns[i].name for i in shown], [widths[i] for i in shown], columns, shown),
    ]
    lines.append(
        _join(["-" * widths[i] for i in shown], [widths[i] for i in shown], columns, shown)
    )
    for row in rows:
        cells = {i: [row[i]] for i in fixed}
        for i in wrapping:
            cells[i] = [row[i]] if below else (textwrap.wrap(row[i], widths[i]) or [""])
        height = max(len(cells[i]) for i in shown)
        for k in range(height):
            values = [cells[i][k] if k < len(cells[i]) else "" for i in shown]
            lines.append(_join(values, [widths[i] for i in shown], columns, shown).rstrip())
        if below:
            for i in wrapping:
                for part in textwrap.wrap(row[i], max(MIN_WRAP, width - 4)):
                    lines.append("    " + part)
    return lines


def _join(values: list[str], widths: list[int], columns: Sequence[Column], shown: list[int]) -> str:
    cells = []
    for value, w, i in zip(values, widths, shown, strict=True):
        cells.append(value.rjust(w) if columns[i].right else value.ljust(w))
    return GAP.join(cells)


def _natural_width(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> int:
    # A rich table's frame: one border and two padding spaces per column, one final border.
    widths = [max([len(c.name), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    return sum(widths) + 3 * len(columns) + 1
