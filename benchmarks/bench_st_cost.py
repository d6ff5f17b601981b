"""What standard transfer costs with and without validation RA, side by side in one process.

Three ST transfers of the same ticket on the same CIFAR-format files (fabricated here: the
python batches of CIFAR-10, random pixels), with the same budget:

- ``default``: the ST default, validation SA only (``train.val_ra: false``, the official ST
  script); test SA and RA measured once, at the best-val-SA checkpoint;
- ``val_ra``: ``train.val_ra: true``, PGD on the validation split every epoch for a best-RA
  checkpoint of its own;
- ``no attack``: no attack anywhere (validation SA only and ``eval_attack.eps: 0``), the
  floor of what any ST run costs.

    python benchmarks/bench_st_cost.py [--arch cifar_resnet18] [--epochs 3] [--train 2000] \
        [--val 250] [--test 500] [--val-steps 20] [--device auto]

Prints seconds per run (the median of ``--repeats`` alternating rounds) and the ratios the ST default is judged by (default ÷ val_ra ≤ 0.5).
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from doublewin.core.build import load_spec
from doublewin.core.parsing import resolve_device
from doublewin.core.specs import MaskScope
from doublewin.data import load_dataset
from doublewin.models import WeightsMeta, build_model, save_weights
from doublewin.stages.environment import Environment, Inputs
from doublewin.stages.transfer import transfer
from doublewin.tickets import Mask, Ticket, make_info, save_ticket
from doublewin.tickets.pruning import prune_to_sparsity
from doublewin.tickets.scores import random_scores


def fabricate_cifar(root: Path, train: int, test: int, seed: int = 0) -> None:
    """CIFAR-10's python batches (five of ``train`` / 5 images, one test batch) of random
    pixels and labels."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    per = train // 5
    for i in range(1, 6):
        batch = {
            b"data": rng.integers(0, 256, (per, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, per).tolist(),
        }
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    batch = {
        b"data": rng.integers(0, 256, (test, 3072), dtype=np.uint8),
        b"labels": rng.integers(0, 10, test).tolist(),
    }
    (folder / "test_batch").write_bytes(pickle.dumps(batch))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="cifar_resnet18")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train", type=int, default=2000)
    # Validation and test images in the official split's proportion (5,000 : 10,000).
    parser.add_argument("--val", type=int, default=250)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--val-steps", type=int, default=20)
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fabricate_cifar(root / "data", args.train, args.test)
        torch.manual_seed(0)
        model = build_model(args.arch, 10)
        weights = root / "theta.safetensors"
        meta = WeightsMeta(arch=args.arch, num_classes=10, input_size=32, dataset="cifar10")
        digest = save_weights(weights, model, meta)
        dense = Mask.dense(model, MaskScope())
        mask = prune_to_sparsity(random_scores(dense, seed=0), dense, args.sparsity)
        ticket_path = save_ticket(
            root / "ticket.safetensors",
            Ticket(mask, make_info(mask, arch=args.arch, method="random", weights_hash=digest)),
        )
        common = {
            "data": {"name": "cifar10", "val_size": args.val, "augment": "crop-flip"},
            "train": {
                "regime": "std",
                "epochs": args.epochs,
                "batch_size": 64,
                "lr": 0.01,
                "schedule": "cosine",
                "val_attack": {"steps": args.val_steps, "step": 2 / 255},
            },
            "eval_attack": {"steps": 20, "step": 2 / 255},
        }
        runs = {
            "default": [],
            "val_ra": ["train.val_ra=true"],
            "no attack": ["eval_attack.eps=0"],
        }
        env = Environment(device=device, data_root=root / "data")
        load_dataset("cifar10", root / "data", val_size=args.val)  # reading the files: not timed
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        for repeat in range(args.repeats):
            # Alternating order, so a drift of the machine's speed hits every variant alike.
            for name, overrides in runs.items():
                spec = load_spec("transfer", common, overrides)
                out = root / f"{name.replace(' ', '-')}-{repeat}"
                started = time.perf_counter()
                metrics = transfer(spec, Inputs(weights=weights, ticket=ticket_path), out, env)
                seconds[name].append(time.perf_counter() - started)
                print(
                    f"{name:10} {seconds[name][-1]:7.1f} s  val_ra {spec.train.val_ra!s:5}  "
                    f"best-val-SA epoch {metrics.get('best_val_sa_epoch')}, best-val-RA epoch "
                    f"{metrics.get('best_val_ra_epoch')}, test SA {metrics['sa_best_sa']:.2f}",
                    flush=True,
                )
        median = {name: statistics.median(values) for name, values in seconds.items()}
    print(
        f"\n{args.arch}, {args.epochs} epochs, {args.train} train / {args.val} val / "
        f"{args.test} test images on {device}, median of {args.repeats}: "
        + ", ".join(f"{name} {value:.1f} s" for name, value in median.items())
        + f"; default ÷ val_ra = {median['default'] / median['val_ra']:.2f}, "
        f"no attack ÷ val_ra = {median['no attack'] / median['val_ra']:.2f}"
    )


if __name__ == "__main__":
    main()
