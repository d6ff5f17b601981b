"""What bf16 autocast changes against fp32: test SA, RA and training speed of AT on a small model.

The same AT run (resnet8 on the embedded `digits` at 16 px, PGD-5 at ε = 16/255, cosine lr)
with `train.precision` fp32 and bf16, for several seeds; test SA and PGD-20 RA are measured in
fp32 both times (as doublewin always does). Prints each seed's numbers, the mean difference
bf16 − fp32, and the speed ratio. Not a test.

    python benchmarks/bench_precision.py                    # CPU
    python benchmarks/bench_precision.py --device cuda --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import time

import torch

from doublewin.core.parsing import resolve_device
from doublewin.core.specs import AttackSpec, DataSpec, TrainSpec
from doublewin.data import prepare_data
from doublewin.models import build_model
from doublewin.train import evaluate, train

EPS = 16 / 255


def run(precision: str, seed: int, device: torch.device, epochs: int) -> dict[str, float]:
    train_loader, _, test_loader, info = prepare_data(
        DataSpec(name="digits", resolution=16, augment="none"),
        resolution_default=16,
        batch_size=64,
        device=device,
        seed=seed,
    )
    torch.manual_seed(seed)
    model = build_model("resnet8", info.num_classes, mean=info.mean, std=info.std)
    spec = TrainSpec(
        regime="at",
        epochs=epochs,
        lr=0.1,
        batch_size=64,
        schedule="cosine",
        attack=AttackSpec(eps=EPS, step=EPS / 2.5, steps=5),
        val_every=1000,
        precision=precision,
    )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    result = train(model, spec, train_loader, device=device, seed=seed)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    test = evaluate(
        model.eval(),
        test_loader,
        attack=dataclasses.replace(AttackSpec(eps=EPS, step=EPS / 8, steps=20), bn_mode="eval"),
        device=device,
    )
    return {
        "sa": test["sa"],
        "ra": test["ra"],
        "seconds": seconds,
        "images_per_second": result.metrics["images_per_second"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    device = resolve_device(args.device)
    rows = {p: [run(p, s, device, args.epochs) for s in args.seeds] for p in ("fp32", "bf16")}
    for precision, results in rows.items():
        for seed, r in zip(args.seeds, results, strict=True):
            print(
                f"{precision} seed {seed}: SA {r['sa']:.2f}  RA {r['ra']:.2f}  "
                f"{r['seconds']:.1f} s ({r['images_per_second']:.0f} img/s)"
            )
    summary = {"device": str(device), "cpu": platform.processor() or platform.machine()}
    if device.type == "cuda":
        summary["device_name"] = torch.cuda.get_device_name(device)
    for metric in ("sa", "ra"):
        diffs = [b[metric] - a[metric] for a, b in zip(rows["fp32"], rows["bf16"], strict=True)]
        summary[f"{metric}_bf16_minus_fp32"] = round(statistics.fmean(diffs), 2)
        summary[f"{metric}_difference_std"] = round(statistics.pstdev(diffs), 2)
    speed = [b["seconds"] / a["seconds"] for a, b in zip(rows["fp32"], rows["bf16"], strict=True)]
    summary["bf16_time_over_fp32"] = round(statistics.fmean(speed), 3)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
