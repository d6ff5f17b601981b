"""The memory layout on this device: contiguous (NCHW) against channels_last (NHWC).

Times, per architecture and resolution, a standard training step and a PGD-2 adversarial one
(batch 64), and a PGD-10 `ce+margin` test attack on 1,024 images at 8 px (as many pixels at
larger sizes: 256 at 16 px, 64 at 32), in each layout, one thread,
and prints the seconds and the ratio. The engine and evaluation run in channels_last on CUDA and
the CPU (`doublewin.train.precision.default_channels_last`); this is the measurement behind
that default. Not a test: it wants nothing else running.

    python benchmarks/bench_layout.py [--device cpu] [--seconds 3]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from doublewin.attacks import PGD
from doublewin.experiments.estimate.rates import cpu_model
from doublewin.models import build_model

MODELS = (
    ("resnet8", 8),
    ("resnet8", 16),
    ("resnet20", 32),
    (
        "timm/vit_tiny_patch16_224:img_size=8,patch_size=2,embed_dim=64,depth=3,num_heads=2,"
        "mlp_ratio=2,global_pool=avg,class_token=false",
        8,
    ),
)
TRAIN_ATTACK = PGD(eps=32 / 255, step=20 / 255, steps=2, bn_mode="train")
TEST_ATTACK = PGD(eps=32 / 255, step=16 / 255, steps=10, bn_mode="eval", loss="ce+margin")


def seconds_per_call(work, seconds: float, device: torch.device) -> float:
    work()  # warm-up
    calls, begin = 0, time.perf_counter()
    while time.perf_counter() - begin < seconds:
        work()
        calls += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - begin) / calls


def timings(arch: str, res: int, channels_last: bool, device: torch.device, seconds: float):
    torch.manual_seed(0)
    model = build_model(arch, 10).to(device)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=layout)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    out = {}
    test_batch = max(1, 1024 * 8 * 8 // (res * res))
    for work, batch in (("ST step", 64), ("AT step", 64), ("PGD-10 test", test_batch)):
        x = torch.rand(batch, 3, res, res, device=device).contiguous(memory_format=layout)
        y = torch.randint(0, 10, (batch,), device=device)

        def call(work=work, x=x, y=y) -> None:
            if work == "PGD-10 test":
                model.eval()
                TEST_ATTACK(model, x, y)
                return
            model.train()
            inputs = TRAIN_ATTACK(model, x, y) if work == "AT step" else x
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(inputs), y).backward()
            optimizer.step()

        out[work] = seconds_per_call(call, seconds, device)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(1)
    print(f"device {device} ({cpu_model()}), torch {torch.__version__}, 1 thread")
    print(f"{'model':<22} {'work':<12} {'contiguous':>11} {'chan_last':>10} {'ratio':>6}")
    for arch, res in MODELS:
        base = timings(arch, res, False, device, args.seconds)
        fast = timings(arch, res, True, device, args.seconds)
        name = f"{arch.split(':')[0].removeprefix('timm/')[:14]}@{res}px"
        for work in base:
            ratio = fast[work] / base[work]
            print(f"{name:<22} {work:<12} {base[work]:>10.4f}s {fast[work]:>9.4f}s {ratio:>6.2f}")


if __name__ == "__main__":
    main()
