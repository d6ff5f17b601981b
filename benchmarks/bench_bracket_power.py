"""Could more seeds bracket every ladder? The power of a seed plan, from a pilot run's own spread.

For finished runs (their results.csv and experiment.yaml), every IMP ticket's per-seed
ticket − dense difference gives each (pre-training, fraction, rung, regime, metric) a mean μ
and a spread σ, and the dense seeds give its margin δ = max(margin_floor, std_multiplier ×
dense sd), as the verdict reads them (docs/verdict.md). For each seed plan (``min:max:step``,
Pocock boundaries from the verdict's own ``critical_value``), the benchmark draws normal
per-seed differences with those μ and σ, judges every comparison at the plan's looks with the
interval rule (the estimator's ``sequential_outcomes``, which the dry run's seed estimate uses), and reads each ladder the bracket's way: decided when the rung above its highest
double-win rung is certified not double-win, or when the top rung passes. Every rung is judged
(the extreme search judges fewer), so P(decided) is an upper bound for a searched run; a
comparison the pilot never ran (its regime skipped after a certified failure) is inconclusive
unless another metric of its rung fails. Prints, per plan and ladder, P(decided), the share of
rungs left inconclusive and the transfer runs per rung, side by side with the first plan's.
Not a test: it says what a design can decide before it is run.

    python benchmarks/bench_bracket_power.py RUN_DIR [RUN_DIR ...] \\
        [--plans 3:9:3,4:16:4] [--rungs 0.5,0.75,0.875] [--sims 4000]
"""

from __future__ import annotations

import argparse
import csv
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from doublewin.analysis.judge import load_verdict_file
from doublewin.analysis.verdict.config import VerdictConfig
from doublewin.analysis.verdict.sequential import SeedPlan
from doublewin.core.errors import UserError
from doublewin.experiments.estimate.savers import sequential_outcomes

COLUMNS = {"sa": "sa_best_sa", "ra": "ra_best_ra"}  # the verdict's per-metric selection
PASS, FAIL, OPEN = 1, -1, 0  # sequential_outcomes' codes


@dataclass(frozen=True)
class Cell:
    """One comparison of a rung: the pilot's mean and spread of ticket − dense, and δ."""

    regime: str
    mu: float
    sigma: float
    delta: float


def _rows(run_dirs: Iterable[Path]) -> list[dict[str, str]]:
    """The runs' rows, one per (pre-training, fraction, method, sparsity, regime, seed): runs
    that share a store repeat the same jobs with the same numbers."""
    seen: dict[tuple, dict[str, str]] = {}
    for run in run_dirs:
        with open(run / "results.csv", newline="") as f:
            for r in csv.DictReader(f):
                key = tuple(r[k] for k in ("pretraining", "fraction", "method", "sparsity"))
                seen[(*key, r["regime"], r["seed"])] = r
    return list(seen.values())


def pilot_cells(
    rows: Sequence[dict[str, str]], config: VerdictConfig
) -> dict[tuple[str, float], dict[float, list[Cell | None]]]:
    """Ladder (pre-training, fraction) → rung → its comparisons (None: never run)."""
    dense: dict[tuple, dict[str, float]] = defaultdict(dict)
    for r in rows:
        if r["method"] == "dense":
            for metric, column in COLUMNS.items():
                dense[(r["pretraining"], r["fraction"], r["regime"], metric)][r["seed"]] = float(
                    r[column]
                )
    gaps: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        if r["method"] != "imp":
            continue
        for metric, column in COLUMNS.items():
            base = dense[(r["pretraining"], r["fraction"], r["regime"], metric)]
            if r["seed"] in base:
                key = (r["pretraining"], r["fraction"], float(r["sparsity"]), r["regime"], metric)
                gaps[key].append(float(r[column]) - base[r["seed"]])
    comparisons = [(g, m) for g in ("st", "at") for m in config.counted(g)]
    ladders: dict[tuple[str, float], dict[float, list[Cell | None]]] = defaultdict(dict)
    for pre, fraction, sparsity in sorted({k[:3] for k in gaps}):
        cells: list[Cell | None] = []
        for regime, metric in comparisons:
            values = gaps.get((pre, fraction, sparsity, regime, metric), [])
            spread = list(dense[(pre, fraction, regime, metric)].values())
            if len(values) < 2 or len(spread) < 2:
                cells.append(None)
                continue
            delta = max(config.margin_floor, config.std_multiplier * statistics.stdev(spread))
            cells.append(Cell(regime, statistics.fmean(values), statistics.stdev(values), delta))
        ladders[(pre, float(fraction))][round(sparsity, 4)] = cells
    return ladders


