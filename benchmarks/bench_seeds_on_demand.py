"""Seeds on demand against fixed seeds, on one grid: transfer runs spent and verdicts decided.

Runs an experiment's grid with ``max`` seeds everywhere, then replays it with seeds on demand
from ``min`` in the same store. A transfer of seed s has the same spec either way, so the
on-demand pass computes nothing new: it takes exactly the decisions, and counts exactly the
runs, that an on-demand run from scratch would. Prints, side by side, for fixed ``min`` seeds
(fixed-sample intervals), fixed ``max`` seeds (fixed-sample intervals) and on demand
(group-sequential intervals): the transfer runs each uses, the tickets each decides, and every
ticket that two of them decide differently.

    python benchmarks/bench_seeds_on_demand.py [EXPERIMENT.yaml] [--min 3] [--max 6] \
        [--step 1] [--spending pocock] [--out DIR] [--jobs 2] [--set key=value ...]

Default experiment: configs/demo.yaml. The docs/benchmarks.md row names the command it ran.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from doublewin.analysis.verdict import SeedPlan, VerdictConfig, verdicts
from doublewin.experiments.run.demo import demo_config
from doublewin.experiments.run.execute import execute
from doublewin.experiments.run.folder import make_plan

OUTCOMES = ("double-win", "not double-win", "inconclusive")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", nargs="?", default=str(demo_config()))
    parser.add_argument("--min", type=int, default=3)
    parser.add_argument("--max", type=int, default=6)
    parser.add_argument("--step", type=int, default=1)
    parser.add_argument("--spending", default="pocock")
    parser.add_argument("--out", default="runs/bench-seeds-on-demand")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    plan_seeds = SeedPlan(args.min, args.max, args.step, args.spending)
    out = Path(args.out)
    # One store for both passes: the on-demand pass finds every seed the fixed one ran.
    shared = [*args.overrides, f"store={(out / 'store').resolve()}"]
    fixed = make_plan(
        args.experiment,
        [*shared, f"seeds={list(range(args.max))}", "verdict.seeds=null"],
        run_dir=out / "fixed",
    )
    started = time.monotonic()
    grid = execute(fixed, workers=args.jobs, report=False)
    print(
        f"fixed {args.max} seeds: {len(grid.rows)} transfer runs ({time.monotonic() - started:.0f} s)"
    )
    base = fixed.experiment.verdict
    spec = {
        "min": plan_seeds.min,
        "max": plan_seeds.max,
        "step": plan_seeds.step,
        "spending": plan_seeds.spending,
    }
    replay = make_plan(
        args.experiment,
        [*shared, "seeds=auto", f"verdict.seeds={spec}"],
        run_dir=out / "on-demand",
    )
    on_demand = execute(replay, workers=args.jobs, report=False)
    assert on_demand.on_demand is not None
    first = [r for r in grid.rows if int(r["seed"]) < plan_seeds.min]
    judged = {
        f"fixed {plan_seeds.min}": _judge(first, base),
        f"fixed {plan_seeds.max}": _judge(grid.rows, base),
        "on demand": _judge(on_demand.rows, replay.experiment.verdict),
    }
    runs = {
        f"fixed {plan_seeds.min}": len(first),
        f"fixed {plan_seeds.max}": len(grid.rows),
        "on demand": on_demand.on_demand.transfer_runs,
    }
    print(
        f"\nseeds on demand: {plan_seeds.spending}, looks at {list(plan_seeds.looks)} seeds; "
        f"{on_demand.on_demand.waves} waves\n"
    )
    print(f"{'':14}{'runs':>7}{'share':>7}{'decided':>9}" + "".join(f"{o:>16}" for o in OUTCOMES))
    for name, outcome in judged.items():
        counts = Counter(outcome.values())
        decided = counts["double-win"] + counts["not double-win"]
        share = runs[name] / runs[f"fixed {plan_seeds.max}"]
        print(
            f"{name:14}{runs[name]:>7}{share:>7.0%}{decided:>9}"
            + "".join(f"{counts[o]:>16}" for o in OUTCOMES)
        )
    print()
    names = list(judged)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            differ = [
                key
                for key, outcome in judged[names[a]].items()
                if outcome != "inconclusive"
                and judged[names[b]].get(key, "inconclusive") not in ("inconclusive", outcome)
            ]
            print(f"decided by both {names[a]} and {names[b]}, differently: {len(differ)}")
            for key in differ:
                print(f"  {key}: {judged[names[a]][key]} vs {judged[names[b]][key]}")


def _judge(rows, config: VerdictConfig) -> dict[str, str]:
    return {
        f"{v.key.pretraining}/{v.key.fraction:g}/{v.key.method}/{v.key.imp_regime}/"
        f"{v.key.sparsity:.4f}": v.outcome or "inconclusive"
        for v in verdicts(rows, config)
    }


if __name__ == "__main__":
    main()
