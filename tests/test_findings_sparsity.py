"""The findings about extreme double-win sparsity, rule by rule on hand-built ladders:
existence (the 50% bar, a certified loss, the every-dataset rule), robust pre-training sparser
and the order AT ≥ FAT ≥ STD (ties, undetermined extremes, the not-testable gate), and ST vs
AT inside IMP (rungs apart). Every expected line and count is written out by hand."""

from __future__ import annotations

import dataclasses

import pytest

from doublewin.analysis.findings.finding import EVERY_TEST
from doublewin.analysis.findings.sparsity import (
    exist,
    exist_limited,
    imp_regime,
    order,
    robust_sparser,
)
from doublewin.analysis.verdict.bracket import build_ladder
from findings_inputs import (
    IMP,
    UNTESTABLE,
    assert_same_texts_on_every_path,
    comparison,
    data,
    extreme,
    ladders,
    score,
    up_to,
)

# ---------------------------------------------------------------------------- existence


def test_a_dataset_with_a_double_win_rung_at_half_the_weights_is_a_win():
    found = exist(ladders(up_to("STD", 0.5), up_to("AT", 0.875), up_to("FAT", 0.75)), IMP, 1.0)
    assert found.key == "exist" and found.test == EVERY_TEST
    assert found.evidence == ("digits at 100% data: double-win up to 87.50% (AT) — for",)
    assert (found.wins, found.losses, found.status) == (1, 0, "supports")


def test_equal_best_extremes_name_the_first_pretraining():
    found = exist(ladders(up_to("FAT", 0.75), up_to("AT", 0.75)), IMP, 1.0)
    assert found.evidence == ("digits at 100% data: double-win up to 75.00% (FAT) — for",)


def test_the_lowest_rung_from_half_the_weights_failing_everywhere_is_a_certified_loss():
    below = extreme("STD", 0.4, ((0.4, True), (0.5, False), (0.75, False)))
    none = extreme("AT", None, ((0.5, False),))
    found = exist(ladders(below, none), IMP, 1.0)
    assert found.evidence == (
        "digits at 100% data: every pre-training's lowest rung ≥ 50% is certified not "
        "double-win (STD 50.00%, AT 50.00%) — against",
    )
    assert (found.wins, found.losses, found.status) == (0, 1, "contradicts")
    lone = exist(ladders(none), IMP, 1.0)
    assert lone.evidence == (
        "digits at 100% data: every pre-training's lowest rung ≥ 50% is certified not "
        "double-win (AT 50.00%) — against",
    )
    # Monotonicity: a rung above the lowest failure ≥ 50% is not double-win either, so an
    # undetermined rung up there does not keep the loss open.
    above = extreme("AT", None, ((0.5, False), (0.75, None)))
    assert exist(ladders(below, above), IMP, 1.0).status == "contradicts"


@pytest.mark.parametrize(
    ("other", "why"),
    [
        (extreme("AT", None, ((0.5, None),)), "judging AT's 50.00% (undetermined) would decide"),
        (extreme("AT", 0.4, ((0.4, True),)), "AT's ladder has no rung ≥ 50%"),
        (
            extreme("AT", 0.4, ((0.4, True), (0.5, None), (0.75, False)), inconclusive=(0.5,)),
            "judging AT's 50.00% (inconclusive) would decide",
        ),
    ],
)
def test_a_lowest_rung_from_half_the_weights_left_undecided_is_neither(other, why):
    below = extreme("STD", 0.4, ((0.4, True), (0.5, False)))
    found = exist(ladders(below, other), IMP, 1.0)
    assert found.evidence == (
        "digits at 100% data: double-win up to 40.00%; cannot tell whether a rung ≥ 50% is "
        f"double-win: {why} — neither",
    )
    assert (found.wins, found.losses, found.status) == (0, 0, "cannot tell")


