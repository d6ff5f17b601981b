"""results.csv: stable column order, exact round trip, atomic writes."""

from __future__ import annotations

import math

import pytest

from doublewin.analysis.report import read_results_csv, write_results_csv
from doublewin.analysis.results_table import column_order, parse_results_csv
from doublewin.core.errors import UserError

ROWS = [
    {
        "seconds": 12.5,
        "spec.train.attack.eps": 8 / 255,
        "pretraining": "AT",
        "dataset": "cifar10",
        "fraction": 0.1,
        "method": "imp",
        "imp_regime": "std",
        "sparsity": 0.8926258176,
        "rung": 10,
        "regime": "at",
        "seed": 0,
        "sa_best_sa": 81.23,
        "ra_best_sa": 40.1,
        "sa_best_ra": 80.0,
        "ra_best_ra": 41.7,
        "job": "transfer-0123",
        "collapsed": False,
        "spec.ticket": "tickets-1e5@0.892626",
        "loss": math.nan,
    },
    {
        "pretraining": "007",
        "dataset": "svhn",
        "fraction": 1.0,
        "method": "dense",
        "imp_regime": "",
        "sparsity": 0.0,
        "regime": "st",
        "seed": 1,
        "sa_best_sa": 95.0,
        "ra_best_sa": 1.0,
        "sa_best_ra": 94.5,
        "ra_best_ra": 2.0,
        "job": "1e5",
        "spec.seed": 1,
        "images_per_second": 1234.5,
    },
]


def test_results_csv_round_trips_every_value(tmp_path):
    path = write_results_csv(ROWS, tmp_path / "results.csv")
    back = read_results_csv(path)
    columns = column_order(ROWS)
    assert len(back) == 2
    for original, read in zip(ROWS, back, strict=True):
        assert list(read) == columns
        for column in columns:
            value = original.get(column)
            if isinstance(value, float) and math.isnan(value):
                assert math.isnan(read[column])
            else:
                assert read[column] == value, column
                assert type(read[column]) is type(value), column


def test_numeric_looking_labels_and_hashes_stay_strings():
    text = "pretraining,job,spec.ticket,fraction\n007,1e5,0123,1.0\n"
    (row,) = parse_results_csv(text)
    assert row == {"pretraining": "007", "job": "1e5", "spec.ticket": "0123", "fraction": 1.0}


def test_column_order_puts_labels_first_spec_next_timing_last():
    columns = column_order(ROWS)
    assert columns[:9] == [
        "pretraining",
        "dataset",
        "fraction",
        "method",
        "imp_regime",
        "sparsity",
        "rung",
        "regime",
        "seed",
    ]
    assert columns[-2:] == ["seconds", "images_per_second"]
    spec = [c for c in columns if c.startswith("spec.")]
    assert spec == sorted(spec)
    assert columns.index("spec.seed") > columns.index("loss")
    # The same columns in another order give the same file layout.
    assert column_order(list(reversed(ROWS))) == columns


def test_write_leaves_no_temporary_file_and_replaces_old_content(tmp_path):
    path = tmp_path / "results.csv"
    write_results_csv(ROWS, path)
    write_results_csv(ROWS[:1], path)
    assert len(read_results_csv(path)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


def test_reading_a_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="doublewin run"):
        read_results_csv(tmp_path / "nope.csv")


def test_a_ragged_line_is_a_user_error():
    with pytest.raises(UserError, match="line 3"):
        parse_results_csv("a,b\n1,2\n1,2,3\n")
