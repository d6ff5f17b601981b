"""The findings about accuracies, rule by rule on hand-built cells: AT transfer's RA above ST's
(the 5-point bar and the 0 floor), FAT ahead at low and AT at high sparsity (the median split,
the tie band, the not-testable gate), IMP against a baseline at equal sparsity, and whether
pre-training helps (the control comparison's outcomes counted). Every expected line and count
is written out by hand."""

from __future__ import annotations

import pytest

from doublewin.analysis.findings.accuracy import (
    at_ra_above,
    fat_low_at_high,
    imp_beats,
    pretraining_helps,
)
from doublewin.analysis.verdict.stats import Interval
from findings_inputs import (
    IMP,
    KINDS,
    UNTESTABLE,
    assert_same_texts_on_every_path,
    comparison,
    data,
    gain,
    put,
    score,
)

# ---------------------------------------------------------------- AT RA far above ST RA


def _dense(cells, label, st_ra, at_ra, **kwargs):
    return put(cells, label, "dense", 0.0, st=(90.0, st_ra), at=(85.0, at_ra), **kwargs)


def test_a_gap_of_five_points_is_a_win_a_gap_of_zero_or_less_a_loss_and_between_neither():
    cells = {}
    _dense(cells, "A", 80.0, 85.0)  # +5.00: exactly the bar
    _dense(cells, "B", 80.0, 84.99)  # just under
    _dense(cells, "C", 80.0, 80.01)  # just above zero
    _dense(cells, "D", 80.0, 80.0)  # zero
    _dense(cells, "E", 80.0, 79.0)  # below
    finding = at_ra_above(data(cells))
    assert finding.key == "at-ra"
    assert (finding.wins, finding.losses, finding.status) == (1, 2, "cannot tell")
    assert finding.evidence == (
        "A → digits at 100% data: RA 85.00 (AT) vs 80.00 (ST), gap +5.00 — for",
        "B → digits at 100% data: RA 84.99 (AT) vs 80.00 (ST), gap +4.99 — neither",
        "C → digits at 100% data: RA 80.01 (AT) vs 80.00 (ST), gap +0.01 — neither",
        "D → digits at 100% data: RA 80.00 (AT) vs 80.00 (ST), gap +0.00 — against",
        "E → digits at 100% data: RA 79.00 (AT) vs 80.00 (ST), gap -1.00 — against",
    )
    assert finding.note == ""


@pytest.mark.parametrize(("at_ra", "status"), [(86.0, "supports"), (79.0, "contradicts")])
def test_six_settings_one_way_decide_the_at_ra_finding(at_ra, status):
    cells = {}
    for label in ("A", "B", "C"):
        for fraction in (1.0, 0.1):
            _dense(cells, label, 80.0, at_ra, fraction=fraction)
    finding = at_ra_above(data(cells))
    assert finding.status == status
    assert finding.wins + finding.losses == 6


def test_settings_are_listed_by_pretraining_dataset_and_largest_fraction_first():
    cells = {}
    _dense(cells, "STD", 80.0, 90.0, fraction=0.1)
    _dense(cells, "STD", 80.0, 90.0, fraction=1.0)
    _dense(cells, "AT", 80.0, 90.0, dataset="svhn")
    _dense(cells, "STD", 80.0, 90.0, dataset="cifar10")
    put(cells, "AT", "imp", 0.5)  # tickets are not settings of this finding
    lines = [line.split(":")[0] for line in at_ra_above(data(cells)).evidence]
    assert lines == [
        "AT → svhn at 100% data",
        "STD → cifar10 at 100% data",
        "STD → digits at 100% data",
        "STD → digits at 10% data",
    ]


def test_a_missing_dense_ra_under_either_regime_is_neither():
    cells = put({}, "A", "dense", 0.0, st=(90.0, None), at=(85.0, 99.0))
    put(cells, "B", "dense", 0.0, st=(90.0, 10.0), at=(85.0, None))
    only_st = put({}, "C", "dense", 0.0)
    del only_st[next(k for k in only_st if k.regime == "at")]
    cells.update(only_st)
    finding = at_ra_above(data(cells))
    assert (finding.wins, finding.losses) == (0, 0)
    assert finding.evidence == tuple(
        f"{label} → digits at 100% data: dense RA missing under one regime — neither"
        for label in "ABC"
    )