def test_existence_needs_every_dataset_won():
    won = up_to("AT", 0.75)
    svhn = up_to("AT", 0.875, dataset="svhn")
    undecided = extreme("AT", None, ((0.5, None),), dataset="svhn")
    lost = extreme("AT", None, ((0.5, False),), dataset="svhn")
    assert exist(ladders(won, svhn), IMP, 1.0).status == "supports"
    assert exist(ladders(won, undecided), IMP, 1.0).status == "cannot tell"
    assert exist(ladders(won, lost), IMP, 1.0).status == "contradicts"


def test_existence_reads_only_the_primary_ladder_at_its_fractions():
    other = up_to("AT", 0.875, ladder=("omp", ""))
    limited = up_to("AT", 0.875, fraction=0.1)
    found = exist(ladders(up_to("AT", None), other, limited), IMP, 1.0)
    assert found.evidence == (
        "digits at 100% data: every pre-training's lowest rung ≥ 50% is certified not "
        "double-win (AT 50.00%) — against",
    )
    nothing = exist(ladders(limited), IMP, None)
    assert (nothing.status, nothing.evidence) == ("cannot tell", ())
    assert nothing.note == "no ticket ladder was transferred at these fractions."
    assert exist(ladders(), None, 1.0).note == "the run has no tickets."


def test_existence_with_limited_data_reads_every_smaller_fraction():
    found = exist_limited(
        ladders(
            up_to("AT", 0.75, fraction=0.1),
            up_to("AT", None, fraction=0.01),
            up_to("AT", 0.875, fraction=1.0),
        ),
        IMP,
        [0.1, 0.01],
    )
    assert found.key == "exist-limited"
    assert found.evidence == (
        "digits at 10% data: double-win up to 75.00% (AT) — for",
        "digits at 1% data: every pre-training's lowest rung ≥ 50% is certified not "
        "double-win (AT 50.00%) — against",
    )
    assert found.status == "contradicts"
    single = exist_limited(ladders(up_to("AT", 0.75)), IMP, [])
    assert single.status == "cannot tell"
    assert single.note == (
        "the run has a single data fraction; add fractions such as 0.1 and 0.01 to the "
        "transfer section."
    )


# ------------------------------------------------------- robust pre-training sparser


def test_robust_against_standard_extremes_win_lose_or_tie():
    cases = {
        "digits": (0.875, 0.5, "for"),
        "svhn": (0.5, 0.75, "against"),
        "cifar10": (0.75, 0.75, "tie"),
    }
    extremes = []
    for dataset, (robust, standard) in ((d, v[:2]) for d, v in cases.items()):
        extremes += [up_to("AT", robust, dataset=dataset), up_to("STD", standard, dataset=dataset)]
    found = robust_sparser(
        data(control=comparison([(d, 1.0) for d in cases])),
        ladders(*extremes),
        IMP,
        [1.0],
        limited=False,
    )
    assert found.key == "robust-sparser"
    assert found.evidence == (
        "cifar10 at 100% data: robust 75.00% (AT) vs standard 75.00% (STD) — tie",
        "digits at 100% data: robust 87.50% (AT) vs standard 50.00% (STD) — for",
        "svhn at 100% data: robust 50.00% (AT) vs standard 75.00% (STD) — against",
    )
    assert (found.wins, found.losses, found.status) == (1, 1, "cannot tell")


def test_a_ladder_without_a_double_win_rung_counts_as_zero():
    found = robust_sparser(
        data(), ladders(up_to("FAT", 0.5), up_to("STD", None)), IMP, [1.0], limited=False
    )
    assert found.evidence == (
        "digits at 100% data: robust 50.00% (FAT) vs standard no double-win rung (STD) — for",
    )


