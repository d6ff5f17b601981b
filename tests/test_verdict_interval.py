"""Matching as a statistical decision: the interval rule at its edges, one seed, identical dense
seeds (the δ floor), the three rules side by side, ST metrics, and the seeds-needed estimate."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from doublewin.analysis.verdict import (
    VerdictConfig,
    compare,
    extreme_sparsities,
    metric_value,
    verdicts,
)
from doublewin.analysis.verdict.stats import seeds_to_resolve
from doublewin.core.errors import UserError

T2 = float(stats.t.ppf(0.975, 2))  # 4.303: three seeds
HALF = T2 / math.sqrt(3)  # interval half-width of differences m − 1, m, m + 1 (sd 1)
DENSE = {0: 90.0, 1: 90.0, 2: 90.0}  # identical seeds: std 0, so δ is the floor (1 point)


def _ticket(mean: float) -> dict[int, float]:
    return {0: 90.0 + mean - 1.0, 1: 90.0 + mean, 2: 90.0 + mean + 1.0}


def _compare(ticket, dense=DENSE, **config):
    return compare(ticket, dense, regime="st", metric="sa", config=VerdictConfig(**config))


@pytest.mark.parametrize(
    ("mean", "outcome"),
    [
        (-1.0 + HALF + 0.01, "matching"),  # lower end −0.99 ≥ −δ = −1
        (-1.0 + HALF - 0.01, "inconclusive"),  # lower end −1.01
        (-1.0 - HALF + 0.01, "inconclusive"),  # upper end −0.99
        (-1.0 - HALF - 0.01, "not matching"),  # upper end −1.01 < −δ
    ],
)
def test_matching_not_matching_and_inconclusive_at_the_intervals_edges(mean, outcome):
    c = _compare(_ticket(mean))
    assert c.delta == 1.0
    assert c.difference.mean == pytest.approx(mean)
    assert c.difference.high - c.difference.mean == pytest.approx(HALF)
    assert c.outcome == outcome
    assert c.matching is {"matching": True, "not matching": False}.get(outcome)


def test_identical_dense_seeds_never_set_a_zero_point_bar():
    ticket = {0: 89.5, 1: 89.5, 2: 89.5}  # 0.5 below dense on every seed, no spread
    assert _compare(ticket, rule="paper").outcome == "not matching"  # tolerance 0: std of 90s
    floored = _compare(ticket)
    assert floored.delta == 1.0 and floored.outcome == "matching"
    assert _compare(ticket, margin_floor=0.0).outcome == "not matching"


def test_the_margin_grows_with_the_dense_spread_above_the_floor():
    dense = {0: 88.0, 1: 90.0, 2: 92.0}  # std 2
    c = _compare({0: 87.0, 1: 89.0, 2: 91.0}, dense)  # 1 below on every seed
    assert c.delta == pytest.approx(2.0) and c.outcome == "matching"
    assert _compare({0: 87.0, 1: 89.0, 2: 91.0}, dense, std_multiplier=0.0).delta == 1.0


def test_one_seed_is_inconclusive_unless_the_single_seed_margin_is_chosen():
    one = _compare({0: 89.5}, {0: 90.0})
    assert one.outcome == "inconclusive" and one.difference.low is None
    assert one.seeds_needed is None  # no spread yet: nothing to extrapolate from
    assert _compare({0: 89.5}, {0: 90.0}, single_seed="margin").outcome == "matching"
    assert _compare({0: 88.5}, {0: 90.0}, single_seed="margin").outcome == "not matching"


def test_the_three_rules_on_one_table():
    # Dense 90 ± 1 (two seeds at 89, 91: std √2); ticket 1.2 below on average, paired
    # differences −0.2 and −2.2 (sd √2): interval −1.2 ± 12.7 · 1 → inconclusive.
    dense, ticket = {0: 89.0, 1: 91.0}, {0: 88.8, 1: 88.8}
    assert _compare(ticket, dense).outcome == "inconclusive"
    assert _compare(ticket, dense, rule="paper").outcome == "matching"  # 88.8 ≥ 90 − 1.41
    assert _compare(ticket, dense, rule="points").outcome == "not matching"  # < 90 − 1
    assert _compare(ticket, dense, rule="points", points=1.5).outcome == "matching"


def test_welch_pairing_is_wider_when_seeds_share_their_luck():
    dense = {0: 85.0, 1: 90.0, 2: 95.0}
    ticket = {0: 84.5, 1: 89.5, 2: 94.5}  # exactly 0.5 below, seed by seed
    paired = _compare(ticket, dense)
    welch = _compare(ticket, dense, pairing="welch")
    assert paired.difference.low == pytest.approx(-0.5) and paired.outcome == "matching"
    assert welch.difference.low < -10 and welch.outcome == "inconclusive"


def test_the_seeds_needed_estimate_resolves_the_comparison_at_the_observed_spread():
    mean = -1.0 + HALF - 0.5  # inconclusive with three seeds
    c = _compare(_ticket(mean))
    assert c.outcome == "inconclusive"
    n = c.seeds_needed
    assert n is not None and n > 3
    # With n seeds of the same mean and spread the interval clears −δ; with n − 1 it does not.
    for seeds, decided in ((n, True), (n - 1, False)):
        half = float(stats.t.ppf(0.975, seeds - 1)) / math.sqrt(seeds)
        assert (mean - half >= -1.0) is decided
    assert seeds_to_resolve(1.0, -1.0, -1.0, 3) is None  # on the bar: no count decides it


def _rows(method, sparsity, values):
    """values: {(regime, seed): (sa, ra)} → rows with the same numbers at both checkpoints."""
    return [
        {
            "pretraining": "AT",
            "dataset": "digits",
            "fraction": 1.0,
            "method": method,
            "imp_regime": "" if method == "dense" else "std",
            "sparsity": sparsity,
            "regime": regime,
            "seed": seed,
            "sa_best_sa": sa,
            "ra_best_sa": ra,
            "sa_best_ra": sa,
            "ra_best_ra": ra,
        }
        for (regime, seed), (sa, ra) in values.items()
    ]


def _grid(st_ra_offsets, at_sa_offsets=(0.0, 0.0, 0.0)):
    dense = {(r, s): (90.0, 40.0) for r in ("st", "at") for s in range(3)}
    ticket = {}
    for s in range(3):
        ticket[("st", s)] = (90.0, 40.0 + st_ra_offsets[s])
        ticket[("at", s)] = (90.0 + at_sa_offsets[s], 40.0)
    return _rows("dense", 0.0, dense) + _rows("imp", 0.5, ticket)


def test_double_win_is_three_valued():
    (win,) = verdicts(_grid((0.0, 0.0, 0.0)))
    assert win.outcome == "double-win" and win.double_win is True
    (fail,) = verdicts(_grid((-5.0, -5.0, -5.0), at_sa_offsets=(-3.0, 2.0, 0.0)))
    assert fail.outcome == "not double-win"  # one failure decides, whatever AT SA shows
    (unsure,) = verdicts(_grid((-3.0, 0.0, 1.0)))
    assert unsure.outcome == "inconclusive" and unsure.double_win is None
    assert unsure.seeds_needed is not None
    (missing,) = verdicts([r for r in _grid((0.0, 0.0, 0.0)) if r["regime"] == "st"])
    assert missing.outcome is None


def test_st_metrics_sa_only_ignores_robust_accuracy_after_standard_transfer():
    rows = _grid((-20.0, -20.0, -20.0))  # RA collapses under ST transfer, all else matches
    (both,) = verdicts(rows)
    (sa_only,) = verdicts(rows, VerdictConfig(st_metrics=("sa",)))
    assert both.outcome == "not double-win"
    assert sa_only.outcome == "double-win"
    assert sa_only.matching("st", "ra") is False  # still computed and shown, not counted
    with pytest.raises(UserError, match="st_metrics"):
        VerdictConfig(st_metrics=("ra",))


def test_an_inconclusive_rung_is_neither_the_extreme_nor_a_failure():
    rows = _grid((0.0, 0.0, 0.0))
    for sparsity, offsets in ((0.6, (-3.0, 0.0, 1.0)), (0.7, (0.0, 0.0, 0.0))):
        rows += [
            {**r, "sparsity": sparsity, "ra_best_ra": 40.0 + offsets[r["seed"]]}
            if r["regime"] == "st"
            else {**r, "sparsity": sparsity}
            for r in _rows(
                "imp", 0.5, {(g, s): (90.0, 40.0) for g in ("st", "at") for s in range(3)}
            )
        ]
    (ladder,) = extreme_sparsities(verdicts(rows))
    assert ladder.extreme == 0.7
    assert ladder.inconclusive == (0.6,)
    assert ladder.all_lower_double_win is None  # a lower rung is inconclusive, not failing


def test_the_rule_is_named_by_rule_and_a_key_the_config_has_not_is_refused():
    assert VerdictConfig.from_mapping({"rule": "paper"}).rule == "paper"
    assert VerdictConfig.from_mapping(None).rule == "interval"
    with pytest.raises(UserError, match="verdict.tolerance: unknown key; known keys here:"):
        VerdictConfig.from_mapping({"tolerance": "std"})
    with pytest.raises(UserError, match="verdict.margin_floor"):
        VerdictConfig.from_mapping({"margin_floor": -1})


def test_an_inconclusive_verdict_needs_the_seeds_of_its_first_likely_failure():
    from doublewin.analysis.verdict import TicketKey, TicketVerdict

    config = VerdictConfig()
    failing = compare(_ticket(-2.5), DENSE, regime="st", metric="sa", config=config)
    passing = compare(_ticket(0.3), DENSE, regime="st", metric="ra", config=config)
    matching = compare(
        _ticket(0.0) | {0: 90.0, 2: 90.0}, DENSE, regime="at", metric="sa", config=config
    )
    assert failing.outcome == passing.outcome == "inconclusive" and matching.outcome == "matching"
    at_ra = compare({0: 90.0, 1: 90.0, 2: 90.0}, DENSE, regime="at", metric="ra", config=config)
    key = TicketKey("AT", "digits", 1.0, "imp", "std", 0.5)
    verdict = TicketVerdict(key, (failing, passing, matching, at_ra))
    assert verdict.outcome == "inconclusive" and verdict.heading == "not double-win"
    assert verdict.seeds_needed == failing.seeds_needed  # one failure decides
    passing_sa = compare(_ticket(0.3), DENSE, regime="st", metric="sa", config=config)
    hopeful = TicketVerdict(key, (passing_sa, passing, matching, at_ra))
    assert hopeful.heading == "double-win" and hopeful.seeds_needed == passing.seeds_needed


def test_the_confidence_sets_the_intervals_t_quantile():
    # Differences m − 1, m, m + 1 (sd 1): at 80% the half-width is t(0.90, 2)/√3 = 1.886/1.732.
    half_80 = float(stats.t.ppf(0.90, 2)) / math.sqrt(3)
    assert half_80 == pytest.approx(1.0887, abs=1e-4)
    mean = -2.5  # 95%: upper end −2.5 + 2.48 = −0.02 ≥ −δ = −1: inconclusive; 80%: −1.41
    wide, narrow = _compare(_ticket(mean)), _compare(_ticket(mean), confidence=0.8)
    assert wide.difference.high - wide.difference.mean == pytest.approx(HALF)
    assert narrow.difference.high - narrow.difference.mean == pytest.approx(half_80)
    assert wide.outcome == "inconclusive" and narrow.outcome == "not matching"


def test_the_paper_rule_scales_the_dense_std_by_the_multiplier():
    dense, ticket = {0: 89.0, 1: 91.0}, {0: 88.8, 1: 88.8}  # dense std √2 = 1.414
    assert _compare(ticket, dense, rule="paper").outcome == "matching"  # 88.8 ≥ 88.59
    # 0.5 · 1.414 = 0.707: the bar is 89.29, above 88.8.
    assert _compare(ticket, dense, rule="paper", std_multiplier=0.5).outcome == "not matching"
    assert _compare(ticket, dense, rule="paper", std_multiplier=0.5).delta == pytest.approx(
        0.5 * math.sqrt(2)
    )


def test_a_mean_exactly_at_minus_delta_heads_for_double_win():
    # ST RA differences −2, −1, 0 (sd 1): mean −1 = −δ, interval [−3.48, +1.48]: inconclusive;
    # a comparison heads for failure only when its mean is *below* −δ.
    (verdict,) = verdicts(_grid((-2.0, -1.0, 0.0)))
    assert verdict.outcome == "inconclusive" and verdict.heading == "double-win"
    assert verdict.matching("st", "ra") is None and verdict.matching("st", "sa") is True
    (lower,) = verdicts(_grid((-2.01, -1.01, -0.01)))
    assert lower.outcome == "inconclusive" and lower.heading == "not double-win"
    assert verdict.comparison("st", "nope") is None and verdict.matching("st", "nope") is None


def test_no_common_seed_gives_an_empty_comparison_of_its_own_regime_and_metric():
    c = compare({0: 90.0}, {1: 90.0}, regime="at", metric="ra", config=VerdictConfig())
    assert (c.regime, c.metric, c.seeds, c.outcome, c.difference) == ("at", "ra", (), None, None)


def test_a_difference_exactly_at_minus_delta_matches():
    # Every seed exactly 1 below (sd 0): the interval is [−1, −1] and δ = 1.
    assert _compare({0: 89.0, 1: 89.0, 2: 89.0}).outcome == "matching"
    assert _compare({0: 89.0}, {0: 90.0}, single_seed="margin").outcome == "matching"


def test_a_decided_comparison_needs_no_more_seeds():
    c = _compare({0: 90.0, 1: 90.0, 2: 90.0})
    assert c.outcome == "matching" and c.seeds_needed is None


def test_two_seeds_already_estimate_the_seeds_needed_paired_and_welch():
    dense, ticket = {0: 89.0, 1: 91.0}, {0: 88.8, 1: 88.8}  # inconclusive (see above)
    paired = _compare(ticket, dense)
    assert paired.outcome == "inconclusive"
    # Paired differences −0.2, −2.2: sd √2, mean −1.2 against −δ = −max(1, √2).
    assert paired.seeds_needed == seeds_to_resolve(math.sqrt(2), -1.2, -math.sqrt(2), 2, 0.95)
    welch = _compare(ticket, dense, pairing="welch")
    assert welch.outcome == "inconclusive"
    # Welch: the spread is √(var ticket + var dense) = √(0 + 2).
    assert welch.seeds_needed == seeds_to_resolve(math.sqrt(0 + 2), -1.2, -math.sqrt(2), 2, 0.95)
    one = _compare({0: 89.5}, {0: 90.0}, pairing="welch")
    assert one.outcome == "inconclusive" and one.seeds_needed is None


def test_welch_intervals_follow_the_confidence():
    dense, ticket = {0: 85.0, 1: 90.0, 2: 95.0}, {0: 84.5, 1: 89.5, 2: 94.5}
    wide = _compare(ticket, dense, pairing="welch")
    narrow = _compare(ticket, dense, pairing="welch", confidence=0.8)
    # Both samples have sd 5: standard error √(25/3 + 25/3) = 4.08, Welch df 4.
    se = math.sqrt(25 / 3 + 25 / 3)
    assert wide.difference.high - wide.difference.mean == pytest.approx(stats.t.ppf(0.975, 4) * se)
    assert narrow.difference.high - narrow.difference.mean == pytest.approx(
        stats.t.ppf(0.90, 4) * se
    )


def test_extremes_list_the_larger_data_fraction_first():
    rows = []
    for fraction in (0.1, 1.0):
        rows += [{**r, "fraction": fraction} for r in _grid((0.0, 0.0, 0.0))]
    fractions = [e.fraction for e in extreme_sparsities(verdicts(rows))]
    assert fractions == [1.0, 0.1]


def test_st_metrics_count_under_st_only():
    config = VerdictConfig(st_metrics=("sa",))
    assert config.counted("st") == ("sa",) and config.counted("at") == ("sa", "ra")


@pytest.mark.parametrize(
    ("metric", "selection", "column"),
    [
        ("sa", "per-metric", "sa_best_sa"),
        ("ra", "per-metric", "ra_best_ra"),
        ("ra", "best-sa", "ra_best_sa"),
        ("sa", "best-ra", "sa_best_ra"),
    ],
)
def test_a_selection_reads_its_checkpoints_column(metric, selection, column):
    row = {"sa_best_sa": 1.0, "ra_best_sa": 2.0, "sa_best_ra": 3.0, "ra_best_ra": 4.0}
    assert metric_value(row, metric, selection) == row[column]


@pytest.mark.parametrize("empty", [None, "", float("nan"), "nan"])
def test_a_missing_accuracy_reads_as_none(empty):
    assert metric_value({"sa_best_sa": empty}, "sa", "per-metric") is None


def test_an_interval_ending_exactly_at_minus_delta_is_not_yet_a_failure():
    ticket = _ticket(-1.0 - HALF - 0.5)  # the upper end lies 0.5 below −1
    high = _compare(ticket).difference.high
    # With δ set to exactly −high, the upper end sits on −δ: not below it, so inconclusive.
    assert _compare(ticket, margin_floor=-high).outcome == "inconclusive"
    assert _compare(ticket, margin_floor=-high - 0.01).outcome == "not matching"


def test_a_comparison_records_the_dense_spread():
    c = _compare({0: 87.0, 1: 89.0, 2: 91.0}, {0: 88.0, 1: 90.0, 2: 92.0})
    assert c.dense_std == pytest.approx(2.0) and c.dense_mean == 90.0 and c.ticket_mean == 89.0


def test_a_row_missing_one_metric_still_gives_the_other():
    rows = _grid((0.0, 0.0, 0.0))
    rows = [{**r, "sa_best_sa": ""} if r["method"] != "dense" else r for r in rows]
    (verdict,) = verdicts(rows)
    assert verdict.comparison("st", "sa").seeds == ()
    assert verdict.comparison("st", "ra").seeds == (0, 1, 2)


def test_a_ticket_without_a_dense_baseline_is_undetermined():
    rows = [r for r in _grid((0.0, 0.0, 0.0)) if r["method"] != "dense"]
    (verdict,) = verdicts(rows)
    assert verdict.outcome is None and all(c.outcome is None for c in verdict.comparisons)


def test_the_seeds_needed_use_the_verdicts_confidence():
    # Mean −0.5, sd 1: inconclusive at 95% ([−2.98, +1.98]) and at 80% ([−1.59, +0.59]).
    c = _compare(_ticket(-0.5), confidence=0.8)
    assert c.outcome == "inconclusive"
    # The fewest n whose 80% half-width t(0.90, n−1)/√n is below |−0.5 − (−1)| = 0.5.
    n = next(k for k in range(4, 1000) if stats.t.ppf(0.90, k - 1) / math.sqrt(k) < 0.5)
    assert c.seeds_needed == n
    assert c.seeds_needed < _compare(_ticket(-0.5)).seeds_needed
