"""The double-win verdict on hand-made result tables: the paper rule (mean ≥ dense mean − one
dense std) of earlier reports. The interval rule is in test_verdict_interval.py."""

from __future__ import annotations

import statistics

import pytest

from doublewin.analysis.verdict import VerdictConfig, compare, extreme_sparsities, verdicts


def _rows(method, sparsity, values, *, imp_regime="std", fraction=1.0):
    """values: {(regime, seed): (sa, ra)} → result rows (same numbers at both checkpoints)."""
    rows = []
    for (regime, seed), (sa, ra) in values.items():
        rows.append(
            {
                "pretraining": "AT",
                "dataset": "digits",
                "fraction": fraction,
                "method": method,
                "imp_regime": "" if method == "dense" else imp_regime,
                "sparsity": sparsity,
                "regime": regime,
                "seed": seed,
                "sa_best_sa": sa,
                "ra_best_sa": ra - 5,
                "sa_best_ra": sa - 5,
                "ra_best_ra": ra,
            }
        )
    return rows


DENSE = _rows(
    "dense",
    0.0,
    {
        ("st", 0): (90.0, 10.0),
        ("st", 1): (92.0, 12.0),
        ("at", 0): (80.0, 40.0),
        ("at", 1): (82.0, 42.0),
    },
)
DENSE_STD = statistics.stdev([90.0, 92.0])  # 1.414…: the same spread for every cell above
PAPER = VerdictConfig(rule="paper")


def _single(values):
    return {(r, s): v for (r, s), v in values.items()}


def test_ticket_within_one_dense_std_is_matching_and_double_win():
    ticket = _rows(
        "imp",
        0.5,
        {
            ("st", 0): (89.0, 10.0),
            ("st", 1): (91.0, 10.0),
            ("at", 0): (80.0, 40.0),
            ("at", 1): (80.0, 40.0),
        },
    )
    (verdict,) = verdicts(DENSE + ticket, PAPER)
    assert verdict.double_win is True
    st_sa = next(c for c in verdict.comparisons if (c.regime, c.metric) == ("st", "sa"))
    assert st_sa.dense_mean == 91.0 and st_sa.ticket_mean == 90.0
    assert st_sa.delta == pytest.approx(DENSE_STD)


def test_one_metric_below_the_bar_is_not_double_win():
    # AT RA 41 − 1.41 = 39.59 is the bar; a mean of 39.0 misses it.
    ticket = _rows(
        "imp",
        0.8,
        {
            ("st", 0): (91.0, 11.0),
            ("st", 1): (91.0, 11.0),
            ("at", 0): (81.0, 39.0),
            ("at", 1): (81.0, 39.0),
        },
    )
    (verdict,) = verdicts(DENSE + ticket, PAPER)
    assert verdict.matching("at", "ra") is False
    assert verdict.matching("st", "sa") is True
    assert verdict.double_win is False


def test_a_tie_at_the_bar_counts_as_matching():
    bar = 91.0 - DENSE_STD
    ticket = _rows(
        "omp",
        0.5,
        {
            ("st", 0): (bar, 11.0),
            ("st", 1): (bar, 11.0),
            ("at", 0): (81.0, 41.0),
            ("at", 1): (81.0, 41.0),
        },
    )
    (verdict,) = verdicts(DENSE + ticket, PAPER)
    assert verdict.matching("st", "sa") is True


def test_one_seed_uses_the_fixed_points_tolerance():
    dense = _rows("dense", 0.0, {("st", 0): (90.0, 10.0), ("at", 0): (80.0, 40.0)})
    ticket = _rows("imp", 0.5, {("st", 0): (89.5, 9.5), ("at", 0): (78.0, 39.5)})
    (loose,) = verdicts(dense + ticket, VerdictConfig(rule="paper", points=2.5))
    (tight,) = verdicts(dense + ticket, VerdictConfig(rule="paper", points=1.0))
    assert loose.double_win is True
    assert tight.matching("at", "sa") is False and tight.double_win is False
    assert tight.comparisons[0].dense_std is None


def test_only_common_seeds_are_compared():
    ticket = _rows("imp", 0.5, {("st", 1): (92.0, 12.0), ("at", 1): (82.0, 42.0)})
    (verdict,) = verdicts(DENSE + ticket, VerdictConfig(rule="paper", points=0.0))
    assert all(c.seeds == (1,) for c in verdict.comparisons)
    assert verdict.double_win is True  # equals dense seed 1 exactly, tolerance 0