def test_overlapping_brackets_are_neither_and_name_the_rungs_that_would_decide():
    undetermined = extreme("AT", None, ((0.5, None),))
    found = robust_sparser(
        data(), ladders(undetermined, up_to("STD", 0.5)), IMP, [1.0], limited=False
    )
    assert found.evidence == (
        "digits at 100% data: robust 0%–50.00% (AT) vs standard 50.00% (STD): the brackets "
        "overlap; judging AT's 50.00% (undetermined) would decide — neither",
    )
    assert (found.wins, found.losses) == (0, 0)
    # An undecided bracket that lies wholly above the other still counts.
    above = extreme("AT", 0.75, ((0.5, True), (0.75, True), (0.875, None)))
    ahead = robust_sparser(data(), ladders(above, up_to("STD", 0.5)), IMP, [1.0], limited=False)
    assert ahead.evidence == (
        "digits at 100% data: robust 75.00%–87.50% (AT) vs standard 50.00% (STD) — for",
    )


def test_brackets_that_touch_only_at_a_failing_rung_do_not_overlap():
    # STD: up to 50%, 75% not transferred, 87.5% fails: its extreme is 50% or 75%. AT passes
    # 87.5%: certainly higher. FAT passes 75% only where STD may too: overlap.
    std = extreme("STD", 0.5, ((0.5, True), (0.875, False)))
    std = _with_untransferred(std, 0.75)
    at = up_to("AT", 0.875)
    ahead = robust_sparser(data(), ladders(at, std), IMP, [1.0], limited=False)
    assert ahead.status == "cannot tell" and ahead.wins == 1
    assert ahead.evidence[0].startswith(
        "digits at 100% data: robust 87.50% (AT) vs standard 50.00%–75.00% (STD) — for"
    )
    fat = extreme("FAT", 0.75, ((0.5, True), (0.75, True), (0.875, False)))
    level = robust_sparser(data(), ladders(fat, std), IMP, [1.0], limited=False)
    assert level.evidence == (
        "digits at 100% data: robust 75.00% (FAT) vs standard 50.00%–75.00% (STD): the "
        "brackets overlap; judging STD's 75.00% (not transferred) would decide — neither",
    )


@pytest.mark.parametrize(("robust", "status"), [(0.875, "supports"), (0.5, "contradicts")])
def test_six_datasets_one_way_decide_robust_sparser(robust, status):
    names = ("d1", "d2", "d3", "d4", "d5", "d6")
    extremes = []
    for dataset in names:
        extremes += [up_to("AT", robust, dataset=dataset), up_to("STD", 0.75, dataset=dataset)]
    control = comparison([(d, 1.0) for d in names])
    found = robust_sparser(data(control=control), ladders(*extremes), IMP, [1.0], limited=False)
    assert found.status == status


def test_robust_sparser_is_not_testable_where_pretraining_does_not_help():
    pair = ladders(up_to("AT", 0.875), up_to("STD", 0.5))
    found = robust_sparser(
        data(control=comparison([("digits", 0.1)])), pair, IMP, [1.0], limited=False
    )
    assert found.status == "not testable"
    assert found.evidence == (f"digits at 100% data: not testable ({UNTESTABLE})",)
    assert found.note == UNTESTABLE + "."


def test_robust_sparser_with_limited_data_and_what_it_needs():
    pair = ladders(up_to("AT", 0.875, fraction=0.1), up_to("STD", 0.5, fraction=0.1))
    found = robust_sparser(data(), pair, IMP, [0.1], limited=True)
    assert found.key == "robust-sparser-limited"
    assert found.evidence == (
        "digits at 10% data: robust 87.50% (AT) vs standard 50.00% (STD) — for",
    )
    single = robust_sparser(data(), pair, IMP, [], limited=True)
    assert single.note == (
        "the run has a single data fraction; add fractions such as 0.1 and 0.01 to the "
        "transfer section."
    )
    no_std = robust_sparser(data(kinds={"AT": "at"}), pair, IMP, [0.1], limited=True)
    assert no_std.note.startswith("no STD pre-training is known in this run")
    no_robust = robust_sparser(data(kinds={"STD": "std"}), pair, IMP, [0.1], limited=True)
    assert no_robust.note.startswith("no FAT or AT pre-training is known in this run")
    assert robust_sparser(data(), pair, None, [0.1], limited=True).note == (
        "the run has no tickets."
    )
    assert {single.status, no_std.status, no_robust.status} == {"cannot tell"}


