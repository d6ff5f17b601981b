"""One transfer job alone, then two at once: does each keep its throughput on shared cores?

A job is what a transfer stage does: a ResNet-8 fine-tuned on `digits` at 16 px (standard
training, batch 64) through doublewin's engine, timed in images per second after a warm-up.
For each setting of intra-op threads and OpenMP wait policy the job runs alone, then two
copies run at the same time; the ratio is each copy's throughput over the solo throughput
(1.0: no loss; 0.5: the two share the machine evenly). Each job is a fresh process, because
the wait policy is read when OpenMP starts.

    python benchmarks/bench_contention.py                    # every setting
    python benchmarks/bench_contention.py --threads 1 --policies PASSIVE

Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

WORKER = r"""
import json, os, sys, time
import torch
torch.set_num_threads(int(sys.argv[1]))
from doublewin.core.specs import DataSpec, TrainSpec
from doublewin.data import prepare_data
from doublewin.models import build_model
from doublewin.train import train
data = DataSpec(name="digits", augment="none", resolution=16)
loader, _, _, info = prepare_data(data, resolution_default=16, batch_size=64, seed=0)
torch.manual_seed(0)
model = build_model("resnet8", info.num_classes)
spec = TrainSpec(epochs=1, batch_size=64, lr=0.05, schedule="constant")
train(model, spec, loader, seed=0)  # warm-up
start = time.perf_counter()
epochs = int(sys.argv[2])
train(model, TrainSpec(epochs=epochs, batch_size=64, lr=0.05, schedule="constant"), loader, seed=0)
seconds = time.perf_counter() - start
print(json.dumps({"images_per_second": epochs * len(loader.images) / seconds}))
"""


def run(copies: int, threads: int, policy: str | None, epochs: int) -> list[float]:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("GOMP_SPINCOUNT", None)
    if policy and "=" in policy:  # any OpenMP setting, e.g. GOMP_SPINCOUNT=10000
        name, value = policy.split("=", 1)
        env[name] = value
    elif policy:
        env["OMP_WAIT_POLICY"] = policy
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(threads), str(epochs)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(copies)
    ]
    out = []
    for p in procs:
        stdout, _ = p.communicate()
        out.append(json.loads(stdout.strip().splitlines()[-1])["images_per_second"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument(
        "--policies",
        nargs="+",
        default=["default", "PASSIVE", "ACTIVE", "GOMP_SPINCOUNT=10000"],
        help="OMP_WAIT_POLICY values, 'default' (unset), or NAME=VALUE OpenMP settings",
    )
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per job")
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}"
    )
    print(
        f"{'threads':>7} {'OpenMP setting':>20} {'solo img/s':>11} {'pair img/s':>17} {'ratio':>11}"
    )
    for threads in args.threads:
        for policy in args.policies:
            solo = run(1, threads, None if policy == "default" else policy, args.epochs)[0]
            time.sleep(1)
            pair = run(2, threads, None if policy == "default" else policy, args.epochs)
            ratios = [p / solo for p in pair]
            print(
                f"{threads:>7} {policy:>20} {solo:11.0f} "
                f"{' / '.join(f'{p:.0f}' for p in pair):>17} "
                f"{' / '.join(f'{r:.2f}' for r in ratios):>11}"
            )


if __name__ == "__main__":
    main()
