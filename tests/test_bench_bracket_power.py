"""benchmarks/bench_bracket_power.py: a ladder whose rungs sit far from the margin is decided
under seeds on demand, one whose rungs sit at the margin is not, and a regime the pilot never
ran leaves its rung open unless another metric of the rung fails."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from doublewin.analysis.verdict.config import VerdictConfig
from doublewin.analysis.verdict.sequential import SeedPlan

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_bracket_power.py"
PLAN = SeedPlan(min=3, max=9, step=3, spending="pocock")
SEEDS = range(9)


def _bench():
    spec = importlib.util.spec_from_file_location("bench_bracket_power", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


def _rows(pre: str, gaps: dict[float, tuple[float, float]], regimes=("st", "at")) -> list[dict]:
    """Dense rows at 90 SA / 60 RA (sd 0.3) and IMP rows `gap` ± `spread` below them."""
    rng = np.random.default_rng(len(pre))
    rows = []
    for seed in SEEDS:
        dense = {r: (90 + rng.normal(0, 0.3), 60 + rng.normal(0, 0.3)) for r in ("st", "at")}
        for regime in ("st", "at"):
            sa, ra = dense[regime]
            rows.append(_row(pre, "dense", 0.0, regime, seed, sa, ra))
        for sparsity, (gap, spread) in gaps.items():
            for regime in regimes:
                sa, ra = dense[regime]
                d_sa, d_ra = rng.normal(gap, spread, 2)
                rows.append(_row(pre, "imp", sparsity, regime, seed, sa + d_sa, ra + d_ra))
    return rows


def _row(pre, method, sparsity, regime, seed, sa, ra) -> dict:
    return {
        "pretraining": pre,
        "fraction": "1.0",
        "method": method,
        "sparsity": str(sparsity),
        "regime": regime,
        "seed": str(seed),
        "sa_best_sa": f"{sa:.4f}",
        "ra_best_ra": f"{ra:.4f}",
    }


@pytest.fixture
def ladders(tmp_path: Path):
    rows = (
        _rows("CLEAR", {0.5: (0.0, 0.2), 0.75: (-4.0, 0.2)})
        + _rows("MARGIN", {0.5: (-1.0, 0.6), 0.75: (-1.1, 0.6)})
        + _rows("ST-FAILS", {0.5: (-5.0, 0.2)}, regimes=("st",))
        + _rows("ST-PASSES", {0.5: (0.0, 0.2)}, regimes=("st",))
    )
    with open(tmp_path / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    bench = _bench()
    return bench, bench.pilot_cells(bench._rows([tmp_path]), VerdictConfig())


def _p_decided(bench, rungs) -> float:
    decided, _, _ = bench.simulate_ladder(rungs, PLAN, 2000, np.random.default_rng(0), 0.95)
    return float(decided.mean())


def test_a_ladder_far_from_the_margin_is_decided_and_one_at_it_is_not(ladders) -> None:
    bench, cells = ladders
    assert _p_decided(bench, cells[("CLEAR", 1.0)]) > 0.95
    assert _p_decided(bench, cells[("MARGIN", 1.0)]) < 0.2


def test_a_regime_never_run_leaves_its_rung_open_unless_another_metric_fails(ladders) -> None:
    bench, cells = ladders
    assert None in cells[("ST-PASSES", 1.0)][0.5]  # the AT comparisons were never run
    assert _p_decided(bench, cells[("ST-FAILS", 1.0)]) > 0.95  # the rung fails on ST alone
    assert _p_decided(bench, cells[("ST-PASSES", 1.0)]) == 0.0  # passing ST alone is not a pass


def test_more_seeds_cost_more_runs_per_rung(ladders) -> None:
    bench, cells = ladders
    rng = np.random.default_rng(0)
    small = bench.simulate_ladder(cells[("MARGIN", 1.0)], PLAN, 500, rng, 0.95)[2]
    large_plan = SeedPlan(min=3, max=18, step=3, spending="pocock")
    large = bench.simulate_ladder(cells[("MARGIN", 1.0)], large_plan, 500, rng, 0.95)[2]
    assert large > small


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["{missing}"], "no results.csv"),
        (["{run}", "--plans", "3-9"], "min:max:step"),
        (["{run}", "--plans", "9:3:3"], "above verdict.seeds.max"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(ladders, tmp_path, monkeypatch, capsys, argv, says):
    bench, _ = ladders
    (tmp_path / "experiment.yaml").write_text("verdict: {rule: interval}\n")
    paths = {"missing": str(tmp_path / "absent"), "run": str(tmp_path)}
    monkeypatch.setattr(sys, "argv", ["bench", *(a.format(**paths) for a in argv)])
    with pytest.raises(SystemExit) as stop:
        bench.main()
    assert stop.value.code == 2
    assert says in capsys.readouterr().err.splitlines()[-1]