# ------------------------------------------------------------- the order AT ≥ FAT ≥ STD


def test_every_pair_of_kinds_is_compared_more_robust_first():
    three = ladders(up_to("AT", 0.75), up_to("FAT", 0.875), up_to("STD", 0.5))
    found = order(data(), three, IMP, 1.0)
    assert found.key == "order"
    assert found.evidence == (
        "digits: AT 75.00% vs FAT 87.50% — against",
        "digits: AT 75.00% vs STD 50.00% — for",
        "digits: FAT 87.50% vs STD 50.00% — for",
    )
    assert (found.wins, found.losses, found.status) == (2, 1, "cannot tell")


def test_the_order_compares_only_the_kinds_present_and_ties_are_neither():
    found = order(
        data(kinds={"AT": "at", "STD": "std"}),
        ladders(up_to("AT", 0.75), up_to("STD", 0.75)),
        IMP,
        1.0,
    )
    assert found.evidence == ("digits: AT 75.00% vs STD 75.00% — tie",)
    assert (found.wins, found.losses) == (0, 0)


def test_the_order_with_an_undetermined_extreme_or_too_few_kinds():
    undetermined = extreme("FAT", None, ((0.5, None),))
    found = order(
        data(kinds={"AT": "at", "FAT": "fat"}), ladders(up_to("AT", 0.5), undetermined), IMP, 1.0
    )
    assert found.evidence == (
        "digits: AT 50.00% vs FAT 0%–50.00%: the brackets overlap; judging FAT's 50.00% "
        "(undetermined) would decide — neither",
    )
    lone = order(data(kinds={"AT": "at"}), ladders(up_to("AT", 0.75)), IMP, 1.0)
    assert lone.status == "cannot tell"
    assert lone.note == (
        "fewer than two kinds of pre-training (STD, FAT, AT) are known in this run; label "
        "pre-trainings STD, FAT and AT or give their regime."
    )
    assert order(data(), ladders(up_to("AT", 0.75)), None, 1.0).note == lone.note


def test_the_order_reads_the_full_fraction_and_is_gated_by_the_control():
    limited = ladders(up_to("AT", 0.5, fraction=0.1), up_to("STD", 0.875, fraction=0.1))
    assert order(data(), limited, IMP, 1.0).evidence == ()
    pair = ladders(up_to("AT", 0.875), up_to("STD", 0.5))
    gated = order(data(control=comparison([("digits", 0.1)])), pair, IMP, 1.0)
    assert gated.status == "not testable"
    assert gated.evidence == (f"digits: not testable ({UNTESTABLE})",)


@pytest.mark.parametrize(("at", "status"), [(0.875, "supports"), (0.5, "contradicts")])
def test_six_datasets_one_way_decide_the_order(at, status):
    names = ("d1", "d2", "d3", "d4", "d5", "d6")
    extremes = []
    for dataset in names:
        extremes += [up_to("AT", at, dataset=dataset), up_to("STD", 0.75, dataset=dataset)]
    control = comparison([(d, 1.0) for d in names])
    found = order(
        data(kinds={"AT": "at", "STD": "std"}, control=control), ladders(*extremes), IMP, 1.0
    )
    assert found.status == status


# ------------------------------------------------------------ ST vs AT inside IMP


def _imp_pair(st_last, at_last, **kwargs):
    return ladders(
        up_to("STD", st_last, ladder=("imp", "std"), **kwargs),
        up_to("STD", at_last, ladder=("imp", "at"), **kwargs),
    )


