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
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doublewin.core import paths
from doublewin.core.atomic import atomic_write_text
from doublewin.core.errors import UserError
from doublewin.core.foreign import RESULTS_TABLE, reading
from doublewin.core.results import LABEL_COLUMNS, TEST_METRICS, TEXT_COLUMNS, TIMING_COLUMNS

LEADING_COLUMNS = (*LABEL_COLUMNS, *TEST_METRICS)
BOM = "\ufeff"
# A number written with a decimal comma (0,5 or 93,41), as spreadsheets in many locales save.
DECIMAL_COMMA = re.compile(r"^([-+]?\d+),(\d+)$")


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


def parse_results_csv(
    text: str, name: str = paths.RESULTS, notes: list[str] | None = None
) -> list[dict[str, Any]]:
    """Rows of a ``results.csv`` text (``name``: the file it came from, for errors); numbers
    are parsed back, empty cells are ``None`` (``""`` in the label columns, where an empty
    name such as ``imp_regime`` is meaningful). A table as spreadsheets save it is read too:
    a UTF-8 byte-order mark, semicolons or tabs between cells, decimal commas; what was
    detected is added to ``notes``. A column named twice is refused."""
    shape = table_shape(text)
    if shape.notes and notes is not None:
        notes.append(f"read {name} as {', '.join(shape.notes)}")
    reader = csv.reader(io.StringIO(shape.text), delimiter=shape.delimiter)
    try:
        header = [cell.strip() for cell in next(reader)]
    except StopIteration:
        return []
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise UserError(f"{name} line 1: the column {twice[0]!r} is named twice; name it once")
    rows = []
    for line_number, cells in enumerate(reader, start=2):
        if not cells:
            continue
        if len(cells) != len(header):
            raise UserError(
                f"{name} line {line_number}: {len(cells)} cells under "
                f"{len(header)} columns; rewrite it with `doublewin report RUN_DIR`"
            )
        if shape.decimal_comma:
            cells = [DECIMAL_COMMA.sub(r"\1.\2", cell) for cell in cells]
        rows.append({name: _parse(name, cell) for name, cell in zip(header, cells, strict=True)})
    return rows


@dataclass(frozen=True)
class TableShape:
    """How a results table is written: its text without a byte-order mark, the delimiter,
    whether numbers have decimal commas, and what of that differs from results.csv's own."""

    text: str
    delimiter: str
    decimal_comma: bool
    notes: tuple[str, ...]


def table_shape(text: str) -> TableShape:
    """The shape of a table's text, detected from its header line and its cells."""
    notes = []
    if text.startswith(BOM):
        text = text[len(BOM) :]
        notes.append("UTF-8 with a byte-order mark")
    header = text.split("\n", 1)[0]
    delimiter = ","
    for candidate, word in ((";", "semicolon"), ("\t", "tab")):
        if header.count(candidate) > header.count(","):
            delimiter = candidate
            notes.append(f"{word}-separated")
            break
    decimal_comma = delimiter != "," and any(
        DECIMAL_COMMA.match(cell.strip())
        for line in text.splitlines()[1:]
        for cell in line.split(delimiter)
    )
    if decimal_comma:
        notes.append("with decimal commas")
    return TableShape(text, delimiter, decimal_comma, tuple(notes))


def read_results_csv(path: str | Path, notes: list[str] | None = None) -> list[dict[str, Any]]:
    """The rows of the ``results.csv`` at ``path`` (see ``parse_results_csv``)."""
    with reading(path, *RESULTS_TABLE) as path:
        return parse_results_csv(path.read_text(), str(path), notes)


def kept_columns(rows: list[dict[str, Any]], earlier: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with the columns ``earlier`` rows (the table a user may have added to) have
    and these do not, matched by job (or, without a job column, by the grid labels): a table
    rewritten from the store keeps every column."""
    made = {str(k) for row in rows for k in row}
    extra = [c for c in column_order(earlier) if c not in made]
    if not extra:
        return rows
    by_key = {_row_key(row): row for row in earlier}
    out = []
    for row in rows:
        before = by_key.get(_row_key(row), {})
        out.append({**row, **{c: before.get(c) for c in extra}})
    return out


def _row_key(row: Mapping[str, Any]) -> tuple:
    if row.get("job"):
        return ("job", str(row["job"]))
    return tuple(str(row.get(c)) for c in LABEL_COLUMNS)


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
