"""Tables that fit: piped or narrow, `doublewin datasets` and `doublewin models` print every
value whole at 80 columns; only descriptions wrap, and never into an ellipsis."""

from __future__ import annotations

import subprocess

import pytest

from doublewin.cli.tables import Column, plain_lines
from doublewin.data import describe_datasets
from doublewin.models import list_architectures
from runs import doublewin


def _piped(*args: str) -> str:
    done = subprocess.run(doublewin(*args), capture_output=True, text=True, timeout=120, env=_env())
    assert done.returncode == 0, done.stderr
    return done.stdout


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "COLUMNS": "80"}


def test_datasets_piped_prints_every_value_whole_within_80_columns():
    out = _piped("datasets")
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    for row in describe_datasets():
        sizes = "/".join(f"{row['splits'][s]:,}" for s in ("train", "val", "test"))
        line = next(line for line in out.splitlines() if line.startswith(row["name"] + " "))
        assert sizes in line and f"{row['image_size']} px" in line
        assert f"{row['status']}: {row['location']}" in out


def test_models_piped_keeps_names_and_counts_whole_and_wraps_only_descriptions():
    out = _piped("models")
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    flat = " ".join(out.split())
    for info in list_architectures():
        line = next(line for line in out.splitlines() if line.startswith(info.name + " "))
        assert f"{info.num_params:,}" in line and info.family in line
        assert " ".join(info.description.split()) in flat


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_plain_tables_give_way_only_in_the_wrapping_column(width):
    columns = [Column("path"), Column("count", right=True), Column("about", wraps=True)]
    rows = [["/a/very/long/path/that/stays/whole", "1,234,567", "word " * 30]]
    lines = plain_lines("t", columns, rows, width)
    text = "\n".join(lines)
    assert "/a/very/long/path/that/stays/whole" in text and "1,234,567" in text
    assert " ".join(text.split()).count("word") == 30
    fixed = len("/a/very/long/path/that/stays/whole") + len("  ") + len("1,234,567")
    if width - fixed - 2 >= 24:
        assert max(len(line) for line in lines) <= width  # the description wrapped beside
    else:
        assert "about: below each row" in lines[0]  # no room: it moved below its row
