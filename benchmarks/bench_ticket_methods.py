"""Ticket methods side by side on an embedded task: cost, accuracy before and after training,
and overlap with the same-seed random ticket.

For every seed a ResNet-8 θp is trained on `digits` (standard training, seeded); then every
method draws tickets from it at the IMP rungs nearest 80 / 90 / 95% sparsity (79.03, 89.26 and
94.50%: 7, 10 and 13 rounds at 20%, so IMP meets every method rung for rung), on the same
task. For each ticket it prints:

- **cost** in source forward/backward passes: optimizer steps over source batches (IMP: its
  rounds' training steps; Gem-Miner: its mining steps; SNIP: its scoring batches; GraSP: two
  passes per scoring batch; SynFlow, OMP, random: none, they read no source data);
- **no-retrain** test SA of m ⊙ θp after BatchNorm re-estimation on 20 training batches;
- **fine-tuned** test SA after a fixed masked fine-tune (the same for every method);
- **overlap** with the random ticket of the same seed: the share of the ticket's kept weights
  the random ticket also keeps (chance: the density).

Means ± standard deviations over the seeds. Not a test.

    python benchmarks/bench_ticket_methods.py                  # 3 seeds, every method
    python benchmarks/bench_ticket_methods.py --methods gem-miner random --seeds 1
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from doublewin.core.specs import DataSpec, GemMinerSpec, TicketSpec, TrainSpec
from doublewin.data import prepare_data
from doublewin.models import WeightsMeta, build_model, load_model, save_weights
from doublewin.tickets import find_tickets, load_ticket
from doublewin.tickets.ladder import imp_ladder
from doublewin.train import evaluate, train
from doublewin.train.batchnorm import recalibrate_bn

METHODS = ("random", "omp", "imp", "snip", "grasp", "synflow", "gem-miner")
RUNGS = (7, 10, 13)  # IMP rounds at 20%: 79.03, 89.26, 94.50% sparsity
LADDER = tuple(imp_ladder(0.2, 13)[k - 1] for k in RUNGS)


def theta_p(seed: int, data: DataSpec, epochs: int, folder: Path) -> Path:
    """A ResNet-8 trained on ``data`` from a seeded initialization."""
    torch.manual_seed(seed)
    train_loader, _, _, info = prepare_data(data, resolution_default=8, batch_size=64, seed=seed)
    model = build_model("resnet8", info.num_classes)
    train(
        model,
        TrainSpec(epochs=epochs, lr=0.1, schedule="cosine", batch_size=64),
        train_loader,
        seed=seed,
    )
    path = folder / f"theta-{seed}.safetensors"
    save_weights(
        path,
        model,
        WeightsMeta(
            arch="resnet8",
            num_classes=info.num_classes,
            input_size=8,
            dataset=data.name,
            regime="std",
        ),
    )
    return path


def source_passes(method: str, spec: TicketSpec, batches: int, info: dict) -> int:
    if method == "imp":
        return RUNGS[-1] * spec.train.epochs * batches
    if method == "gem-miner":
        return int(info.get("source_passes", 0))
    if method == "snip":
        return spec.score_batches
    if method == "grasp":
        return 2 * spec.score_batches
    return 0


def run(args: argparse.Namespace) -> dict:
    data = DataSpec(name=args.data, augment="none", fraction=args.fraction)
    results: dict[tuple[str, float], dict[str, list[float]]] = {}
    folder = Path(tempfile.mkdtemp(prefix="bench-tickets-"))
    options = {
        "epochs": args.gem_epochs,
        "lr": args.gem_lr,
        "lam": args.gem_lam,
        "period": args.gem_period,
    }
    gem = GemMinerSpec(**{k: v for k, v in options.items() if v is not None})
    for seed in range(args.seeds):
        weights = theta_p(seed, data, args.pretrain_epochs, folder)
        train_loader, _, test_loader, _ = prepare_data(
            data, resolution_default=8, batch_size=64, seed=seed
        )
        masks: dict[str, dict[float, dict]] = {}
        for method in args.methods:
            spec = TicketSpec(
                weights=str(weights),
                method=method,
                sparsities=() if method == "imp" else LADDER,
                rounds=RUNGS[-1],
                data=data,
                train=TrainSpec(epochs=args.imp_epochs, lr=0.1, schedule="cosine", batch_size=64),
                seed=seed,
                gem_miner=gem,
            )
            start = time.perf_counter()
            paths = find_tickets(spec, weights, workdir=folder / f"{method}-{seed}")
            seconds = time.perf_counter() - start
            for path in paths:
                ticket = load_ticket(path)
                target = round(float(ticket.info.target_sparsity), 6)
                if target not in LADDER:
                    continue
                masks.setdefault(method, {})[target] = ticket.mask
                row = results.setdefault((method, target), {})
                row.setdefault("passes", []).append(
                    source_passes(method, spec, len(train_loader), dict(ticket.info.extra or {}))
                )
                row.setdefault("seconds", []).append(seconds)
                model, _ = load_model(weights)
                ticket.mask.apply_to(model)
                recalibrate_bn(model, train_loader, args.recalibrate)
                row.setdefault("no_retrain", []).append(evaluate(model, test_loader)["sa"])
                train(
                    model,
                    TrainSpec(
                        epochs=args.finetune_epochs,
                        lr=0.01,
                        schedule="cosine",
                        batch_size=64,
                        weight_decay=0.0,
                    ),
                    train_loader,
                    mask=dict(ticket.mask),
                    seed=seed,
                )
                row.setdefault("finetuned", []).append(evaluate(model, test_loader)["sa"])
        for method, by_sparsity in masks.items():
            for target, mask in by_sparsity.items():
                reference = masks.get("random", {}).get(target)
                if reference is None:
                    continue
                kept = sum(int(m.sum()) for m in mask.values())
                both = sum(int((m & reference[n]).sum()) for n, m in mask.items())
                results[(method, target)].setdefault("overlap", []).append(100.0 * both / kept)
    return {f"{m} {s}": v for (m, s), v in results.items()}


def _stat(values: list[float] | None, digits: int = 1) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pretrain-epochs", type=int, default=15)
    parser.add_argument("--imp-epochs", type=int, default=10, help="training epochs per IMP round")
    parser.add_argument("--finetune-epochs", type=int, default=5)
    parser.add_argument("--recalibrate", type=int, default=20, help="BN re-estimation batches")
    parser.add_argument("--gem-epochs", type=int, default=None)
    parser.add_argument("--gem-lr", type=float, default=None)
    parser.add_argument("--gem-lam", type=float, default=None)
    parser.add_argument("--gem-period", type=int, default=None)
    parser.add_argument("--fraction", type=float, default=1.0, help="share of the training set")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    results = run(args)
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.seeds} seed(s), data {args.data}"
    )
    print(
        f"{'method':10} {'sparsity':>8} {'passes':>8} {'no-retrain SA':>15} "
        f"{'fine-tuned SA':>15} {'overlap %':>12} {'chance %':>8}"
    )
    imp_passes = {}
    for key, row in results.items():
        method, target = key.rsplit(" ", 1)
        if method == "imp":
            imp_passes = row["passes"]
    for key, row in results.items():
        method, target = key.rsplit(" ", 1)
        density = 100 * (1 - float(target))
        print(
            f"{method:10} {100 * float(target):7.2f}% {statistics.fmean(row['passes']):8.0f} "
            f"{_stat(row.get('no_retrain')):>15} {_stat(row.get('finetuned')):>15} "
            f"{_stat(row.get('overlap')):>12} {density:8.1f}"
        )
    gem = [row["passes"] for key, row in results.items() if key.startswith("gem-miner ")]
    if gem and imp_passes:
        ladder = sum(statistics.fmean(p) for p in gem)
        print(
            f"Gem-Miner's passes for the 3-rung ladder / IMP's: "
            f"{ladder / statistics.fmean(imp_passes):.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
