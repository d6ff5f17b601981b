"""A ticket's claim as a certificate records it: the run's verdict number for number, and the
same comparisons judged again on re-measured ticket accuracies under the claim's own rule."""

from __future__ import annotations

from doublewin.analysis.verdict import TicketKey, VerdictConfig, verdicts
from doublewin.analysis.verdict.claim import claim_record, recorded_values, rejudge

DENSE = {"st": (80.0, 82.0, 81.0), "at": (70.0, 71.0, 69.0)}
TICKET = {"st": (79.5, 81.8, 80.9), "at": (69.8, 70.7, 69.1)}
KEY = TicketKey("AT", "digits", 1.0, "imp", "std", 0.5)


def rows() -> list[dict]:
    out = []
    for method, sparsity, table in (("dense", 0.0, DENSE), ("imp", 0.5, TICKET)):
        for regime, values in table.items():
            for seed, value in enumerate(values):
                out.append(
                    {
                        "pretraining": "AT",
                        "dataset": "digits",
                        "fraction": 1.0,
                        "method": method,
                        "imp_regime": "std" if method == "imp" else "",
                        "sparsity": sparsity,
                        "regime": regime,
                        "seed": seed,
                        "sa_best_sa": value,
                        "ra_best_ra": value - 30,
                        "sa_best_ra": value - 1,
                        "ra_best_sa": value - 31,
                    }
                )
    return out


def test_the_claim_is_the_runs_verdict_with_every_seed_and_comparison():
    config = VerdictConfig()
    claim = claim_record(rows(), KEY, config)
    (verdict,) = verdicts(rows(), config)
    assert claim["verdict"] == verdict.outcome == "double-win" and claim["certified"]
    assert [r["seed"] for r in claim["regimes"]["at"]["seeds"]] == [0, 1, 2]
    assert claim["regimes"]["st"]["seeds"][1] == {
        "seed": 1,
        "dense": {"sa": 82.0, "ra": 52.0},
        "ticket": {"sa": 81.8, "ra": 51.8},
    }
    at_ra = verdict.comparison("at", "ra")
    recorded = claim["regimes"]["at"]["comparisons"]["ra"]
    assert recorded["difference"]["low"] == at_ra.difference.low and recorded["counted"]
    assert recorded_values(claim, "ticket")["at"]["sa"] == dict(enumerate(TICKET["at"]))


def test_judged_again_the_same_numbers_reach_the_same_verdict_and_lower_ones_do_not():
    claim = claim_record(rows(), KEY, VerdictConfig())
    same = recorded_values(claim, "ticket")
    assert rejudge(claim, same, KEY).outcome == "double-win"
    lower = {
        r: {m: {s: v - 20 for s, v in seeds.items()} for m, seeds in metrics.items()}
        for r, metrics in same.items()
    }
    assert rejudge(claim, lower, KEY).outcome == "not double-win"
    # The claim's own rule, not the default: a 30-point margin forgives the 20 points.
    wide = claim_record(rows(), KEY, VerdictConfig(margin_floor=30))
    assert rejudge(wide, lower, KEY).outcome == "double-win"
