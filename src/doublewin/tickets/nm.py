"""N:M tickets: in every group of M consecutive weights along a layer's input dimension, the N
with the highest scores are kept (NVIDIA's 2:4 sparsity is N = 2, M = 4; Mishra et al. 2021).

For a convolution weight [out, in, kh, kw] the groups run along ``in`` for every (out, kh, kw):
the layout of the implicit GEMM that sparse tensor cores read; for a Linear weight [out, in]
along ``in``. The sparsity is 1 − N/M exactly, in every group. A layer whose input size M
does not divide cannot hold the pattern: that is an error naming the layer (exclude it from
the scope, e.g. the 3-channel stem, with ``tickets.scope.exclude``).

IMP reaches N:M gradually: round k keeps M − k of every M (3:4, then 2:4 for 2:4), each round
by the trained weights' magnitudes within the weights the previous round kept, so the ladder
ends exactly at 1 − N/M (`nm_ladder`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from doublewin.core.errors import UserError
from doublewin.core.results import SPARSITY_DIGITS
from doublewin.tickets.mask import Mask


def check_nm(n: int, m: int) -> None:
    if not (1 <= n < m):
        raise UserError(
            f"tickets.nm: [{n}, {m}] keeps {n} of every {m}; use 1 ≤ N < M, e.g. nm: [2, 4]"
        )


def ungroupable(mask: Mask, m: int) -> list[str]:
    """The layers (module names) of ``mask`` whose input size is not a multiple of ``m``."""
    return [name.rsplit(".", 1)[0] for name, t in mask.items() if t.dim() < 2 or t.shape[1] % m]


def check_divides(mask: Mask, m: int) -> None:
    """Every masked layer's input size is a multiple of M, or one line naming the layer."""
    for name, t in mask.items():
        if t.dim() < 2 or t.shape[1] % m:
            size = t.shape[1] if t.dim() >= 2 else t.shape[0]
            raise UserError(
                f"{name}: its input size {size} is not a multiple of M = {m}, so it cannot "
                f"be {m}-grouped; exclude it with tickets.scope.exclude: [{name.rsplit('.', 1)[0]}]"
            )


def nm_ladder(n: int, m: int) -> tuple[float, ...]:
    """The rungs IMP passes on its way to N:M: (M−1):M, …, N:M, as sparsities."""
    return tuple(round(1 - k / m, SPARSITY_DIGITS) for k in range(m - 1, n - 1, -1))


def nm_mask(scores: Mapping[str, torch.Tensor], mask: Mask, n: int, m: int) -> Mask:
    """Keep the ``n`` highest-scoring weights of every group of ``m`` along the input dimension
    (weights ``mask`` already prunes never come back: they score −∞)."""
    check_nm(n, m)
    check_divides(mask, m)
    out = Mask()
    for name, keep in mask.items():
        score = scores[name].detach().float().cpu().masked_fill(~keep.cpu(), float("-inf"))
        grouped = _grouped(score, m)  # [..., groups, m]
        top = grouped.topk(n, dim=-1).indices
        kept = torch.zeros_like(grouped, dtype=torch.bool).scatter_(-1, top, True)
        kept &= torch.isfinite(grouped)
        out[name] = _ungrouped(kept, keep.shape)
    return out


def check_pattern(mask: Mask, n: int, m: int) -> list[str]:
    """What breaks N:M in ``mask``: layers with a group that does not keep exactly ``n``."""
    problems = []
    for name, t in mask.items():
        if t.dim() < 2 or t.shape[1] % m:
            problems.append(f"{name}: input size not a multiple of {m}")
            continue
        counts = _grouped(t.float(), m).sum(-1)
        wrong = int((counts != n).sum())
        if wrong:
            problems.append(f"{name}: {wrong} group(s) of {m} do not keep exactly {n}")
    return problems


def _grouped(t: torch.Tensor, m: int) -> torch.Tensor:
    """[out, in, *k] → [out, *k, in/m, m]: each last row one group along the input dim."""
    moved = t.movedim(1, -1)
    return moved.reshape(*moved.shape[:-1], moved.shape[-1] // m, m)


def _ungrouped(g: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    flat = g.reshape(*g.shape[:-2], g.shape[-2] * g.shape[-1])
    return flat.movedim(-1, 1).reshape(shape)
