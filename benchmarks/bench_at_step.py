"""One adversarial-training step (PGD-10): doublewin's engine vs an official-style loop.

Both sides train the same architecture from the same initial weights on the same images with
the same 50%-sparse global-magnitude mask, batch size and PGD-10 (ε = 8/255, step 2/255):

- doublewin: `doublewin.train.train` (regime `at`) on the device-resident `BatchLoader`
  (batched crop-flip + resize); mask enforced without hooks; the attack differentiates w.r.t.
  the input only; bf16 autocast + channels_last on CUDA, fp32 on the CPU.
- reference (the official Double-Win-LTH code's shape): fp32; masks through
  `torch.nn.utils.prune` forward pre-hooks (weight_orig × mask recomputed every forward); a
  `DataLoader` with per-image PIL transforms (RandomCrop(pad 4) + flip + Resize + ToTensor);
  PGD with `loss.backward()` (parameter gradients computed at every attack step) and the model
  in train mode.

Prints images/s of the timed steps for both and their ratio. Not a test.

    python benchmarks/bench_at_step.py                      # resnet8, 32 px, CPU
    python benchmarks/bench_at_step.py --arch resnet50 --resolution 224 --device cuda
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from doublewin.core.parsing import resolve_device
from doublewin.core.specs import AttackSpec, TrainSpec
from doublewin.data import ImageSet, make_loader
from doublewin.models import build_model
from doublewin.train import train

EPS, STEP, PGD_STEPS = 8 / 255, 2 / 255, 10


def images(n: int, native: int, num_classes: int, seed: int) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (n, 3, native, native), generator=g, dtype=torch.uint8)
    return ImageSet(torch.arange(n) % num_classes, num_classes, images=pixels)


def magnitude_mask(model: nn.Module, sparsity: float) -> dict[str, torch.Tensor]:
    """Global L1 magnitude mask over every Conv2d weight (the paper's parameter set)."""
    convs = {
        f"{n}.weight": m.weight.detach()
        for n, m in model.named_modules()
        if isinstance(m, nn.Conv2d)
    }
    scores = torch.cat([w.abs().flatten() for w in convs.values()])
    k = int(sparsity * scores.numel())
    threshold = scores.kthvalue(k).values if k > 0 else scores.min() - 1
    return {n: w.abs() > threshold for n, w in convs.items()}


def run_doublewin(
    model: nn.Module, data: ImageSet, mask: dict, args: argparse.Namespace, device: torch.device
) -> float:
    spec = TrainSpec(
        regime="at",
        epochs=1,
        batch_size=args.batch_size,
        lr=0.01,
        schedule="constant",
        weight_decay=5e-4,
        attack=AttackSpec(eps=EPS, step=STEP, steps=PGD_STEPS, bn_mode="train"),
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
    result = train(model, spec, loader, device=device, seed=0, compile=args.compile)
    return float(result.metrics["images_per_second"])


class PilImages(torch.utils.data.Dataset):
    """Per-image PIL decoding and transforms, as torchvision datasets do."""

    def __init__(self, data: ImageSet, resolution: int):
        from torchvision import transforms as T

        self.arrays = data.images.permute(0, 2, 3, 1).numpy()
        self.labels = data.labels.tolist()
        native = data.images.shape[-1]
        self.transform = T.Compose(
            [
                T.RandomCrop(native, padding=native // 8),
                T.RandomHorizontalFlip(),
                T.Resize(resolution),
                T.ToTensor(),
            ]
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.arrays[i])), self.labels[i]


def official_pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PGD as in the official code: loss.backward() on the model, train mode throughout."""
    delta = torch.empty_like(x).uniform_(-EPS, EPS)
    delta = ((x + delta).clamp(0, 1) - x).requires_grad_(True)
    for _ in range(PGD_STEPS):
        loss = F.cross_entropy(model(x + delta), y)
        loss.backward()
        with torch.no_grad():
            delta += STEP * delta.grad.sign()
            delta.clamp_(-EPS, EPS)
            delta.copy_((x + delta).clamp(0, 1) - x)
        delta.grad.zero_()
    return (x + delta).detach()


def run_reference(
    model: nn.Module, data: ImageSet, mask: dict, args: argparse.Namespace, device: torch.device
) -> float:
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
    seen, start = 0, None
    for index, (x, y) in enumerate(loader):
        if index == args.warmup:
            _sync(device)
            start, seen = time.perf_counter(), 0
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        x_adv = official_pgd(model, x, y)
        loss = F.cross_entropy(model(x_adv), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += y.shape[0]
    _sync(device)
    return seen / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet8")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--native", type=int, default=32, help="stored image side (CIFAR: 32)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6, help="timed training steps per side")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=2, help="reference DataLoader workers")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--compile", action="store_true", help="torch.compile doublewin's model")
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
    mask = magnitude_mask(_model(args, initial, device), args.sparsity)

    # doublewin: a warm-up run on the warm-up images, then the timed run (the engine's own
    # images/s counts the training loop only).
    warm = data.subset(range(args.batch_size * max(1, args.warmup)))
    run_doublewin(_model(args, initial, device), warm, mask, args, device)
    ours = run_doublewin(
        _model(args, initial, device),
        data.subset(range(args.batch_size * args.steps)),
        mask,
        args,
        device,
    )
    reference = run_reference(_model(args, initial, device), data, mask, args, device)

    result = {
        "arch": args.arch,
        "resolution": args.resolution,
        "batch_size": args.batch_size,
        "device": str(device),
        "torch": torch.__version__,
        "machine": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "doublewin_images_per_s": round(ours, 1),
        "reference_images_per_s": round(reference, 1),
        "speedup": round(ours / reference, 2),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"PGD-10 adversarial-training step, {args.arch} at {args.resolution} px, batch "
        f"{args.batch_size}, {args.sparsity:.0%} sparse, {result['machine']} ({device})"
    )
    print(f"  doublewin engine   {ours:9.1f} images/s")
    print(f"  official-style     {reference:9.1f} images/s")
    print(f"  speed-up           {ours / reference:9.2f}x")


def _model(args: argparse.Namespace, state: dict, device: torch.device) -> nn.Module:
    model = build_model(args.arch, args.num_classes)
    model.load_state_dict(state)
    return model.to(device)


if __name__ == "__main__":
    main()