def test_without_dense_rows_the_at_ra_finding_says_so():
    finding = at_ra_above(data(put({}, "A", "imp", 0.5)))
    assert (finding.status, finding.evidence) == ("cannot tell", ())
    assert finding.note == "the run has no dense baseline rows."


# ---------------------------------------------------- FAT at low, AT at high sparsity


def _fat_at(fat: dict[float, float], at: dict[float, float], fraction=0.1, **kwargs) -> dict:
    cells = {}
    for label, scores in (("FAT", fat), ("AT", at)):
        for sparsity, value in scores.items():
            score(cells, label, sparsity, value, fraction=fraction, **kwargs)
    return cells


def test_fat_ahead_below_the_median_rung_and_at_ahead_above_it_are_wins():
    cells = _fat_at({0.5: 80.0, 0.75: 10.0, 0.875: 50.0}, {0.5: 70.0, 0.75: 90.0, 0.875: 60.0})
    finding = fat_low_at_high(data(cells), IMP, [0.1])
    assert finding.key == "fat-low-at-high"
    assert (finding.wins, finding.losses) == (2, 0)
    assert finding.evidence == (  # the median rung (75%) is skipped
        "digits at 10% data, 50.00% (low): FAT 80.00 vs AT 70.00 — for",
        "digits at 10% data, 87.50% (high): FAT 50.00 vs AT 60.00 — for",
    )
    assert finding.status == "cannot tell" and finding.note == ""


def test_at_ahead_low_and_fat_ahead_high_are_losses():
    cells = _fat_at({0.5: 70.0, 0.875: 61.0}, {0.5: 80.0, 0.875: 60.0})
    finding = fat_low_at_high(data(cells), IMP, [0.1])
    # Two rungs: the median 68.75% is between them, so both are judged.
    assert (finding.wins, finding.losses) == (0, 2)
    assert finding.evidence == (
        "digits at 10% data, 50.00% (low): FAT 70.00 vs AT 80.00 — against",
        "digits at 10% data, 87.50% (high): FAT 61.00 vs AT 60.00 — against",
    )


def test_leads_within_half_a_point_are_ties():
    cells = _fat_at({0.5: 70.5, 0.875: 60.0}, {0.5: 70.0, 0.875: 60.51})
    finding = fat_low_at_high(data(cells), IMP, [0.1])
    assert (finding.wins, finding.losses) == (1, 0)
    assert [line.rsplit("— ", 1)[1] for line in finding.evidence] == ["tie", "for"]


def test_six_low_wins_support_fat_low_at_high():
    rungs = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    fat = dict.fromkeys(rungs, 80.0)
    at = dict.fromkeys(rungs, 70.0)
    at.update({0.5: 90.0, 0.6: 90.0, 0.7: 90.0})  # AT ahead above the median 40%
    finding = fat_low_at_high(data(_fat_at(fat, at)), IMP, [0.1])
    assert (finding.wins, finding.losses, finding.status) == (6, 0, "supports")


def test_only_the_limited_fractions_and_the_primary_ladder_are_read():
    cells = _fat_at({0.5: 80.0, 0.875: 50.0}, {0.5: 70.0, 0.875: 60.0}, fraction=1.0)
    cells.update(_fat_at({0.5: 80.0, 0.875: 50.0}, {0.5: 70.0, 0.875: 60.0}, method="omp"))
    finding = fat_low_at_high(data(cells), IMP, [0.1])
    assert finding.evidence == ()
    assert finding.note == (
        "no dataset has two or more rungs transferred from both FAT and AT pre-trainings "
        "with limited data."
    )


def test_one_common_rung_cannot_be_split_into_low_and_high():
    cells = _fat_at({0.5: 80.0, 0.75: 80.0}, {0.5: 70.0, 0.875: 60.0})
    assert fat_low_at_high(data(cells), IMP, [0.1]).evidence == ()


