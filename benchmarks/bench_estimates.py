"""The dry run's estimates against what the runs then take, side by side.

For each experiment file: ``doublewin run FILE --dry-run --json`` (the wall time on the workers
the run will use, and the savers' expected transfer runs), then the run itself, timed, into a
fresh folder with a fresh store; prints estimate, measurement and their ratio. Not a test: each
demo takes minutes, and the timing wants nothing else running.

    python benchmarks/bench_estimates.py configs/demo-quick.yaml configs/demo.yaml \\
        configs/demo-vit.yaml [--search] [--out /tmp/estimates]

``--search`` adds a run with ``--search extreme`` per file (its expected transfer runs against
the ones it spent).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from doublewin.experiments.estimate.rates import cpu_model


def doublewin(*args: str) -> list[str]:
    return [sys.executable, "-m", "doublewin", *args]


def measure(config: str, out: Path, extra: list[str]) -> dict[str, object]:
    plan = subprocess.run(doublewin("run", config, "--dry-run", "--json", "--out", str(out), *extra),
                          capture_output=True, text=True, check=True)  # fmt: skip
    estimate = json.loads(plan.stdout)
    started = time.monotonic()
    run = subprocess.run(doublewin("run", config, "--json", "--out", str(out), *extra),
                         capture_output=True, text=True)  # fmt: skip
    seconds = time.monotonic() - started
    if run.returncode:
        raise SystemExit(f"{config}: the run failed:\n{run.stderr[-2000:]}")
    outcome = json.loads(run.stdout[run.stdout.index("{") :])
    row: dict[str, object] = {
        "config": config + (" " + " ".join(extra) if extra else ""),
        "workers": estimate["workers"],
        "estimated_s": round(estimate["wall_hours"] * 3600, 1),
        "measured_s": round(seconds, 1),
    }
    row["ratio"] = round(float(row["estimated_s"]) / seconds, 2)
    savers = estimate.get("savers") or []
    ran = (outcome.get("search") or {}).get("transfer_runs") or outcome.get("transfer_runs")
    if savers and ran:
        row["expected_transfer_runs"] = savers[-1]["expected_transfer_runs"]
        row["transfer_runs"] = ran
        row["runs_ratio"] = round(savers[-1]["expected_transfer_runs"] / ran, 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--out", default="/tmp/doublewin-estimates")
    parser.add_argument("--search", action="store_true")
    args = parser.parse_args()
    rows = []
    for config in args.configs:
        variants = [[]] + ([["--search", "extreme"]] if args.search else [])
        for extra in variants:
            name = Path(config).stem + ("-search" if extra else "")
            rows.append(measure(config, Path(args.out) / name, extra))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{cpu_model()}, {platform.python_version()}")
    print(f"{'config':40} {'workers':>7} {'estimate':>9} {'measured':>9} {'ratio':>6}  runs")
    for r in rows:
        runs = (f"{r['expected_transfer_runs']} expected / {r['transfer_runs']} ran "
                f"({r['runs_ratio']})" if "runs_ratio" in r else "")  # fmt: skip
        print(f"{str(r['config']):40} {r['workers']:>7} {r['estimated_s']:>8}s "
              f"{r['measured_s']:>8}s {r['ratio']:>6}  {runs}")  # fmt: skip


if __name__ == "__main__":
    main()