def test_extremes_one_rung_apart_are_a_win_two_a_loss():
    cells = {}
    for sparsity, st, at in ((0.5, 80.0, 78.0), (0.75, 70.0, 73.0), (0.875, 60.0, 60.0)):
        score(cells, "STD", sparsity, st)
        score(cells, "STD", sparsity, at, imp_regime="at")
    near = imp_regime(data(cells), _imp_pair(0.875, 0.75))
    assert near.key == "imp-regime"
    # |80 − 78|, |70 − 73|, |60 − 60|: mean 5/3 = 1.67
    assert near.evidence == (
        "STD → digits at 100% data: IMP (ST) 87.50% vs IMP (AT) 75.00%, 1 rung(s) apart; "
        "mean |Δscore| 1.67 points over 3 rung(s) — for",
    )
    assert (near.wins, near.losses) == (1, 0)
    far = imp_regime(data(cells), _imp_pair(0.875, 0.5))
    assert far.evidence[0].endswith(
        "2 rung(s) apart; mean |Δscore| 1.67 points over 3 rung(s) — against"
    )
    assert (far.wins, far.losses) == (0, 1)


def test_rungs_apart_count_no_double_win_rung_as_the_lowest():
    # Rungs 0, 50, 75, 87.5%: none double-win (0) against 50% is one rung apart.
    found = imp_regime(data(), _imp_pair(None, 0.5))
    assert found.evidence == (
        "STD → digits at 100% data: IMP (ST) no double-win rung vs IMP (AT) 50.00%, "
        "1 rung(s) apart — for",
    )
    assert (
        imp_regime(data(), _imp_pair(None, 0.75)).evidence[0].endswith("2 rung(s) apart — against")
    )


def test_an_undetermined_imp_extreme_is_neither_and_settings_are_ordered():
    undetermined = extreme("AT", None, ((0.5, None),), ladder=("imp", "at"))
    pairs = {
        **_imp_pair(0.5, 0.5, fraction=0.1)[("imp", "std")],
        **_imp_pair(0.5, 0.5)[("imp", "std")],
    }
    at_side = {
        **_imp_pair(0.5, 0.5, fraction=0.1)[("imp", "at")],
        **_imp_pair(0.5, 0.5)[("imp", "at")],
    }
    st_side = {**pairs, ("AT", "digits", 1.0): up_to("AT", 0.5, ladder=("imp", "std"))}
    at_side = {**at_side, ("AT", "digits", 1.0): undetermined}
    found = imp_regime(data(), {("imp", "std"): st_side, ("imp", "at"): at_side})
    # AT's IMP (AT) extreme is none or 50%: within one rung of IMP (ST)'s 50% either way.
    assert found.evidence == (
        "AT → digits at 100% data: IMP (ST) 50.00% vs IMP (AT) 0%–50.00%, 0–1 rung(s) apart — for",
        "STD → digits at 100% data: IMP (ST) 50.00% vs IMP (AT) 50.00%, 0 rung(s) apart — for",
        "STD → digits at 10% data: IMP (ST) 50.00% vs IMP (AT) 50.00%, 0 rung(s) apart — for",
    )
    assert (found.wins, found.losses, found.status) == (3, 0, "cannot tell")


def test_rung_distances_the_brackets_allow_either_way_are_neither():
    st = extreme("STD", 0.5, ((0.5, True), (0.75, None), (0.875, None)), ladder=("imp", "std"))
    at = up_to("STD", 0.5, ladder=("imp", "at"))
    found = imp_regime(data(), ladders(st, at))
    assert found.evidence == (
        "STD → digits at 100% data: IMP (ST) 50.00%–87.50% vs IMP (AT) 50.00%, 0–2 rung(s) "
        "apart; judging IMP (ST)'s 75.00% (undetermined) and 1 more would decide — neither",
    )
    assert (found.wins, found.losses) == (0, 0)


