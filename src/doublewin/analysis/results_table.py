"""``results.csv``: one row per transfer run, every column, in a stable order.

Columns: the grid labels and the verdict's accuracies first (the order of
``LEADING_COLUMNS``), then every other metric column alphabetically, then the spec fields
(``spec.*``) alphabetically, then the timing columns. A column missing from a row is an empty
cell, read back as ``None`` (as ``""`` in the label columns). Reading parses numbers back: a cell is an ``int`` or ``float`` only when that number
writes back to exactly the same text, so hashes and labels that merely look numeric (``007``,
``1e5``) stay strings, and every float written here reads back bit for bit.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from doublewin.core import paths
from doublewin.core.atomic import atomic_write_text
from doublewin.core.errors import UserError
from doublewin.core.foreign import RESULTS_TABLE, reading
from doublewin.core.results import LABEL_COLUMNS, TEST_METRICS, TEXT_COLUMNS, TIMING_COLUMNS

LEADING_COLUMNS = (*LABEL_COLUMNS, *TEST_METRICS)


def column_order(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every column of ``rows`` in the file's order (a function of the set of names only)."""
    names: set[str] = set()
    for row in rows:
        names.update(str(k) for k in row)
    leading = [c for c in LEADING_COLUMNS if c in names]
    timing = [c for c in TIMING_COLUMNS if c in names]
    rest = names - set(leading) - set(timing)
    spec = sorted(c for c in rest if c.startswith("spec."))
    other = sorted(c for c in rest if not c.startswith("spec."))
    return leading + other + spec + timing


def format_results_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """The text of ``results.csv`` for ``rows`` (floats written with ``repr``: exact)."""
    rows = list(rows)
    columns = column_order(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if columns:
        writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def write_results_csv(rows: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Write ``rows`` to ``path`` atomically (temporary name, then rename); returns the path."""
    path = Path(path)
    atomic_write_text(path, format_results_csv(rows))
    return path


def parse_results_csv(text: str, name: str = paths.RESULTS) -> list[dict[str, Any]]:
    """Rows of a ``results.csv`` text (``name``: the file it came from, for errors); numbers
    are parsed back, empty cells are ``None`` (``""`` in the label columns, where an empty
    name such as ``imp_regime`` is meaningful)."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return []
    rows = []
    for line_number, cells in enumerate(reader, start=2):
        if not cells:
            continue
        if len(cells) != len(header):
            raise UserError(
                f"{name} line {line_number}: {len(cells)} cells under "
                f"{len(header)} columns; rewrite it with `doublewin report RUN_DIR`"
            )
        rows.append({name: _parse(name, cell) for name, cell in zip(header, cells, strict=True)})
    return rows


def read_results_csv(path: str | Path) -> list[dict[str, Any]]:
    """The rows of the ``results.csv`` at ``path`` (see ``parse_results_csv``)."""
    with reading(path, *RESULTS_TABLE) as path:
        return parse_results_csv(path.read_text(), str(path))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _parse(column: str, text: str) -> Any:
    if column in TEXT_COLUMNS:
        return text
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        number = int(text)
        if str(number) == text:
            return number
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    if repr(value) == text or (math.isnan(value) and text == "nan"):
        return value
    return text
