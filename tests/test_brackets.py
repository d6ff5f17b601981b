"""Extremes as brackets: each ladder's largest certified double-win rung and the next rung up,
with its state; no conclusion drawn from a rung nobody transferred. Hand-built ladders for every
pattern (an untested gap, an inconclusive rung at the edge, a non-monotone ladder, the top rung
passing), comparisons of brackets, and the demo's own pattern (rungs 20% and 89.26% of a
ten-rung ladder transferred) through the report, `doublewin verdict` and its JSON."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from doublewin.analysis.judge import judge_table, judgement
from doublewin.analysis.report import analyse
from doublewin.analysis.report.verdict_section import headline
from doublewin.analysis.verdict.bracket import (
    DOUBLE_WIN,
    INCONCLUSIVE,
    NOT_DOUBLE_WIN,
    NOT_TRANSFERRED,
    Span,
    bracket_text,
    build_ladder,
    decided,
    deciding_rungs,
    highest,
    lowest_from,
    next_rung,
    order,
    possible_places,
    span,
)
from doublewin.analysis.verdict.config import VerdictConfig
from doublewin.tickets.ladder import imp_ladder

PAPER_LADDER = imp_ladder(0.2, 10)  # 20, 36, 48.8, 59.04, … 89.26%
Y, N, MAYBE = DOUBLE_WIN, NOT_DOUBLE_WIN, INCONCLUSIVE


def _ladder(states: dict[int, str]):
    """The paper's ten-rung ladder with the given 1-based rungs judged."""
    judged = {PAPER_LADDER[k - 1]: state for k, state in states.items()}
    return build_ladder(judged, PAPER_LADDER)


def test_an_untested_gap_leaves_the_extreme_a_bracket_up_to_the_failure():
    ladder = _ladder({1: Y, 10: N})
    assert bracket_text(ladder) == "double-win up to 20.00% (36.00% was not transferred)"
    assert not decided(ladder)
    assert next_rung(ladder).state == NOT_TRANSFERRED
    assert span(ladder) == Span(0.2, PAPER_LADDER[8])  # 20% … 86.58%, the rung below 89.26%
    assert [r.number for r in deciding_rungs(ladder)] == [2, 3, 4, 5, 6, 7, 8, 9]


def test_an_inconclusive_rung_at_the_edge_keeps_the_ladder_open():
    ladder = _ladder({1: Y, 2: Y, 3: Y, 4: MAYBE, 5: N})
    assert bracket_text(ladder) == "double-win up to 48.80% (59.04% is inconclusive)"
    assert not decided(ladder)
    assert span(ladder) == Span(0.488, 0.5904)
    assert possible_places(ladder) == (3, 4)


def test_a_non_monotone_ladder_is_bracketed_at_its_largest_double_win_rung():
    ladder = _ladder({1: Y, 2: N, 3: Y, 4: N})
    assert bracket_text(ladder) == "double-win up to 48.80% (59.04% fails)"
    assert decided(ladder)
    assert span(ladder) == Span(0.488, 0.488)


def test_the_top_rung_passing_decides_the_ladder():
    ladder = _ladder({k: Y for k in range(1, 11)})
    assert bracket_text(ladder) == "double-win up to 89.26%, the top rung"
    assert decided(ladder) and next_rung(ladder) is None
    assert span(ladder).point


def test_a_first_rung_that_fails_decides_none_and_a_transferred_first_rung_is_needed():
    failing = _ladder({1: N, 10: N})
    assert bracket_text(failing) == "no rung double-win (20.00% fails)"
    assert decided(failing) and span(failing) == Span(0.0, 0.0)
    untouched = _ladder({5: N})
    assert bracket_text(untouched) == "no rung double-win (20.00% was not transferred)"
    assert span(untouched) == Span(0.0, PAPER_LADDER[3])


def test_a_table_without_the_plan_places_untransferred_rungs_by_their_numbers():
    judged = {0.2: Y, 0.892626: N}
    ladder = build_ladder(judged, None, {0.2: 1, 0.892626: 10})
    assert [r.number for r in ladder] == list(range(1, 11))
    assert ladder[1].text() == "rung 2" and ladder[1].state == NOT_TRANSFERRED
    # Rungs 2–9 are somewhere below 89.26%: the extreme can be anything short of it.
    assert span(ladder) == Span(0.2, 0.892626, open=True)
    assert lowest_from(ladder, 0.5).number == 2  # rung 2 may already be ≥ 50%
    # Numbers that contradict the sparsities are not used.
    assert len(build_ladder(judged, None, {0.2: 3, 0.892626: 2})) == 2


