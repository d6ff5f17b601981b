"""Loss landscapes on a 2-D plane through trained weights (Li et al. 2018; the paper's Figure 6).

A plane is the centre θ* and two directions d1, d2 over the plane parameters (weights with
more than one dimension; `trajectory.plane_parameters`). The loss is evaluated at
θ* + α d1 + β d2 on a grid of (α, β) in [-r, r]², on a fixed set of batches, with the model in
eval mode (BatchNorm statistics stay those of θ*). Directions never move a pruned weight: a
ticket's landscape is the landscape of its sparse subnetwork.

- ``random``: filter-normalized Gaussian directions: each filter (a slice along the first
  dimension: a convolution's output channel, a linear layer's output row) of d is rescaled to
  the norm of the same filter of θ*, which makes planes of differently scaled networks
  comparable.
- ``pca``: the top two principal directions of the trajectory θ_t − θ* (centred, as
  scikit-learn's PCA that Li et al. use), unit length.

The trajectory is projected onto the plane by least squares.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from doublewin.attacks import PGD, model_mode
from doublewin.core.atomic import atomic_path
from doublewin.core.specs import AttackSpec
from doublewin.measure.trajectory import flatten, plane_parameters

PlaneKind = Literal["random", "pca"]
Batches = Sequence[tuple[torch.Tensor, torch.Tensor]]
_TINY = 1e-12


@dataclass(frozen=True)
class Plane:
    """θ* + α d1 + β d2 over the parameters ``names`` (float64 CPU tensors)."""

    kind: str
    names: tuple[str, ...]
    centre: Mapping[str, torch.Tensor]
    d1: Mapping[str, torch.Tensor]
    d2: Mapping[str, torch.Tensor]

    def point(self, alpha: float, beta: float) -> dict[str, torch.Tensor]:
        return {n: self.centre[n] + alpha * self.d1[n] + beta * self.d2[n] for n in self.names}

    def project(self, weights: Mapping[str, torch.Tensor]) -> tuple[float, float]:
        """(α, β) of the point of the plane nearest ``weights`` (least squares)."""
        names = list(self.names)
        a, b = flatten(self.d1, names), flatten(self.d2, names)
        r = flatten(weights, names) - flatten(self.centre, names)
        gram = torch.tensor([[a @ a, a @ b], [a @ b, b @ b]], dtype=torch.float64)
        rhs = torch.tensor([a @ r, b @ r], dtype=torch.float64)
        alpha, beta = torch.linalg.lstsq(gram, rhs.unsqueeze(1)).solution.squeeze(1).tolist()
        return float(alpha), float(beta)


def centre_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().double().cpu().clone() for n, p in plane_parameters(model).items()}


def filter_normalized(
    centre: Mapping[str, torch.Tensor],
    mask: Mapping[str, torch.Tensor] | None,
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """A Gaussian direction with each filter rescaled to the norm of θ*'s filter; pruned
    entries (mask 0) are zero, and a filter of θ* that is all zero gets a zero direction."""
    out = {}
    for name, w in centre.items():
        d = torch.randn(w.shape, generator=generator, dtype=torch.float64)
        if mask is not None and name in mask:
            d = d * (torch.as_tensor(mask[name]).cpu() != 0)
        d_norm = d.reshape(d.shape[0], -1).norm(dim=1)
        w_norm = w.reshape(w.shape[0], -1).norm(dim=1)
        scale = torch.where(d_norm > _TINY, w_norm / d_norm.clamp_min(_TINY), 0.0)
        out[name] = d * scale.view(-1, *([1] * (d.dim() - 1)))
    return out


def random_plane(model: nn.Module, mask: Mapping[str, torch.Tensor] | None, seed: int) -> Plane:
    """The filter-normalized random plane through ``model``'s weights (seeded)."""
    centre = centre_of(model)
    generator = torch.Generator().manual_seed(seed)
    d1 = filter_normalized(centre, mask, generator)
    d2 = filter_normalized(centre, mask, generator)
    return Plane("random", tuple(centre), centre, d1, d2)


def pca_plane(model: nn.Module, snapshots: Sequence[Mapping[str, torch.Tensor]]) -> Plane:
    """The plane of the top two principal directions of ``snapshots`` − θ* (centred rows).

    Computed through the Gram matrix of the T snapshots, so memory is T × parameters."""
    centre = centre_of(model)
    names = list(centre)
    base = flatten(centre, names)
    rows = torch.stack([flatten(s, names) - base for s in snapshots])
    if rows.shape[0] < 3:
        raise ValueError("the pca plane needs at least 3 trajectory snapshots")
    rows = rows - rows.mean(0, keepdim=True)
    values, vectors = torch.linalg.eigh(rows @ rows.T)
    directions = []
    for k in (-1, -2):  # eigh sorts ascending
        v = rows.T @ vectors[:, k]
        directions.append(v / v.norm().clamp_min(_TINY))
    return Plane("pca", tuple(names), centre, *(_unflatten(d, centre) for d in directions))