def test_datasets_and_fractions_are_judged_in_order():
    cells = _fat_at({0.5: 80.0, 0.875: 50.0}, {0.5: 70.0, 0.875: 60.0}, dataset="svhn")
    cells.update(_fat_at({0.5: 80.0, 0.875: 50.0}, {0.5: 70.0, 0.875: 60.0}, fraction=0.01))
    cells.update(_fat_at({0.5: 80.0, 0.875: 50.0}, {0.5: 70.0, 0.875: 60.0}))
    testable = [("digits", 0.1), ("digits", 0.01), ("svhn", 0.1)]
    finding = fat_low_at_high(data(cells, control=comparison(testable)), IMP, [0.1, 0.01])
    heads = [line.split(",")[0] for line in finding.evidence]
    assert heads == (
        ["digits at 10% data"] * 2
        + ["svhn at 10% data"] * 2
        + ["digits at 1% data"] * 2
        + [f"svhn at 1% data: not testable ({UNTESTABLE})"]
    )
    assert (finding.wins, finding.losses) == (6, 0)


def test_a_setting_where_pretraining_does_not_help_is_not_testable():
    cells = _fat_at({0.5: 80.0, 0.875: 50.0}, {0.5: 70.0, 0.875: 60.0})
    finding = fat_low_at_high(data(cells, control=comparison([("digits", 1.0)])), IMP, [0.1])
    assert finding.status == "not testable"
    assert finding.evidence == (f"digits at 10% data: not testable ({UNTESTABLE})",)
    assert finding.note == UNTESTABLE + "."
    # One testable dataset is enough for the rule to judge.
    cells.update(_fat_at({0.5: 80.0, 0.875: 50.0}, {0.5: 70.0, 0.875: 60.0}, dataset="svhn"))
    mixed = fat_low_at_high(data(cells, control=comparison([("svhn", 0.1)])), IMP, [0.1])
    assert (mixed.status, mixed.wins) == ("cannot tell", 2)


def test_fat_low_at_high_needs_limited_data_both_kinds_and_tickets():
    cells = _fat_at({0.5: 80.0, 0.875: 50.0}, {0.5: 70.0, 0.875: 60.0})
    single = fat_low_at_high(data(cells), IMP, [])
    assert single.status == "cannot tell"
    assert single.note == (
        "the run has a single data fraction; add fractions such as 0.1 and 0.01 to the "
        "transfer section."
    )
    no_fat = fat_low_at_high(data(cells, kinds={"FAT": None, "AT": "at"}), IMP, [0.1])
    assert no_fat.note.startswith("no FAT pre-training is known in this run")
    no_at = fat_low_at_high(data(cells, kinds={"FAT": "fat", "AT": "std"}), IMP, [0.1])
    assert no_at.note.startswith("no AT pre-training is known in this run")
    assert fat_low_at_high(data(cells), None, [0.1]).note == "the run has no tickets."
    assert (no_fat.status, no_at.status) == ("cannot tell", "cannot tell")


# ------------------------------------------------------------- IMP against a baseline


def test_imp_against_a_baseline_at_equal_sparsity_with_the_tie_band():
    cells = {}
    for sparsity, imp, other in ((0.5, 80.0, 70.0), (0.75, 70.5, 70.0), (0.875, 60.0, 60.6)):
        score(cells, "STD", sparsity, imp)
        score(cells, "STD", sparsity, other, method="omp")
    score(cells, "STD", 0.9, 50.0, method="omp")  # no IMP rung at 90%: not compared
    finding = imp_beats(data(cells), IMP, "omp")
    assert finding.key == "imp-beats-omp"
    assert finding.claim == "IMP finds better tickets than OMP at equal sparsity."
    assert (finding.wins, finding.losses, finding.status) == (1, 1, "cannot tell")
    assert finding.evidence == (
        "STD → digits at 100% data, 50.00%: IMP 80.00 vs OMP 70.00 — for",
        "STD → digits at 100% data, 75.00%: IMP 70.50 vs OMP 70.00 — tie",
        "STD → digits at 100% data, 87.50%: IMP 60.00 vs OMP 60.60 — against",
    )
    # (10 + 0.5 − 0.6) / 3 = 3.30
    assert finding.note == "mean IMP lead +3.30 points over 3 ticket(s)."


