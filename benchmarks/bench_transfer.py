"""Transfer training speed: official-style loop vs doublewin vs the compute ceiling.

Three ways to run the same training steps (same architecture, initial weights, 50%-sparse
global-magnitude mask over the convs, batch size, images), side by side in one run:

(a) official-style (the shape of the Double-Win-LTH code): fp32; masks through
    `torch.nn.utils.prune` forward pre-hooks (weight × mask recomputed every forward); a
    DataLoader with per-image PIL transforms (RandomCrop + flip + Resize to the model's
    resolution + ToTensor); PGD through `loss.backward()` (parameter gradients at every attack
    step), model in train mode.
(b) doublewin: `doublewin.train.train` on the device-resident loader (batched augmentation and
    resize on the device), masks without hooks, attacks on input gradients only, bf16 autocast
    and channels_last on CUDA (fp32 on the CPU), optional torch.compile.
(c) ceiling: the same model's forward/backward passes per step (1 for ST; PGD-k adds k input
    gradient passes) plus the SGD update, on one batch already on the device, with the same
    precision settings as (b) and nothing else.

Prints images/s for each, doublewin ÷ official and doublewin ÷ ceiling, for ST and PGD-10 AT.
Not a test.

    python benchmarks/bench_transfer.py                                   # resnet8, CPU
    python benchmarks/bench_transfer.py --arch resnet50 --resolution 224 --native 32 \
        --batch-size 128 --device cuda
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_at_step import PilImages, images, magnitude_mask  # noqa: E402
from doublewin.core.parsing import resolve_device  # noqa: E402
from doublewin.core.specs import AttackSpec, TrainSpec  # noqa: E402
from doublewin.data import make_loader  # noqa: E402
from doublewin.models import build_model  # noqa: E402
from doublewin.train import train  # noqa: E402
from doublewin.train.precision import autocast, resolve_precision  # noqa: E402

EPS, STEP = 8 / 255, 2 / 255


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _model(arch: str, state: dict, device: torch.device, classes: int) -> nn.Module:
    model = build_model(arch, classes)
    model.load_state_dict(state)
    return model.to(device)


def run_doublewin(model, data, mask, args, device, regime: str) -> float:
    spec = TrainSpec(
        regime=regime,
        epochs=1,
        batch_size=args.batch_size,
        lr=0.01,
        schedule="constant",
        weight_decay=5e-4,
        attack=AttackSpec(eps=EPS, step=STEP, steps=args.pgd_steps, bn_mode="train"),
    )
    loader = make_loader(
        data,
        batch_size=args.batch_size,
        train=True,
        resolution=args.resolution,
        augment="crop-flip",
        device=device,
        seed=0,
        drop_last=True,
    )
    result = train(model, spec, loader, mask=mask, device=device, seed=0, compile=args.compile)
    return float(result.metrics["images_per_second"])


def run_official(model, data, mask, args, device, regime: str) -> float:
    modules = dict(model.named_modules())
    for name, keep in mask.items():
        prune.custom_from_mask(modules[name.rsplit(".", 1)[0]], "weight", keep.to(device))
    loader = torch.utils.data.DataLoader(
        PilImages(data, args.resolution),
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    model.train()
    seen, start = 0, time.perf_counter()
    for index, (x, y) in enumerate(loader):
        if index == args.warmup:
            _sync(device)
            start, seen = time.perf_counter(), 0
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if regime == "at":
            delta = torch.empty_like(x).uniform_(-EPS, EPS)
            delta = ((x + delta).clamp(0, 1) - x).requires_grad_(True)
            for _ in range(args.pgd_steps):
                loss = F.cross_entropy(model(x + delta), y)
                loss.backward()  # parameter gradients too, as the official code does
                with torch.no_grad():
                    delta += STEP * delta.grad.sign()
                    delta.clamp_(-EPS, EPS)
                    delta.copy_((x + delta).clamp(0, 1) - x)
                delta.grad.zero_()
            x = (x + delta).detach()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += y.shape[0]
    _sync(device)
    return seen / (time.perf_counter() - start)


def run_ceiling(model, args, device, regime: str) -> float:
    precision = resolve_precision("auto", device)
    channels_last = device.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    x = torch.rand(args.batch_size, 3, args.resolution, args.resolution, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, args.num_classes, (args.batch_size,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    model.train()
    attack_passes = args.pgd_steps if regime == "at" else 0

    def step() -> None:
        x_in = x
        for _ in range(attack_passes):
            x_in = x_in.detach().requires_grad_(True)
            with autocast(precision, device):
                loss = F.cross_entropy(model(x_in).float(), y)
            (grad,) = torch.autograd.grad(loss, x_in)
            x_in = (x_in + STEP * grad.sign()).clamp(0, 1)
        with autocast(precision, device):
            loss = F.cross_entropy(model(x_in.detach()).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    _sync(device)
    return args.batch_size * args.steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet8")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--native", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--pgd-steps", type=int, default=10)
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--regimes", default="st,at")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    data = images(args.batch_size * (args.steps + args.warmup), args.native, args.num_classes, 0)
    torch.manual_seed(0)
    initial = build_model(args.arch, args.num_classes).state_dict()
    mask = magnitude_mask(_model(args.arch, initial, device, args.num_classes), args.sparsity)
    machine = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    )
    rows = []
    for regime in args.regimes.split(","):
        train_regime = "std" if regime == "st" else "at"

        def fresh() -> nn.Module:
            return _model(args.arch, initial, device, args.num_classes)

        warm = data.subset(range(args.batch_size * max(1, args.warmup)))
        run_doublewin(fresh(), warm, mask, args, device, train_regime)
        ours = run_doublewin(
            fresh(),
            data.subset(range(args.batch_size * args.steps)),
            mask,
            args,
            device,
            train_regime,
        )
        official = run_official(fresh(), data, mask, args, device, train_regime)
        ceiling = run_ceiling(fresh(), args, device, train_regime)
        rows.append(
            {
                "regime": regime.upper(),
                "doublewin": round(ours, 1),
                "official": round(official, 1),
                "ceiling": round(ceiling, 1),
                "vs_official": round(ours / official, 2),
                "of_ceiling": round(ours / ceiling, 3),
            }
        )
    result = {
        "arch": args.arch,
        "resolution": args.resolution,
        "batch_size": args.batch_size,
        "pgd_steps": args.pgd_steps,
        "device": str(device),
        "machine": machine,
        "torch": torch.__version__,
        "rows": rows,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{args.arch} at {args.resolution} px (stored {args.native} px), batch "
        f"{args.batch_size}, {args.sparsity:.0%} sparse, {machine} ({device}), torch "
        f"{torch.__version__}"
    )
    print(
        f"{'regime':8}{'official':>12}{'doublewin':>12}{'ceiling':>12}{'÷ official':>12}"
        f"{'÷ ceiling':>11}   (images/s)"
    )
    for r in rows:
        print(
            f"{r['regime']:8}{r['official']:12.1f}{r['doublewin']:12.1f}{r['ceiling']:12.1f}"
            f"{r['vs_official']:11.2f}x{100 * r['of_ceiling']:10.1f}%"
        )


if __name__ == "__main__":
    main()