def test_six_settings_one_rung_apart_support_no_difference_inside_imp():
    extremes = {("imp", "std"): {}, ("imp", "at"): {}}
    for dataset in ("d1", "d2", "d3", "d4", "d5", "d6"):
        for ladder, last in ((("imp", "std"), 0.75), (("imp", "at"), 0.875)):
            e = up_to("STD", last, ladder=ladder, dataset=dataset)
            extremes[ladder][("STD", dataset, 1.0)] = e
    assert imp_regime(data(), extremes).status == "supports"


def test_imp_regime_needs_both_regimes():
    found = imp_regime(data(), ladders(up_to("STD", 0.5)))
    assert found.status == "cannot tell"
    assert found.note == (
        "the run does not have both IMP regimes; set tickets.imp_regimes: [std, at]."
    )


def test_every_path_of_a_rule_carries_the_same_key_claim_paper_and_rule():
    pair = ladders(up_to("AT", 0.875), up_to("STD", 0.5))
    limited = ladders(up_to("AT", 0.875, fraction=0.1), up_to("STD", 0.5, fraction=0.1))
    gate = comparison(())
    paths = {
        "exist": [exist(pair, None, 1.0), exist(pair, IMP, 1.0)],
        "exist-limited": [exist_limited(limited, IMP, []), exist_limited(limited, IMP, [0.1])],
        "robust-sparser": [
            robust_sparser(data(kinds={}), pair, IMP, [1.0], limited=False),
            robust_sparser(data(), pair, IMP, [1.0], limited=False),
            robust_sparser(data(control=gate), pair, IMP, [1.0], limited=False),
        ],
        "robust-sparser-limited": [
            robust_sparser(data(), limited, IMP, [], limited=True),
            robust_sparser(data(kinds={}), limited, IMP, [0.1], limited=True),
            robust_sparser(data(), limited, IMP, [0.1], limited=True),
        ],
        "order": [
            order(data(kinds={}), pair, IMP, 1.0),
            order(data(), pair, IMP, 1.0),
            order(data(control=gate), pair, IMP, 1.0),
        ],
        "imp-regime": [imp_regime(data(), pair), imp_regime(data(), _imp_pair(0.5, 0.75))],
    }
    assert_same_texts_on_every_path(paths)


# ------------------------------------------------- edges the mutation gate asked for


def test_a_best_extreme_of_exactly_half_the_weights_wins_and_wins_are_counted():
    found = exist(ladders(up_to("STD", 0.5), up_to("STD", 0.75, dataset="svhn")), IMP, 1.0)
    assert found.evidence[0] == "digits at 100% data: double-win up to 50.00% (STD) — for"
    assert (found.wins, found.losses, found.note) == (2, 0, "")
    lost = exist(ladders(up_to("STD", None), up_to("STD", None, dataset="svhn")), IMP, 1.0)
    assert (lost.wins, lost.losses) == (0, 2)


def test_an_undecided_rung_at_exactly_half_the_weights_keeps_existence_undecided():
    found = exist(ladders(extreme("AT", None, ((0.5, None), (0.75, False)))), IMP, 1.0)
    assert found.evidence[0].endswith("judging AT's 50.00% (undetermined) would decide — neither")


def test_robust_sparser_names_its_fractions_in_the_rule_and_reads_fat_alone():
    pair = ladders(up_to("FAT", 0.875), up_to("STD", 0.5))
    full = robust_sparser(data(kinds={"STD": "std", "FAT": "fat"}), pair, IMP, [1.0], limited=False)
    assert full.rule.startswith("Per dataset at the largest data fraction, on the IMP (ST) ladder")
    assert (full.wins, full.note) == (1, "")
    limited = robust_sparser(data(), pair, IMP, [0.1], limited=True)
    assert limited.rule.startswith("Per dataset at every data fraction below the largest one,")
    assert (limited.evidence, limited.note) == ((), "no ladder of both kinds was transferred.")