def test_imp_comparisons_are_ordered_by_setting_then_sparsity():
    cells = {}
    for label, fraction, sparsity in (
        ("STD", 0.1, 0.5),
        ("AT", 1.0, 0.875),
        ("STD", 1.0, 0.875),
        ("STD", 1.0, 0.5),
    ):
        score(cells, label, sparsity, 80.0, fraction=fraction)
        score(cells, label, sparsity, 50.0, fraction=fraction, method="random")
    finding = imp_beats(data(cells), IMP, "random")
    assert [line.split(": IMP")[0] for line in finding.evidence] == [
        "AT → digits at 100% data, 87.50%",
        "STD → digits at 100% data, 50.00%",
        "STD → digits at 100% data, 87.50%",
        "STD → digits at 10% data, 50.00%",
    ]
    assert finding.note == "mean IMP lead +30.00 points over 4 ticket(s)."


@pytest.mark.parametrize(("imp", "status"), [(80.0, "supports"), (40.0, "contradicts")])
def test_six_tickets_one_way_decide_imp_against_random(imp, status):
    cells = {}
    for sparsity in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6):
        score(cells, "STD", sparsity, imp)
        score(cells, "STD", sparsity, 60.0, method="random")
    assert imp_beats(data(cells), IMP, "random").status == status


def test_imp_against_a_missing_baseline_or_without_imp_cannot_tell():
    cells = score({}, "STD", 0.5, 80.0)
    score(cells, "STD", 0.75, 60.0, method="random")  # no IMP rung there
    missing = imp_beats(data(cells), IMP, "random")
    assert (missing.status, missing.evidence) == ("cannot tell", ())
    assert missing.note == (
        "the run has no random tickets at the sparsities of the IMP ladder; add random to "
        "tickets.methods."
    )
    for primary in (None, ("omp", "")):
        finding = imp_beats(data(cells), primary, "random")
        assert (finding.status, finding.note) == ("cannot tell", "the run has no IMP tickets.")


def test_an_imp_ticket_missing_an_accuracy_is_not_compared():
    cells = put({}, "STD", "imp", 0.5, at=(80.0, None))
    score(cells, "STD", 0.5, 60.0, method="random")
    assert imp_beats(data(cells), IMP, "random").evidence == ()


# ------------------------------------------------------------------ pre-training helps


def test_pretraining_helps_counts_helps_as_for_and_hurts_as_against():
    gains = (
        gain("STD", "helps", Interval(4.2, 1.0, 7.4, 3), Interval(6.0, 2.0, 10.0, 3)),
        gain("FAT", "hurts", Interval(-4.0, -6.0, -2.0, 3), None),
        gain("AT", "inconclusive", Interval(1.0, None, None, 1), Interval(0.5, -1.0, 2.0, 3)),
    )
    finding = pretraining_helps(data(control=comparison(gains=gains)))
    assert finding.key == "pretraining-helps"
    assert (finding.wins, finding.losses, finding.status, finding.note) == (1, 1, "cannot tell", "")
    assert finding.evidence == (
        "STD → digits at 10% data: ST SA +4.2 [+1.0, +7.4], AT RA +6.0 [+2.0, +10.0] points "
        "vs CONTROL — for",
        "FAT → digits at 10% data: ST SA -4.0 [-6.0, -2.0], AT RA — points vs CONTROL — against",
        "AT → digits at 10% data: ST SA +1.0, AT RA +0.5 [-1.0, +2.0] points vs CONTROL — neither",
    )


@pytest.mark.parametrize(("outcome", "status"), [("helps", "supports"), ("hurts", "contradicts")])
def test_six_settings_one_way_decide_whether_pretraining_helps(outcome, status):
    up = Interval(5.0, 1.0, 9.0, 3)
    gains = [gain(label, outcome, up, up, fraction=f) for label in KINDS for f in (1.0, 0.1)]
    finding = pretraining_helps(data(control=comparison(gains=gains[:6])))
    assert (finding.status, finding.wins + finding.losses) == (status, 6)


