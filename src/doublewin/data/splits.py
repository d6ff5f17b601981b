"""Splits and fractions: validation held out of the training files, the paper's data fractions.

All choices are seeded, so the same seed gives the same images on every machine.
"""

from __future__ import annotations

from typing import Literal

import torch

from doublewin.core.errors import UserError
from doublewin.data.imageset import ImageSet


def stratified_holdout(
    labels: torch.Tensor, count: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept indices, held-out indices): ``count`` held out, class-stratified, seeded."""
    n = len(labels)
    if not 0 < count < n:
        raise UserError(f"val_size {count} must be between 1 and {n - 1} (the training images)")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator)
    held: list[torch.Tensor] = []
    classes = torch.unique(labels)
    shares = {int(c): (labels == c).sum().item() * count / n for c in classes}
    taken = 0
    for c in classes.tolist():
        members = order[labels[order] == c]
        k = min(len(members) - 1, round(shares[c])) if len(members) > 1 else 0
        held.append(members[:k])
        taken += k
    held_index = torch.cat(held) if held else torch.empty(0, dtype=torch.int64)
    if taken < count:  # rounding: top up from the rest in seeded order
        rest = order[~torch.isin(order, held_index)]
        held_index = torch.cat([held_index, _top_up(labels, rest, held_index, count - taken)])
    held_index = held_index[:count]
    keep = torch.ones(n, dtype=torch.bool)
    keep[held_index] = False
    return keep.nonzero().squeeze(1), torch.sort(held_index).values


def _top_up(
    labels: torch.Tensor, rest: torch.Tensor, held: torch.Tensor, wanted: int
) -> torch.Tensor:
    """``wanted`` more of ``rest``, in its order, never the last training image of a class (a
    class of one image would otherwise be left with nothing to train on)."""
    left = {int(c): int((labels == c).sum()) for c in torch.unique(labels)}
    for c in labels[held].tolist():
        left[int(c)] -= 1
    chosen: list[int] = []
    for index in rest.tolist():
        if len(chosen) == wanted:
            break
        c = int(labels[index])
        if left[c] > 1:
            chosen.append(index)
            left[c] -= 1
    if len(chosen) < wanted:
        raise UserError(
            f"val_size {len(held) + wanted}: holding out that many images would leave a class "
            f"without a training image; hold out at most {len(held) + len(chosen)}"
        )
    return torch.tensor(chosen, dtype=torch.int64)


def take_fraction(
    images: ImageSet,
    fraction: float,
    *,
    seed: int = 0,
    mode: Literal["balanced", "first"] = "balanced",
) -> ImageSet:
    """Keep ``fraction`` ∈ (0, 1] of ``images``.

    ``balanced``: each class keeps round(f · n_c) of its images, at least one, chosen by a
    generator seeded with ``seed`` (order kept). ``first``: the first ⌊f·N⌋ images in order
    (at least one), as the official scripts' ``int(N * data_rate)``.
    """
    if not 0.0 < fraction <= 1.0:
        raise UserError(f"data fraction {fraction} is outside (0, 1]; use e.g. 1, 0.1, 0.01")
    if fraction == 1.0:
        return images
    labels = images.labels
    if mode == "first":
        count = max(1, int(fraction * len(labels)))
        return images.subset(torch.arange(count))
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in torch.unique(labels).tolist():
        members = (labels == c).nonzero().squeeze(1)
        k = max(1, int(round(fraction * len(members))))
        pick = torch.randperm(len(members), generator=generator)[:k]
        chosen.append(members[pick])
    return images.subset(torch.sort(torch.cat(chosen)).values)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of images (uint8, or floats in [0,1]), in [0,1] units."""
    sample = images[: min(len(images), 20000)].to(torch.float32)
    if images.dtype == torch.uint8:
        sample = sample / 255.0
    mean = sample.mean(dim=(0, 2, 3))
    std = sample.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return (tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std))
