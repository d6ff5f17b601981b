"""The findings' shared rules by hand: the sign test's decision and its edges, the every-dataset
rule, the "not testable" gate, the tie band, the best extreme among pre-trainings and the
best ticket score per sparsity, and each finding's one-line summary."""

from __future__ import annotations

import pytest

from doublewin.analysis.findings.finding import (
    EVERY_TEST,
    Finding,
    decide,
    decide_every,
    extreme_text,
    gated,
    group_span,
    ladder_text,
    members,
    missing_kinds,
    scores_by_sparsity,
    tally,
)
from doublewin.analysis.summaries import Cell, CellKey, Stat
from doublewin.analysis.verdict import ExtremeSparsity


@pytest.mark.parametrize(
    ("wins", "losses", "status"),
    [
        (6, 0, "supports"),  # p = 2 · 0.5⁶ = 0.031
        (0, 6, "contradicts"),
        (5, 0, "cannot tell"),  # p = 0.0625
        (7, 1, "cannot tell"),  # p = 0.070
        (9, 1, "supports"),  # p = 0.021
        (1, 9, "contradicts"),
        (3, 3, "cannot tell"),
        (0, 0, "cannot tell"),
    ],
)
def test_a_finding_is_decided_by_a_two_sided_sign_test_at_five_percent(wins, losses, status):
    assert decide(wins, losses) == status


def test_a_claim_about_every_dataset_needs_every_dataset_won():
    assert decide_every(2, 0, 0) == "supports"
    assert decide_every(2, 0, 1) == "cannot tell"
    assert decide_every(2, 1, 0) == "contradicts"
    assert decide_every(0, 0, 0) == "cannot tell"


def _finding(**fields) -> Finding:
    base = {"key": "k", "claim": "c", "paper": "p", "rule": "r", "status": "supports"}
    return Finding(**{**base, **fields})


def test_the_gate_marks_not_testable_only_when_nothing_was_tested():
    finding = _finding(wins=1)
    assert gated(finding, ["digits at 100%: no pre-training beats the control"], 0).status == (
        "not testable"
    )
    assert gated(finding, ["a", "b"], 0).note == "a."
    assert gated(finding, ["a"], 1) is finding
    assert gated(finding, [], 0) is finding


@pytest.mark.parametrize(
    ("lead", "outcome"), [(0.6, "for"), (0.5, "tie"), (-0.5, "tie"), (-0.6, "against")]
)
def test_a_lead_within_the_tie_band_is_neither_a_win_nor_a_loss(lead, outcome):
    wins, losses = {"for": (3, 2), "against": (2, 3), "tie": (2, 2)}[outcome]
    assert tally(lead, 0.5, 2, 2) == (outcome, wins, losses)


def _extreme(label: str, extreme, rungs=((0.5, True),), fraction: float = 1.0) -> ExtremeSparsity:
    return ExtremeSparsity(label, "digits", fraction, "imp", "std", extreme, True, rungs)


def test_members_and_group_span_take_the_best_bracket_of_the_wanted_kinds():
    kinds = {"STD": "std", "FAT": "fat", "AT": "at", "AT2": "at"}
    by_setting = {
        ("STD", "digits", 1.0): _extreme("STD", 0.9, rungs=((0.9, True),)),
        ("FAT", "digits", 1.0): _extreme("FAT", 0.5),
        ("AT", "digits", 1.0): _extreme("AT", 0.75, rungs=((0.75, True), (0.9, False))),
        ("AT2", "digits", 1.0): _extreme("AT2", None, rungs=((0.5, False),)),  # none: 0%
        ("AT", "digits", 0.1): _extreme("AT", 0.99, fraction=0.1),
    }
    robust = members(kinds, by_setting, "digits", 1.0, ("fat", "at"))
    assert [label for label, _ in robust] == ["FAT", "AT", "AT2"]
    best = group_span(robust)
    assert (best.low, best.high, best.point) == (0.75, 0.75, True)  # AT decided at 75%
    assert group_span(members(kinds, by_setting, "digits", 0.1, ("fat",))) is None
    assert members(kinds, by_setting, "svhn", 1.0, ("at",)) == []
    # FAT's ladder ends at its one passing rung (the top): its bracket is decided there, so
    # an inconclusive rung elsewhere widens only its own member's span.
    open_fat = {
        **by_setting,
        ("FAT", "digits", 1.0): _extreme("FAT", 0.5, rungs=((0.5, True), (0.8, None))),
    }
    wide = group_span(members(kinds, open_fat, "digits", 1.0, ("fat", "at")))
    assert (wide.low, wide.high, wide.point) == (0.75, 0.8, False)