@pytest.mark.parametrize(
    ("a", "b", "outcome"),
    [
        (Span(0.5904, 0.5904), Span(0.2, 0.488), "higher"),
        (Span(0.2, 0.488), Span(0.5904, 0.5904), "lower"),
        (Span(0.488, 0.488), Span(0.488, 0.488), "equal"),
        (Span(0.488, 0.5904), Span(0.488, 0.488), "overlap"),  # one rung open on one side
        (Span(0.2, 0.8658), Span(0.5904, 0.5904), "overlap"),
        (Span(0.8926, 0.8926), Span(0.2, 0.8926, open=True), "higher"),  # below the failure
        (Span(0.0, 0.0), Span(0.0, 0.2), "overlap"),
    ],
)
def test_brackets_count_only_where_they_do_not_overlap(a, b, outcome):
    assert order(a, b) == outcome


def test_the_best_of_a_group_spans_from_the_highest_floor_to_the_highest_ceiling():
    best = highest([Span(0.2, 0.36), Span(0.488, 0.488), Span(0.0, 0.2)])
    assert best == Span(0.488, 0.488)
    assert highest([Span(0.2, 0.8658), Span(0.488, 0.488)]) == Span(0.488, 0.8658)
    assert highest([]) is None


# ------------------------------------------- the demo's pattern, end to end


def _rows(fraction: float) -> list[dict]:
    """STD, FAT and AT at one fraction: the dense model, a 20% ticket that matches it on every
    metric over six seeds and an 89.26% ticket 10 points behind."""
    rows = []
    for label in ("STD", "FAT", "AT"):
        for name, sparsity, rung, loss in (
            ("dense", 0.0, "", 0.0),
            ("imp", 0.2, 1, 0.0),
            ("imp", 0.892626, 10, 10.0),
        ):
            for regime in ("st", "at"):
                for seed in range(6):
                    wobble = 0.2 * (seed % 3 - 1)
                    sa, ra = (90.0, 20.0) if regime == "st" else (80.0, 60.0)
                    rows.append(
                        {
                            "pretraining": label,
                            "dataset": "strokes",
                            "fraction": fraction,
                            "method": name,
                            "imp_regime": "" if name == "dense" else "std",
                            "sparsity": sparsity,
                            "rung": rung,
                            "regime": regime,
                            "seed": seed,
                            "sa_best_sa": sa - loss + wobble,
                            "ra_best_sa": ra - loss + wobble,
                            "sa_best_ra": sa - loss + wobble,
                            "ra_best_ra": ra - loss + wobble,
                        }
                    )
    return rows


META = {
    "pretrainings": [
        {"label": "STD", "regime": "std"},
        {"label": "FAT", "regime": "fat"},
        {"label": "AT", "regime": "at"},
    ],
    "ladders": [
        {"pretraining": p, "method": "imp", "imp_regime": "std", "sparsities": list(PAPER_LADDER)}
        for p in ("STD", "FAT", "AT")
    ],
}


def _finding(data, key):
    return next(f for f in data.findings if f.key == key)


def test_an_untested_rung_between_the_last_pass_and_half_the_weights_cannot_tell_existence():
    data = analyse(_rows(1.0) + _rows(0.1), meta=META, verdict_config=VerdictConfig())
    extremes = {(e.pretraining, e.fraction): e for e in data.extremes}
    assert {e.extreme for e in extremes.values()} == {0.2}  # the 20% tickets are certified
    for key in ("exist", "exist-limited"):
        found = _finding(data, key)
        assert (found.status, found.wins, found.losses) == ("cannot tell", 0, 0), key
        for label in ("STD", "FAT", "AT"):
            assert f"{label}'s 59.04% (not transferred)" in found.evidence[0], key
    # Nothing certified can order the pre-trainings: their brackets all run 20% … 86.58%.
    for key in ("robust-sparser", "robust-sparser-limited"):
        found = _finding(data, key)
        assert (found.wins, found.losses) == (0, 0), key
    text = headline(data).text
    assert "STD double-win up to 20.00% (36.00% was not transferred)" in text
    assert "contradict" not in text


def test_the_verdict_command_reads_the_same_brackets_from_the_rung_column(tmp_path: Path):
    rows = _rows(1.0)
    path = tmp_path / "results.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    data = judge_table(path, VerdictConfig())
    found = _finding(data, "exist")
    assert found.status == "cannot tell"
    assert "STD's rung 2 (not transferred)" in found.evidence[0]
    out = json.loads(json.dumps(judgement(data)))
    ladder = next(e for e in out["extremes"] if e["pretraining"] == "AT")
    assert ladder["bracket"]["next"] == {"number": 2, "sparsity": None, "state": NOT_TRANSFERRED}
    assert ladder["bracket"]["decided"] is False
    assert ladder["bracket"]["text"] == "double-win up to 20.00% (rung 2 was not transferred)"
