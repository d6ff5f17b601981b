"""How flat a trained model's loss is: two measures for the paper's Finding 4.

- `mean_increase`: the mean loss increase over the points of a filter-normalized random plane
  within radius r of its centre (Li et al. 2018's picture, as one number; comparable across
  networks because the directions scale with each filter).
- `top_eigenvalue`: the dominant eigenvalue of the Hessian of the loss with respect to the
  plane parameters, by power iteration on Hessian-vector products (double backward). Pruned
  weights stay out of it: the vector is masked, so it is the Hessian of the sparse subnetwork.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from doublewin.attacks import model_mode
from doublewin.measure.landscape import Batches
from doublewin.measure.trajectory import plane_parameters


def mean_increase(
    values: np.ndarray, coords: np.ndarray, centre_loss: float, radius: float
) -> float:
    """Mean of L(α, β) − L(0, 0) over the grid points with √(α² + β²) ≤ ``radius``."""
    alpha, beta = np.meshgrid(coords, coords, indexing="ij")
    inside = np.hypot(alpha, beta) <= radius + 1e-12
    if not inside.any():
        raise ValueError(f"no grid point lies within radius {radius}")
    return float(np.mean(values[inside] - centre_loss))


@dataclass(frozen=True)
class Eigenvalue:
    """The dominant Hessian eigenvalue, the iterations it took, and the relative change of the
    estimate at the last one (how well it converged)."""

    value: float
    iterations: int
    relative_change: float


def top_eigenvalue(
    model: nn.Module,
    batches: Batches,
    *,
    mask: Mapping[str, torch.Tensor] | None = None,
    iterations: int = 20,
    tolerance: float = 1e-3,
    seed: int = 0,
) -> Eigenvalue:
    """Power iteration for the eigenvalue of largest magnitude of the Hessian of the mean
    cross-entropy over ``batches`` (model in eval mode) with respect to the plane parameters.

    Stops after ``iterations`` or when the estimate changes by less than ``tolerance``
    (relative). The start vector is seeded and the global RNG is left as it was."""
    params = plane_parameters(model)
    names = list(params)
    keep = {
        n: (torch.as_tensor(mask[n]).to(params[n].device) != 0).to(params[n].dtype)
        for n in names
        if mask is not None and n in mask
    }
    generator = torch.Generator().manual_seed(seed)
    vector = [
        torch.randn(params[n].shape, generator=generator).to(params[n]) * keep.get(n, 1.0)
        for n in names
    ]
    vector = _normalized(vector)
    total = sum(int(y.shape[0]) for _, y in batches)
    estimate, change, done = 0.0, float("inf"), 0
    with model_mode(model, "eval"):
        for iteration in range(1, iterations + 1):
            done = iteration
            product = [torch.zeros_like(v) for v in vector]
            for x, y in batches:
                loss = F.cross_entropy(model(x), y, reduction="sum") / total
                grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=True)
                dot = sum((g * v).sum() for g, v in zip(grads, vector, strict=True))
                hv = torch.autograd.grad(dot, [params[n] for n in names])
                product = [p + h.detach() for p, h in zip(product, hv, strict=True)]
            product = [p * keep.get(n, 1.0) for n, p in zip(names, product, strict=True)]
            new = float(sum((p * v).sum() for p, v in zip(product, vector, strict=True)))
            change = abs(new - estimate) / max(abs(new), 1e-12)
            estimate = new
            if _norm(product) == 0.0:
                break
            vector = _normalized(product)
            if change < tolerance:
                break
    return Eigenvalue(estimate, done, change)


def _norm(tensors: Sequence[torch.Tensor]) -> float:
    return float(torch.sqrt(sum((t.double() ** 2).sum() for t in tensors)))


def _normalized(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    norm = _norm(tensors)
    return [t / norm for t in tensors] if norm > 0 else list(tensors)