def simulate_ladder(
    rungs: dict[float, list[Cell | None]],
    plan: SeedPlan,
    sims: int,
    rng: np.random.Generator,
    confidence: float,
) -> tuple[np.ndarray, float, float]:
    """(decided per simulation, mean share of rungs inconclusive, transfer runs per rung)."""
    states, runs = [], 0.0
    for cells in rungs.values():
        outcomes, by_regime = [], defaultdict(lambda: np.zeros(sims))
        for cell in cells:
            if cell is None:
                outcomes.append(np.full(sims, OPEN))
                continue
            draws = rng.normal(cell.mu, cell.sigma, size=(sims, plan.max))
            outcome, used = sequential_outcomes(draws, plan, cell.delta, confidence)
            outcomes.append(outcome)
            by_regime[cell.regime] = np.maximum(by_regime[cell.regime], used)
        stacked = np.stack(outcomes)
        state = np.where(
            (stacked == FAIL).any(0), FAIL, np.where((stacked == PASS).all(0), PASS, OPEN)
        )
        states.append(state)
        runs += float(sum(v.mean() for v in by_regime.values()))
    states_arr = np.stack(states)  # rungs × sims, rungs from the lowest
    decided = np.zeros(sims, dtype=bool)
    for s in range(sims):
        passes = np.flatnonzero(states_arr[:, s] == PASS)
        top = int(passes[-1]) if len(passes) else -1
        decided[s] = top == len(rungs) - 1 or states_arr[top + 1, s] == FAIL
    return decided, float((states_arr == OPEN).mean()), runs / len(rungs)


def _plan(text: str) -> SeedPlan:
    low, high, step = (int(v) for v in text.split(":"))
    return SeedPlan(min=low, max=high, step=step, spending="pocock")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--plans", default="3:9:3,4:16:4,6:30:6")
    parser.add_argument("--rungs", default=None, help="the ladder's sparsities (default: all)")
    parser.add_argument("--sims", type=int, default=4000)
    args = parser.parse_args()
    for run in args.runs:
        for name in ("results.csv", "experiment.yaml"):
            if not (run / name).is_file():
                parser.error(f"{run}: no {name}; pass the folder of a finished `doublewin run`")
    try:
        plans = [_plan(text) for text in args.plans.split(",")]
    except ValueError:
        parser.error(f"--plans {args.plans}: write each plan as min:max:step, e.g. 3:9:3,6:30:6")
    except UserError as err:  # a plan the verdict refuses (min above max, …)
        parser.error(f"--plans {args.plans}: {err}")
    config, _ = load_verdict_file(args.runs[0] / "experiment.yaml")
    ladders = pilot_cells(_rows(args.runs), config)
    if args.rungs:
        wanted = [round(float(s), 4) for s in args.rungs.split(",")]
        ladders = {k: {s: v[s] for s in wanted if s in v} for k, v in ladders.items()}
    rng = np.random.default_rng(20220712)
    base_runs = None
    for plan in plans:
        print(f"plan {plan.looks} (Pocock), rungs judged: every rung of each ladder")
        print(
            f"{'pre-training':12} {'fraction':>8} {'rungs':>5} {'P(decided)':>10} "
            f"{'open rungs':>10} {'runs/rung':>9}"
        )
        counts, all_runs = np.zeros(args.sims, dtype=int), []
        for (pre, fraction), rungs in sorted(ladders.items()):
            decided, open_share, runs = simulate_ladder(
                rungs, plan, args.sims, rng, config.confidence
            )
            counts += decided
            all_runs.append(runs)
            print(
                f"{pre:12} {fraction:>8.0%} {len(rungs):>5} {decided.mean():>10.2f} "
                f"{open_share:>10.2f} {runs:>9.1f}"
            )
        mean_runs = float(np.mean(all_runs))
        base_runs = base_runs or mean_runs
        need = max(len(ladders) - 1, 1)
        print(
            f"expected ladders decided {counts.mean():.2f} of {len(ladders)}; "
            f"P(at least {need}) {(counts >= need).mean():.2f}; "
            f"transfer runs per rung {mean_runs / base_runs:.2f}x the first plan's\n"
        )


if __name__ == "__main__":
    main()