def test_pretraining_helps_needs_a_control_sharing_a_dense_setting():
    none = pretraining_helps(data(control=comparison(control=None)))
    assert none.status == "cannot tell"
    assert none.note == (
        "the run has no no-pre-training control; add `CONTROL: {kind: control}` to pretrain.runs."
    )
    alone = pretraining_helps(data(control=comparison(gains=())))
    assert (alone.status, alone.evidence) == ("cannot tell", ())
    assert alone.note == "no pre-training shares a dense setting with the control."


def test_every_path_of_a_rule_carries_the_same_key_claim_paper_and_rule():
    dense = _dense({}, "STD", 80.0, 90.0)
    split = _fat_at({0.5: 80.0, 0.875: 50.0}, {0.5: 70.0, 0.875: 60.0})
    pair = score(score({}, "STD", 0.5, 80.0), "STD", 0.5, 70.0, method="omp")
    helped = comparison(gains=[gain("STD", "helps", None, None)])
    paths = {
        "at-ra": [at_ra_above(data()), at_ra_above(data(dense))],
        "fat-low-at-high": [
            fat_low_at_high(data(split), IMP, []),
            fat_low_at_high(data(split, kinds={}), IMP, [0.1]),
            fat_low_at_high(data(split), IMP, [0.1]),
            fat_low_at_high(data(split, control=comparison(())), IMP, [0.1]),
        ],
        "imp-beats-omp": [imp_beats(data(pair), None, "omp"), imp_beats(data(pair), IMP, "omp")],
        "pretraining-helps": [
            pretraining_helps(data(control=comparison(control=None))),
            pretraining_helps(data(control=helped)),
        ],
    }
    assert_same_texts_on_every_path(paths)


def test_a_lead_at_a_high_rung_counts_once_within_the_tie_band():
    # AT ahead by 0.3 at the high rung: inside the 0.5 band, a tie.
    cells = _fat_at({0.5: 80.0, 0.875: 60.0}, {0.5: 70.0, 0.875: 60.3})
    finding = fat_low_at_high(data(cells), IMP, [0.1])
    assert [line.rsplit("— ", 1)[1] for line in finding.evidence] == ["for", "tie"]


def test_a_dataset_that_cannot_be_tested_does_not_stop_the_next():
    cells = _fat_at({0.5: 80.0, 0.875: 50.0}, {0.5: 70.0, 0.875: 60.0}, dataset="cifar10")
    cells.update(_fat_at({0.5: 80.0, 0.875: 50.0}, {0.5: 70.0, 0.875: 60.0}))
    finding = fat_low_at_high(data(cells, control=comparison([("digits", 0.1)])), IMP, [0.1])
    assert finding.evidence[0] == f"cifar10 at 10% data: not testable ({UNTESTABLE})"
    assert (finding.wins, finding.status) == (2, "cannot tell")


def test_a_sparsity_without_both_scores_does_not_stop_the_next():
    cells = put({}, "STD", "imp", 0.5, at=(80.0, None))  # IMP misses an accuracy at 50%
    score(cells, "STD", 0.5, 60.0, method="random")
    score(cells, "STD", 0.75, 70.0)
    score(cells, "STD", 0.75, 60.0, method="random")
    finding = imp_beats(data(cells), IMP, "random")
    assert finding.evidence == (
        "STD → digits at 100% data, 75.00%: IMP 70.00 vs random 60.00 — for",
    )


def test_a_dataset_with_one_common_rung_does_not_stop_the_next():
    cells = _fat_at({0.5: 80.0}, {0.5: 70.0, 0.875: 60.0}, dataset="cifar10")
    cells.update(_fat_at({0.5: 80.0, 0.875: 50.0}, {0.5: 70.0, 0.875: 60.0}))
    testable = [("cifar10", 0.1), ("digits", 0.1)]
    finding = fat_low_at_high(data(cells, control=comparison(testable)), IMP, [0.1])
    assert [line.split(",")[0] for line in finding.evidence] == ["digits at 10% data"] * 2