def _cells(values: dict[tuple[str, float], float]) -> dict[CellKey, Cell]:
    """Cells whose four accuracies all equal ``values[(pretraining, sparsity)]``."""
    out = {}
    for (label, sparsity), value in values.items():
        for regime in ("st", "at"):
            key = CellKey(label, "digits", 1.0, "imp", "std", sparsity, regime)
            out[key] = Cell(key, Stat(value, None, 1), Stat(value, None, 1), (0,))
    return out


def test_scores_by_sparsity_keep_the_best_ticket_among_the_labels():
    cells = _cells({("FAT", 0.5): 80.0, ("AT", 0.5): 85.0, ("AT", 0.75): 70.0, ("STD", 0.5): 99.0})
    assert scores_by_sparsity(cells, {"FAT", "AT"}, "digits", 1.0, ("imp", "std")) == {
        0.5: 85.0,
        0.75: 70.0,
    }
    assert scores_by_sparsity(cells, {"FAT"}, "digits", 1.0, ("imp", "std")) == {0.5: 80.0}
    assert scores_by_sparsity(cells, {"FAT", "AT"}, "digits", 0.1, ("imp", "std")) == {}
    assert scores_by_sparsity(cells, {"FAT", "AT"}, "digits", 1.0, ("omp", "")) == {}


def test_texts_of_extremes_ladders_and_missing_kinds():
    assert extreme_text(0.0) == "no double-win rung"
    assert extreme_text(0.8926) == "89.26%"
    assert ladder_text(("imp", "std")) == "IMP (ST)"
    assert ladder_text(None) == "main"
    assert missing_kinds({"A": "at"}, ("at",)) == ""
    assert missing_kinds({"A": "at"}, ("at",), ("fat", "std")).startswith(
        "no FAT or STD pre-training is known in this run"
    )


@pytest.mark.parametrize(
    ("fields", "summary"),
    [
        (
            {"status": "supports", "wins": 6},
            "This run supports the paper: 6 comparison(s) for, 0 against (sign test p = 0.0312).",
        ),
        (
            {"status": "contradicts", "losses": 7},
            "This run disagrees with the paper: 0 comparison(s) for, 7 against "
            "(sign test p = 0.0156).",
        ),
        (
            {"status": "not testable", "note": "no control."},
            "Not testable in this setting: no control.",
        ),
        (
            {"status": "cannot tell", "wins": 1, "losses": 1},
            "This run cannot tell: 1 comparison(s) for, 1 against (sign test p = 1), "
            "not significant at α = 0.05.",
        ),
        (
            {"status": "cannot tell", "wins": 1, "test": EVERY_TEST},
            "This run cannot tell: 1 comparison(s) for, 0 against (every dataset certified); "
            "some dataset is undecided.",
        ),
        ({"status": "cannot tell", "note": "no rows."}, "This run cannot tell: no rows."),
        ({"status": "cannot tell"}, "This run cannot tell: no comparison could be made."),
    ],
)
def test_each_status_reads_as_one_plain_sentence(fields, summary):
    assert _finding(**fields).summary == summary


def test_the_sign_tests_numbers():
    sign = _finding(wins=9, losses=3).sign
    assert sign.p_value == pytest.approx(0.14599609375)  # 2 · Σ_{k≤3} C(12,k) / 2¹²
    assert sign.share == 0.75
    assert _finding().test_text == "no decided comparison"


def test_scores_by_sparsity_take_the_maximum_whatever_the_order():
    for order in (
        ((("AT", 0.5), 85.0), (("FAT", 0.5), 80.0)),
        ((("FAT", 0.5), 80.0), (("AT", 0.5), 85.0)),
    ):
        cells = _cells(dict(order))
        assert scores_by_sparsity(cells, {"FAT", "AT"}, "digits", 1.0, ("imp", "std")) == {
            0.5: 85.0
        }


def test_members_keep_the_order_the_pretrainings_are_listed_in():
    kinds = {"AT": "at", "AT2": "at"}
    by_setting = {
        ("AT", "digits", 1.0): _extreme("AT", 0.75),
        ("AT2", "digits", 1.0): _extreme("AT2", 0.75),
    }
    assert [label for label, _ in members(kinds, by_setting, "digits", 1.0, ("at",))] == [
        "AT",
        "AT2",
    ]
