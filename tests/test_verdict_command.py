"""`doublewin verdict RESULTS.csv`: its text and JSON outputs, its options file, and one clear
line with exit code 2 for each kind of bad table."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

HEADER = [
    "pretraining",
    "dataset",
    "fraction",
    "method",
    "imp_regime",
    "sparsity",
    "regime",
    "seed",
    "sa_best_sa",
    "ra_best_sa",
    "sa_best_ra",
    "ra_best_ra",
]


def _table() -> list[list]:
    """Dense 90/40 (±1 over three seeds); IMP at 50% equal to dense seed by seed; IMP at 80%
    five points below on every metric; random at 50% with SA 3, 0 and +1 off (inconclusive)."""
    rows = []
    for regime in ("st", "at"):
        for seed, jitter in enumerate((-1.0, 0.0, 1.0)):
            sa, ra = 90.0 + jitter, 40.0 + jitter
            rows.append(["AT", "digits", 1.0, "dense", "", 0.0, regime, seed, sa, ra, sa, ra])
            rows.append(["AT", "digits", 1.0, "imp", "std", 0.5, regime, seed, sa, ra, sa, ra])
            rows.append(
                [
                    "AT",
                    "digits",
                    1.0,
                    "imp",
                    "std",
                    0.8,
                    regime,
                    seed,
                    sa - 5,
                    ra - 5,
                    sa - 5,
                    ra - 5,
                ]
            )
            off = (-3.0, 0.0, 1.0)[seed]
            rows.append(
                ["AT", "digits", 1.0, "random", "", 0.5, regime, seed, sa + off, ra, sa + off, ra]
            )
    return rows


def _write(path: Path, rows: list[list], header: list[str] = HEADER) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue())
    return path


def test_the_text_output_gives_each_ticket_the_extremes_and_the_findings(tmp_path, cli):
    code, out, err = cli("verdict", str(_write(tmp_path / "r.csv", _table())))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Judged by doublewin's default settings")
    assert lines[1].startswith("Verdict rule (interval).")
    imp50 = next(line for line in lines if "IMP (ST) 50.00%" in line)
    assert imp50.lstrip().startswith("✓") and "double-win" in imp50 and "3 seed(s)" in imp50
    imp80 = next(line for line in lines if "IMP (ST) 80.00%" in line)
    assert "not double-win" in imp80 and "ST SA -5.0 [-5.0, -5.0] ✗" in imp80
    random50 = next(line for line in lines if "random 50.00%" in line)
    assert "inconclusive" in random50 and "seeds would decide it" in random50
    assert "  AT → digits 100%  IMP (ST): double-win up to 50.00% (80.00% fails)" in lines
    assert (
        "  AT → digits 100%  random: no rung double-win (50.00% is inconclusive) — undecided"
        in lines
    )
    assert any("[cannot tell] IMP finds better tickets than random" in line for line in lines)


def test_the_json_output_carries_every_comparison_with_its_interval(tmp_path, cli):
    code, out, _ = cli("verdict", str(_write(tmp_path / "r.csv", _table())), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["verdict"]["rule"] == "interval"
    outcomes = {(t["method"], t["sparsity"]): t["outcome"] for t in result["tickets"]}
    assert outcomes == {
        ("imp", 0.5): "double-win",
        ("imp", 0.8): "not double-win",
        ("random", 0.5): "inconclusive",
    }
    random = next(t for t in result["tickets"] if t["method"] == "random")
    st_sa = next(c for c in random["comparisons"] if (c["regime"], c["metric"]) == ("st", "sa"))
    assert st_sa["outcome"] == "inconclusive" and st_sa["seeds"] == [0, 1, 2]
    assert st_sa["difference"]["low"] < -st_sa["delta"] < st_sa["difference"]["high"]
    assert random["seeds_needed"] == st_sa["seeds_needed"] > 3
    extremes = {e["method"]: e["extreme"] for e in result["extremes"]}
    assert extremes == {"imp": 0.5, "random": None}
    keys = [f["key"] for f in result["findings"]]
    assert keys[0] == "pretraining-helps" and "imp-beats-random" in keys
    assert all("p_value" in f and "status" in f for f in result["findings"])


def test_a_config_file_chooses_the_rule(tmp_path, cli):
    table = str(_write(tmp_path / "r.csv", _table()))
    (tmp_path / "paper.yaml").write_text("rule: paper\n")
    code, out, _ = cli("verdict", table, "--config", str(tmp_path / "paper.yaml"), "--json")
    assert code == 0
    random = next(t for t in json.loads(out)["tickets"] if t["method"] == "random")
    # Mean 0.67 below dense against one dense std (0.9 … 1.0): matching under the paper rule.
    assert random["outcome"] == "double-win"
    (tmp_path / "exp.yaml").write_text(
        "verdict: {rule: points, points: 6}\npretrainings: {AT: at}\n"
    )
    code, out, _ = cli("verdict", table, "--config", str(tmp_path / "exp.yaml"), "--json")
    assert code == 0
    assert {t["outcome"] for t in json.loads(out)["tickets"]} == {"double-win"}


def _bad(tmp_path, cli, rows, header=HEADER, *extra: str) -> str:
    code, out, err = cli("verdict", str(_write(tmp_path / "bad.csv", rows, header)), *extra)
    assert code == 2, (out, err)
    message = " ".join(err.split())
    assert message.startswith("error:") and len(err.strip().splitlines()) <= 3  # one wrapped line
    return message


def test_a_missing_column_is_named(tmp_path, cli):
    index = HEADER.index("seed")
    rows = [r[:index] + r[index + 1 :] for r in _table()]
    message = _bad(tmp_path, cli, rows, HEADER[:index] + HEADER[index + 1 :])
    assert "line 2 has no 'seed'" in message
    rows = [r[:-1] for r in _table()]
    message = _bad(tmp_path, cli, rows, HEADER[:-1])
    assert "no column 'ra_best_ra'" in message and "verdict.selection per-metric" in message


def test_a_non_numeric_accuracy_names_the_row_and_the_column(tmp_path, cli):
    rows = _table()
    rows[4][8] = "n/a%"
    message = _bad(tmp_path, cli, rows)
    assert "bad.csv line 6, column 'sa_best_sa': 'n/a%' is not a number" in message
    rows = _table()
    rows[0][8] = 130.0
    message = _bad(tmp_path, cli, rows)
    assert "line 2, column 'sa_best_sa': 130 is outside 0–100" in message


def test_a_ticket_without_its_dense_baseline_is_named(tmp_path, cli):
    rows = [r for r in _table() if not (r[3] == "dense" and r[6] == "at")]
    message = _bad(tmp_path, cli, rows)
    assert "the ticket AT → digits at fraction 1, imp/std at sparsity 0.5, regime at" in message
    assert "has no dense baseline" in message


def test_duplicate_rows_for_one_seed_are_named(tmp_path, cli):
    rows = _table()
    rows.append(list(rows[1]))
    message = _bad(tmp_path, cli, rows)
    assert f"bad.csv line {len(rows) + 1} repeats line 3: two rows for AT → digits" in message
    assert "seed 0; keep one row per seed" in message


def test_a_missing_file_and_a_bad_options_file_exit_2(tmp_path, cli):
    code, _, err = cli("verdict", str(tmp_path / "none.csv"))
    assert code == 2 and "not found" in err
    table = str(_write(tmp_path / "r.csv", _table()))
    (tmp_path / "v.yaml").write_text("rule: loose\n")
    code, _, err = cli("verdict", table, "--config", str(tmp_path / "v.yaml"))
    assert code == 2 and "verdict.rule: 'loose' is not one of interval, paper, points" in err


def test_a_table_on_a_0_to_1_scale_is_refused_unless_told_the_unit(tmp_path, cli):
    """Read as points, 0–1 accuracies put every ticket within a point of its dense model."""
    fractions = [row[:8] + [v / 100 for v in row[8:]] for row in _table()]
    message = _bad(tmp_path, cli, fractions)
    assert "every accuracy is at most 1" in message and "--unit fraction" in message
    points = _write(tmp_path / "points.csv", _table())
    code, expected, _ = cli("verdict", str(points), "--json")
    assert code == 0
    scaled = _write(tmp_path / "scaled.csv", fractions)
    code, got, _ = cli("verdict", str(scaled), "--unit", "fraction", "--json")
    assert code == 0
    outcomes = [t["outcome"] for t in json.loads(got)["tickets"]]
    assert outcomes == [t["outcome"] for t in json.loads(expected)["tickets"]]
    assert "double-win" in outcomes and "not double-win" in outcomes


def test_nan_in_an_accuracy_column_names_the_row(tmp_path, cli):
    rows = _table()
    rows[5][9] = "nan"
    message = _bad(tmp_path, cli, rows)
    assert "bad.csv line 7, column 'ra_best_sa': NaN" in message