def _three_datasets(first: str):
    """cifar10 (decided by ``first``: "untestable" or "undetermined"), then digits and svhn,
    both robust ahead."""
    extremes = [up_to("AT", 0.875, dataset=d) for d in ("digits", "svhn")]
    extremes += [up_to("STD", 0.5, dataset=d) for d in ("cifar10", "digits", "svhn")]
    cifar = extreme("AT", None, ((0.5, None),), dataset="cifar10")
    extremes.append(up_to("AT", 0.875, dataset="cifar10") if first == "untestable" else cifar)
    testable = [("digits", 1.0), ("svhn", 1.0)] + (
        [] if first == "untestable" else [("cifar10", 1.0)]
    )
    return ladders(*extremes), comparison(testable)


@pytest.mark.parametrize("first", ["untestable", "undetermined"])
def test_a_skipped_dataset_does_not_stop_robust_sparser_or_the_order(first):
    extremes, control = _three_datasets(first)
    found = robust_sparser(data(control=control), extremes, IMP, [1.0], limited=False)
    assert (found.wins, found.status) == (2, "cannot tell")  # judged, not gated
    assert found.evidence[0].startswith("cifar10 at 100% data: ")
    ordered = order(data(kinds={"AT": "at", "STD": "std"}, control=control), extremes, IMP, 1.0)
    assert (ordered.wins, ordered.status) == (2, "cannot tell")


def test_an_undecided_pair_does_not_stop_the_other_pairs():
    three = ladders(up_to("AT", 0.875), extreme("FAT", None, ((0.5, None),)), up_to("STD", 0.5))
    found = order(data(), three, IMP, 1.0)
    assert found.evidence == (
        "digits: AT 87.50% vs FAT 0%–50.00% — for",
        "digits: AT 87.50% vs STD 50.00% — for",
        "digits: FAT 0%–50.00% vs STD 50.00%: the brackets overlap; judging FAT's 50.00% "
        "(undetermined) would decide — neither",
    )


def test_imp_regime_counts_rungs_of_both_ladders_and_scores_at_common_rungs_only():
    st = up_to("STD", 0.875, ladder=("imp", "std"))  # rungs 50, 75, 87.5%
    at = extreme("STD", 0.5, ((0.5, True), (0.875, False)), ladder=("imp", "at"))
    cells = {}
    for sparsity, x, y in ((0.5, 80.0, 78.0), (0.75, 70.0, 40.0), (0.875, 60.0, 57.0)):
        score(cells, "STD", sparsity, x)
        score(cells, "STD", sparsity, y, imp_regime="at")
    del cells[next(k for k in cells if k.imp_regime == "at" and k.sparsity == 0.875)]
    found = imp_regime(data(cells), ladders(st, at))
    # Rungs 0, 50, 75, 87.5% (75% is IMP (ST)'s alone): 87.5% against 50% is 2 apart. The
    # scores are compared at 50% only: 75% is not an IMP (AT) rung, and its 87.5% ticket
    # misses an accuracy.
    assert found.evidence == (
        "STD → digits at 100% data: IMP (ST) 87.50% vs IMP (AT) 50.00%, 2 rung(s) apart; "
        "mean |Δscore| 2.00 points over 1 rung(s) — against",
    )


def test_imp_regime_lists_settings_by_pretraining_first():
    pairs = {("imp", "std"): {}, ("imp", "at"): {}}
    for label, dataset in (("STD", "digits"), ("AT", "svhn")):
        for ladder in pairs:
            pairs[ladder][(label, dataset, 1.0)] = up_to(label, 0.5, ladder=ladder, dataset=dataset)
    heads = [line.split(":")[0] for line in imp_regime(data(), pairs).evidence]
    assert heads == ["AT → svhn at 100% data", "STD → digits at 100% data"]


def _with_untransferred(e, sparsity: float):
    """``e`` with one more rung of its ladder, never transferred."""
    judged = {r.sparsity: r.state for r in e.ladder}
    plan = sorted({*judged, sparsity})
    return dataclasses.replace(e, ladder=build_ladder(judged, plan))
