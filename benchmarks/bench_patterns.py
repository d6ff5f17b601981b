"""Inference latency of exported channel tickets against the dense model and against
torch-pruning's channel pruning at the same parameter count, side by side in one run.

For each architecture and each parameter sparsity (``--sparsities``: the fraction of the
network's parameters removed), doublewin's channel tickets are drawn with ``channel_budget:
params`` (OMP of the seeded initialization) in two allocations, uniform (``channel_ratio:
layer``, the same kept fraction of every group: independent of the weights) and global (the
lowest normalized filter norms across groups: it depends on the weights), each with widths
rounded to multiples of 8 (``channel_round: 8``), and exported with ``doublewin export``.
torch-pruning (``MagnitudePruner``, L2 magnitude, its default uniform ratio per layer, the head
ignored) prunes the same network to the parameter count of doublewin's uniform ticket (its
ratio bisected to the closest count), once with its default ``round_to`` (none)
and once with ``round_to=8``. Every model is timed in fp32 eval mode without gradients at batch
1 and batch 256, the passes taken round-robin over the models (so a busy spell of the machine
slows all of them alike), the median of ``--repeats``; × is dense ÷ model from the same run.
On a CUDA device the N:M (2:4) export is timed too: its dense form and, where the GPU runs 2:4,
the ``to_sparse_semi_structured`` matmuls of its layers.

    python benchmarks/bench_patterns.py [--archs cifar_resnet18:32,resnet8:8] \
        [--sparsities 0.5,0.75] [--repeats 20] [--device cpu] [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from doublewin.core.build import load_spec
from doublewin.core.parsing import resolve_device
from doublewin.models import WeightsMeta, build_model, load_model, save_weights
from doublewin.tickets import find_tickets, load_ticket
from doublewin.tickets.export import export_ticket


def _round_robin_ms(
    models: list[tuple[str, torch.nn.Module]], x: torch.Tensor, repeats: int
) -> dict[str, float]:
    """Median milliseconds of a forward pass of every model, the passes interleaved."""
    times: dict[str, list[float]] = {name: [] for name, _ in models}
    with torch.no_grad():
        for _, model in models:  # warm-up: allocator, kernel selection
            for _ in range(3):
                model.eval()(x)
        for _ in range(repeats):
            for name, model in models:
                if x.is_cuda:
                    torch.cuda.synchronize()
                start = time.perf_counter()
                model(x)
                if x.is_cuda:
                    torch.cuda.synchronize()
                times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(v) for name, v in times.items()}


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def torch_pruning_at(model: torch.nn.Module, size: int, params: int, round_to: int | None):
    """torch-pruning's uniform magnitude pruning of a copy of ``model`` whose parameter count
    is the closest to ``params`` (its pruning ratio bisected)."""
    import torch_pruning as tp

    def pruned(ratio: float) -> torch.nn.Module:
        net = copy.deepcopy(model).eval()
        pruner = tp.pruner.MagnitudePruner(
            net,
            torch.rand(1, 3, size, size),
            importance=tp.importance.MagnitudeImportance(p=2),
            pruning_ratio=ratio,
            ignored_layers=[net.fc],
            round_to=round_to,
        )
        pruner.step()
        return net

    low, high = 0.0, 0.99
    for _ in range(24):
        mid = (low + high) / 2
        if _params(pruned(mid)) >= params:
            low = mid
        else:
            high = mid
    candidates = [pruned(low), pruned(high)]
    return min(candidates, key=lambda net: abs(_params(net) - params))


def channel_ticket(root: Path, theta: Path, arch: str, size: int, sparsity: float, ratio: str):
    """doublewin's exported channel ticket at ``sparsity`` of the parameters."""
    spec = load_spec(
        "tickets",
        {
            "weights": str(theta),
            "method": "omp",
            "pattern": "channel",
            "sparsities": [sparsity],
            "channel_budget": "params",
            "channel_ratio": ratio,
            "channel_round": ROUND,
        },
    )
    (ticket,) = find_tickets(spec, theta, workdir=root / f"{arch}-{sparsity}-{ratio}")
    out = root / f"{arch}-{sparsity}-{ratio}-export"
    export_ticket(theta, ticket, out, batch=torch.rand(2, 3, size, size))
    slim, _ = load_model(out / "weights.safetensors")
    return slim


