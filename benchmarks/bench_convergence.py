"""Has the demo's fine-tuning converged? Its dense models against the same recipe run twice as long.

For a finished run (``doublewin demo`` writes ``runs/demo``), transfers every pre-training's
dense model and the control's at full data with the run's own ST and AT recipes, and again with
twice the epochs (same batch size; the cosine schedule stretches with them, and a checkpoint
chosen at the last epoch stays the last epoch's), on the same seeds, through the run's store (the
recipe's own runs are already there and are reused). Prints, per pre-training, the mean SA / RA
of each and the change twice the steps make: AT SA and AT RA under AT, SA under ST. The demo asks
each change, gain or loss, to be within 1.5 points (docs/experiments.md, "Convergence"). Not a test: it trains
for minutes and wants nothing else running.

    python benchmarks/bench_convergence.py runs/demo [--seeds 0,1,2] [--out /tmp/convergence]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

from doublewin.experiments.estimate.rates import cpu_model

BOUND = 1.5  # points: the demo's definition of "converged" (docs/experiments.md)
CHECKS = (("at", "sa"), ("at", "ra"), ("st", "sa"))


def doublewin(*args: str) -> list[str]:
    return [sys.executable, "-m", "doublewin", *args]


def doubled(regimes: dict) -> list[str]:
    """Overrides that give each regime twice its epochs, its validation and checkpoint choice
    moved with them when they sat at the last epoch."""
    out = []
    for name, train in regimes.items():
        epochs = int(train.get("epochs", 1))
        out.append(f"transfer.regimes.{name}.epochs={2 * epochs}")
        for key in ("select_from_epoch", "val_every"):
            if train.get(key) == epochs:
                out.append(f"transfer.regimes.{name}.{key}={2 * epochs}")
    return out


def dense_only(store: Path, seeds: str) -> list[str]:
    """Overrides that keep a run's pre-trainings and dense full-data transfers and nothing else."""
    return [
        f"store={store}",
        "tickets.methods=[]",
        "tickets.transfer_rungs=null",
        "tickets.anchor_rungs=null",  # anchors name ticket methods, and there are none here
        "search=null",
        "tickets.transfer_fractions=null",
        "transfer.fractions=[1.0]",
        f"seeds=[{seeds}]",
        "verdict.seeds=null",
        "analysis=null",
    ]


def run(config: Path, store: Path, out: Path, seeds: str, extra: list[str]) -> Path:
    sets = [*dense_only(store, seeds), *extra]
    args = ["run", str(config), "--out", str(out), "--json"]
    for item in sets:
        args += ["--set", item]
    done = subprocess.run(doublewin(*args), capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the run failed:\n{done.stderr[-2000:]}")
    return out / "results.csv"


def means(table: Path) -> dict[tuple[str, str, str], tuple[float, float, int]]:
    """(pre-training, regime, metric) → (mean, sd, seeds) of the dense full-data runs."""
    values: dict[tuple[str, str, str], list[float]] = {}
    with table.open() as handle:
        for row in csv.DictReader(handle):
            if row.get("method") != "dense" or float(row["fraction"]) != 1.0:
                continue
            for metric, column in (("sa", "sa_best_sa"), ("ra", "ra_best_sa")):
                key = (row["pretraining"], row["regime"], metric)
                values.setdefault(key, []).append(float(row[column]))
    return {
        k: (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v))
        for k, v in values.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=Path("/tmp/doublewin-convergence"))
    args = parser.parse_args()
    config = args.run_dir / "experiment.yaml"
    experiment = yaml.safe_load(config.read_text())
    store = Path(experiment.get("store") or args.run_dir / "store").resolve()
    started = time.monotonic()
    base = means(run(config, store, args.out / "recipe", args.seeds, []))
    twice = means(
        run(
            config,
            store,
            args.out / "twice",
            args.seeds,
            doubled(experiment["transfer"]["regimes"]),
        )
    )
    seconds = time.monotonic() - started
    print(f"# convergence of {args.run_dir}: {cpu_model()}, seeds {args.seeds}, {seconds:.0f} s")
    print(f"| pre-training | check | recipe | twice the epochs | change | within ±{BOUND:g} |")
    print("|---|---|---:|---:|---:|---|")
    worst = 0.0
    for pre in sorted({k[0] for k in base}):
        for regime, metric in CHECKS:
            key = (pre, regime, metric)
            if key not in base or key not in twice:
                continue
            (m1, s1, _), (m2, s2, _) = base[key], twice[key]
            change = m2 - m1
            worst = max(worst, abs(change))
            # A loss counts too: a model that gets worse with more training (robust
            # overfitting) is at no fixed point either; its last epoch is not its best.
            within = "yes" if abs(change) <= BOUND else ("no (drops)" if change < 0 else "no")
            print(
                f"| {pre} | {regime.upper()} {metric.upper()} | {m1:.1f} ± {s1:.1f} | "
                f"{m2:.1f} ± {s2:.1f} | {change:+.1f} | {within} |"
            )
    print(f"largest change from twice the epochs: {worst:.1f} points (bound ±{BOUND:g})")


if __name__ == "__main__":
    main()