def _unflatten(vector: torch.Tensor, like: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out, offset = {}, 0
    for name, t in like.items():
        out[name] = vector[offset : offset + t.numel()].reshape(t.shape).clone()
        offset += t.numel()
    return out


def axis(grid: int, radius: float) -> np.ndarray:
    """The grid's coordinates along one direction: ``grid`` points from −r to r."""
    return np.linspace(-radius, radius, grid)


def mean_loss(model: nn.Module, batches: Batches) -> float:
    """Mean cross-entropy of ``model`` (eval mode) over ``batches``."""
    total, n = 0.0, 0
    with model_mode(model, "eval"), torch.no_grad():
        for x, y in batches:
            total += float(F.cross_entropy(model(x), y, reduction="sum"))
            n += int(y.shape[0])
    return total / max(1, n)


class LossSurface:
    """Evaluates the loss at points of ``plane`` for ``model`` on ``batches``.

    ``attack`` None: the clean loss, ``chunk`` grid points at a time under ``torch.func.vmap``
    (one batched forward per chunk and batch of images). With an attack: the adversarial loss,
    a PGD attack (eval-mode BatchNorm) against each point's weights, its random start seeded
    by ``seed`` and the point's index, so a point's value does not depend on which points were
    computed before it.
    """

    def __init__(
        self,
        model: nn.Module,
        plane: Plane,
        batches: Batches,
        *,
        attack: AttackSpec | None = None,
        chunk: int = 8,
        seed: int = 0,
    ):
        self.model, self.plane, self.batches = model, plane, batches
        self.attack = PGD.from_spec(attack, bn_mode="eval") if attack is not None else None
        self.chunk, self.seed = max(1, chunk), seed
        parameter = next(model.parameters())
        self.device, self.dtype = parameter.device, parameter.dtype
        self.fixed = {
            n: t.detach()
            for n, t in [*model.named_parameters(), *model.named_buffers()]
            if n not in plane.names
        }

    def _weights(self, alpha: float, beta: float) -> dict[str, torch.Tensor]:
        return {n: t.to(self.device, self.dtype) for n, t in self.plane.point(alpha, beta).items()}

    def losses(self, points: Sequence[tuple[float, float]], first_index: int = 0) -> list[float]:
        """The loss at each (α, β) of ``points`` (``first_index``: the grid index of the first,
        for the attack's seeds)."""
        if self.attack is not None:
            return [self._adversarial(p, first_index + i) for i, p in enumerate(points)]
        out: list[float] = []
        for start in range(0, len(points), self.chunk):
            out += self._clean(points[start : start + self.chunk])
        return out

    def _clean(self, points: Sequence[tuple[float, float]]) -> list[float]:
        stacked = [self._weights(a, b) for a, b in points]
        params = {n: torch.stack([s[n] for s in stacked]) for n in self.plane.names}

        def loss(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            logits = functional_call(self.model, {**self.fixed, **p}, (x,))
            return F.cross_entropy(logits, y, reduction="sum")

        totals = torch.zeros(len(points), dtype=torch.float64)
        n = 0
        with model_mode(self.model, "eval"), torch.no_grad():
            for x, y in self.batches:
                totals += vmap(loss, in_dims=(0, None, None))(params, x, y).double().cpu()
                n += int(y.shape[0])
        return (totals / max(1, n)).tolist()

    def _adversarial(self, point: tuple[float, float], index: int) -> float:
        assert self.attack is not None
        weights = self._weights(*point)
        saved = {n: p.detach().clone() for n, p in plane_parameters(self.model).items()}
        total, n = 0.0, 0
        try:
            _load(self.model, weights)
            with torch.random.fork_rng(devices=[]), model_mode(self.model, "eval"):
                torch.manual_seed(self.seed * 1_000_003 + index)
                for x, y in self.batches:
                    x_adv = self.attack(self.model, x, y)
                    with torch.no_grad():
                        total += float(F.cross_entropy(self.model(x_adv), y, reduction="sum"))
                    n += int(y.shape[0])
        finally:
            _load(self.model, saved)
        return total / max(1, n)


@torch.no_grad()
def _load(model: nn.Module, weights: Mapping[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    for name, value in weights.items():
        params[name].copy_(value)


def loss_grid(
    surface: LossSurface,
    coords: np.ndarray,
    *,
    partial: Path | None = None,
    identity: str = "",
    on_row: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """The loss on the grid ``coords`` × ``coords`` (row i: α = coords[i]).

    With ``partial``, every finished row is saved there (atomically) and a later call with the
    same ``identity`` starts after the last saved row, so an interrupted grid resumes where it
    stopped and gives the same values. ``on_row(done, total)`` reports progress."""
    n = len(coords)
    values = np.full((n, n), np.nan)
    done = 0
    if partial is not None and partial.is_file():
        with np.load(partial) as saved:
            if str(saved["identity"]) == identity and saved["values"].shape == values.shape:
                values = saved["values"].copy()
                done = int(saved["rows_done"])
    for i in range(done, n):
        points = [(float(coords[i]), float(b)) for b in coords]
        values[i] = surface.losses(points, first_index=i * n)
        if partial is not None:
            _save_partial(partial, values, i + 1, identity)
        if on_row is not None:
            on_row(i + 1, n)
    return values


def _save_partial(path: Path, values: np.ndarray, rows: int, identity: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, values=values, rows_done=rows, identity=np.array(identity))


def remove_partial(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