def _timed_linear(x: torch.Tensor, weight: torch.Tensor, repeats: int) -> float:
    """Median milliseconds of ``x @ weight.T`` on the GPU."""
    import torch.nn.functional as F

    for _ in range(3):
        F.linear(x, weight)
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        F.linear(x, weight)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def two_four(root: Path, repeats: int, tokens: int = 4096) -> dict[str, object]:
    """ResNet-50's 2:4 ticket (OMP, the stem left dense) exported, then each converted layer's
    matmul timed: its dense fp16 weight against ``to_sparse_semi_structured`` of it, on
    ``tokens`` input rows (an im2col batch); totals over the layers and their ratio."""
    from torch.sparse import to_sparse_semi_structured

    theta = root / "resnet50.safetensors"
    torch.manual_seed(0)
    save_weights(
        theta, build_model("resnet50", 1000), WeightsMeta(arch="resnet50", num_classes=1000)
    )
    spec = load_spec("tickets", {"weights": str(theta), "method": "omp", "pattern": "nm"})
    (ticket,) = find_tickets(spec, theta, workdir=root / "nm")
    done = export_ticket(theta, ticket, root / "nm-export", batch=torch.rand(2, 3, 224, 224))
    model, _ = load_model(theta)
    params = dict(model.named_parameters())
    dense_ms = sparse_ms = 0.0
    layers = 0
    for name in load_ticket(ticket).mask:
        w = params[name].detach()
        matrix = (w.movedim(1, -1).reshape(w.shape[0], -1)).half().cuda()
        try:
            sparse = to_sparse_semi_structured(matrix)
        except (RuntimeError, ValueError):
            continue
        x = torch.rand(tokens, matrix.shape[1], dtype=torch.half, device="cuda")

        dense_ms += _timed_linear(x, matrix, repeats)
        sparse_ms += _timed_linear(x, sparse, repeats)
        layers += 1
    return {
        "layers_2to4": layers,
        "dense_ms": round(dense_ms, 3),
        "sparse_ms": round(sparse_ms, 3),
        "dense_over_2to4": round(dense_ms / sparse_ms, 2) if sparse_ms else None,
        "export_max_logit_difference": done.max_logit_difference,
        "export_notes": done.notes,
    }


ROUND = 8  # doublewin's channel_round and torch-pruning's second round_to


def compare(root: Path, arch: str, size: int, sparsities: list[float], args) -> list[dict]:
    """The rows of one architecture: dense, then per sparsity doublewin's two tickets and
    torch-pruning's two cuts at the uniform ticket's parameter count."""
    torch.manual_seed(0)
    theta = root / f"{arch}.safetensors"
    save_weights(
        theta, build_model(arch, 10), WeightsMeta(arch=arch, num_classes=10, input_size=size)
    )
    dense, _ = load_model(theta)
    models = [(f"{arch} dense", dense)]
    for s in sparsities:
        uniform = channel_ticket(root, theta, arch, size, s, "layer")
        models.append((f"doublewin uniform {s:.0%}", uniform))
        models.append(
            (f"doublewin global {s:.0%}", channel_ticket(root, theta, arch, size, s, "global"))
        )
        models.append(
            (f"torch-pruning {s:.0%}", torch_pruning_at(dense, size, _params(uniform), None))
        )
        models.append(
            (
                f"torch-pruning r{ROUND} {s:.0%}",
                torch_pruning_at(dense, size, _params(uniform), ROUND),
            )
        )
    device = resolve_device(args.device)
    for _, model in models:
        model.to(device)
    timed = {}
    for batch in (1, 256):
        x = torch.rand(batch, 3, size, size, device=device)
        timed[batch] = _round_robin_ms(models, x, args.repeats)
    base = models[0][0]
    rows = []
    for name, model in models:
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model.eval()(torch.rand(1, 3, size, size, device=device))
        rows.append(
            {
                "model": name,
                "params": _params(model),
                "flops": int(counter.get_total_flops()),
                "batch1_ms": round(timed[1][name], 3),
                "batch256_ms": round(timed[256][name], 3),
                "speedup1": round(timed[1][base] / timed[1][name], 3),
                "speedup256": round(timed[256][base] / timed[256][name], 3),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="cifar_resnet18:32,resnet8:8")
    parser.add_argument("--sparsities", default="0.5,0.75")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true", help="End with the numbers as JSON.")
    args = parser.parse_args()
    results: dict[str, object] = {"device": args.device, "channel": []}
    device = resolve_device(args.device)
    print(f"device {device}, {torch.get_num_threads()} threads, median of {args.repeats} passes")
    print(
        f"{'model':28}{'params':>12}{'MFLOPs':>9}{'batch 1 ms':>12}{'×':>7}"
        f"{'batch 256 ms':>14}{'×':>7}"
    )
    sparsities = [float(v) for v in args.sparsities.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for item in args.archs.split(","):
            arch, size = item.split(":")
            for row in compare(root, arch, int(size), sparsities, args):
                print(
                    f"{row['model']:28}{row['params']:>12,}{row['flops'] / 1e6:>9.1f}"
                    f"{row['batch1_ms']:>12.2f}{row['speedup1']:>7.2f}"
                    f"{row['batch256_ms']:>14.1f}{row['speedup256']:>7.2f}",
                    flush=True,
                )
                results["channel"].append(row)  # type: ignore[union-attr]
        if device.type == "cuda":
            results["two_four"] = two_four(root, args.repeats)
            print(f"N:M (2:4), ResNet-50: {results['two_four']}")
        else:
            print(
                "N:M (2:4): timed on a CUDA device only (its dense form runs as fast as dense here)"
            )
    if args.json:
        print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