def test_missing_regime_leaves_the_verdict_undetermined():
    ticket = _rows("imp", 0.5, {("st", 0): (95.0, 20.0), ("st", 1): (95.0, 20.0)})
    (verdict,) = verdicts(DENSE + ticket, PAPER)
    assert verdict.matching("at", "sa") is None
    assert verdict.double_win is None


def test_selection_picks_the_checkpoint():
    # At the best-val-RA checkpoint SA is 5 points lower (see _rows): it then misses.
    ticket = _rows(
        "imp",
        0.5,
        {
            ("st", 0): (91.0, 11.0),
            ("st", 1): (91.0, 11.0),
            ("at", 0): (81.0, 41.0),
            ("at", 1): (81.0, 41.0),
        },
    )
    (per_metric,) = verdicts(DENSE + ticket, VerdictConfig(rule="paper", selection="per-metric"))
    (both_at_ra,) = verdicts(DENSE + ticket, VerdictConfig(rule="paper", selection="best-ra"))
    assert per_metric.double_win is True
    assert both_at_ra.matching("st", "sa") is True  # dense also loses 5 at that checkpoint
    ticket[0]["sa_best_ra"] = 70.0
    (worse,) = verdicts(DENSE + ticket, VerdictConfig(rule="paper", selection="best-ra"))
    assert worse.matching("st", "sa") is False


def test_extreme_sparsity_is_the_largest_double_win_rung():
    good = {
        ("st", 0): (91.0, 11.0),
        ("st", 1): (91.0, 11.0),
        ("at", 0): (81.0, 41.0),
        ("at", 1): (81.0, 41.0),
    }
    bad = {k: (v[0] - 10, v[1]) for k, v in good.items()}
    rows = (
        DENSE
        + _rows("imp", 0.2, good)
        + _rows("imp", 0.36, bad)
        + _rows("imp", 0.488, good)
        + _rows("imp", 0.59, bad)
    )
    (ladder,) = extreme_sparsities(verdicts(rows, PAPER))
    assert ladder.extreme == 0.488
    assert ladder.all_lower_double_win is False
    assert [dw for _, dw in ladder.rungs] == [True, False, True, False]


def test_ladders_are_kept_apart_by_method_and_imp_regime():
    good = {
        ("st", 0): (91.0, 11.0),
        ("st", 1): (91.0, 11.0),
        ("at", 0): (81.0, 41.0),
        ("at", 1): (81.0, 41.0),
    }
    bad = {k: (0.0, 0.0) for k in good}
    rows = (
        DENSE
        + _rows("imp", 0.5, good, imp_regime="std")
        + _rows("imp", 0.5, bad, imp_regime="at")
        + _rows("random", 0.5, bad, imp_regime="")
    )
    result = {
        (e.method, e.imp_regime): e.extreme for e in extreme_sparsities(verdicts(rows, PAPER))
    }
    assert result == {("imp", "std"): 0.5, ("imp", "at"): None, ("random", ""): None}


def test_compare_without_common_seeds_is_undetermined():
    c = compare({0: 90.0}, {1: 90.0}, regime="st", metric="sa", config=VerdictConfig())
    assert c.matching is None and c.outcome is None and c.difference is None


def test_welch_and_paired_intervals_by_hand():
    from doublewin.analysis.verdict.stats import paired_difference, welch_difference

    # a = 1, 2, 3 (mean 2, variance 1); b = 0, 0, 0 → se = √(1/3), df = 2, t = 4.303.
    welch = welch_difference([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert welch.mean == 2.0 and welch.n == 3
    assert welch.low == pytest.approx(2 - 4.3027 * (1 / 3) ** 0.5, abs=1e-3)
    assert welch.high == pytest.approx(2 + 4.3027 * (1 / 3) ** 0.5, abs=1e-3)
    # Paired: differences 1, 1, 1 over the shared seeds 0–2 have no spread.
    paired = paired_difference({0: 1.0, 1: 2.0, 2: 3.0, 5: 9.0}, {0: 0.0, 1: 1.0, 2: 2.0})
    assert (paired.mean, paired.low, paired.high, paired.n) == (1.0, 1.0, 1.0, 3)
    assert welch_difference([1.0], [0.0, 2.0]).low is None
    assert welch_difference([], [1.0]) is None
