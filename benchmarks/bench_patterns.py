"""Inference latency of exported tickets against their dense model, side by side in one run.

Channel tickets at 50% and 75% channel sparsity (OMP of the pre-trained-shaped weights:
latency does not depend on the values), exported with `doublewin export` and timed against the
dense network at batch 1 and batch 256: the median of ``--repeats`` forward passes (fp32,
eval mode, no gradient), with the ratio dense ÷ export from the same run. On a CUDA device
the N:M (2:4) export is timed too: its dense form and, where the GPU runs 2:4, the
``to_sparse_semi_structured`` matmuls of its layers.

    python benchmarks/bench_patterns.py [--archs cifar_resnet18:32,resnet8:8] [--repeats 20] \
        [--device cpu] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from doublewin.core.parsing import resolve_device
from doublewin.core.specs import load_spec
from doublewin.models import WeightsMeta, build_model, load_model, save_weights
from doublewin.tickets import find_tickets, load_ticket
from doublewin.tickets.export import export_ticket


def _median_ms(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    model.eval()
    times = []
    with torch.no_grad():
        for _ in range(3):  # warm-up: allocator, kernel selection
            model(x)
        for _ in range(repeats):
            if x.is_cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(x)
            if x.is_cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


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
    print(f"{'model':26}{'params':>12}{'batch 1 ms':>12}{'×':>7}{'batch 256 ms':>14}{'×':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for item in args.archs.split(","):
            arch, size = item.split(":")
            size = int(size)
            torch.manual_seed(0)
            theta = root / f"{arch}.safetensors"
            save_weights(
                theta,
                build_model(arch, 10),
                WeightsMeta(arch=arch, num_classes=10, input_size=size),
            )
            dense, _ = load_model(theta)
            models = [(f"{arch} dense", dense)]
            for s in (float(v) for v in args.sparsities.split(",")):
                spec = load_spec("tickets", {"weights": str(theta), "method": "omp",
                                             "pattern": "channel", "sparsities": [s]})  # fmt: skip
                (ticket,) = find_tickets(spec, theta, workdir=root / f"{arch}-{s}")
                out = root / f"{arch}-{s}-export"
                export_ticket(theta, ticket, out, batch=torch.rand(2, 3, size, size))
                slim, _ = load_model(out / "weights.safetensors")
                models.append((f"{arch} channel {s:.0%}", slim))
            base = {}
            for name, model in models:
                model.to(device)
                row = [sum(p.numel() for p in model.parameters())]
                for batch in (1, 256):
                    x = torch.rand(batch, 3, size, size, device=device)
                    row.append(_median_ms(model, x, args.repeats))
                if not base:
                    base = {1: row[1], 256: row[2]}
                print(
                    f"{name:26}{row[0]:>12,}{row[1]:>12.2f}{base[1] / row[1]:>7.2f}"
                    f"{row[2]:>14.1f}{base[256] / row[2]:>7.2f}",
                    flush=True,
                )
                results["channel"].append(  # type: ignore[union-attr]
                    {
                        "model": name,
                        "params": row[0],
                        "batch1_ms": round(row[1], 3),
                        "batch256_ms": round(row[2], 3),
                    }  # fmt: skip
                )
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
