"""The caller's own tensors as a dataset (the Python API): ``(inputs, labels)`` tensors or a
torch ``Dataset`` of such pairs, split into train, validation and test like a registry dataset.

Images on the 8-bit grid (uint8, or floats in [0, 1] that are whole multiples of 1/255) become
`Splits` of tensor-backed `ImageSet`s, which `split_loaders` batches, augments and resizes as
it does a registry dataset's: the same data gives the same batches from Python and from the
command line. Other tensors (token ids, floats off the grid) are batched as they are by
`TensorBatches`, without augmentation. Without validation data, a class-stratified tenth of
the training data is held out (``data.val_size`` sets the count), as for a ``folder:`` dataset.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from doublewin.core.errors import UserError
from doublewin.data import EVAL_BATCH_FACTOR
from doublewin.data.imageset import ImageSet
from doublewin.data.registry import DatasetInfo, Splits, default_val_size
from doublewin.data.splits import channel_stats, stratified_holdout

# The dataset name a spec records for data the caller passes as tensors.
TENSORS = "tensors"
Pair = tuple[torch.Tensor, torch.Tensor]


class TensorBatches:
    """(x, y) batches over tensors, reshuffled each epoch from ``seed`` (the engine's loader
    interface: ``len``, ``set_epoch``, ``num_samples``)."""

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, train: bool, seed: int = 0
    ):
        self.x, self.y, self.batch_size, self.train, self.seed = x, y, batch_size, train, seed
        self.epoch = 0
        self.num_samples = len(y)
        self.drop_last = train and self.num_samples % batch_size == 1  # BatchNorm's single image

    def __len__(self) -> int:
        n, b = self.num_samples, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[Pair]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = (
            torch.randperm(self.num_samples, generator=g)
            if self.train
            else torch.arange(self.num_samples)
        )
        for i in range(len(self)):
            index = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield self.x[index], self.y[index]


def tensors(data: Any, name: str = "data") -> Pair:
    """``(inputs, labels)`` from a pair of tensors or a torch Dataset of pairs; uint8 images
    stay uint8 (`floats` turns them into [0, 1])."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(torch.is_tensor(t) for t in data):
        x, y = data
    elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        pairs = [data[i] for i in range(len(data))]
        x = torch.stack([torch.as_tensor(p[0]) for p in pairs])
        y = torch.as_tensor([int(p[1]) for p in pairs])
    else:
        raise UserError(
            f"{name}: pass (inputs, labels) tensors or a torch Dataset of (input, label) pairs"
        )
    if len(x) != len(y):
        raise UserError(f"{name}: {len(x)} inputs but {len(y)} labels; give one label per input")
    return x, y.long()


def floats(x: torch.Tensor) -> torch.Tensor:
    """uint8 images as floats in [0, 1]; anything else as it is."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x


def pixels(x: torch.Tensor) -> torch.Tensor | None:
    """``x`` as uint8 [N, 3, H, W] when it holds images on the 8-bit grid, else None."""
    if x.dim() != 4 or x.shape[1] != 3:
        return None
    if x.dtype == torch.uint8:
        return x
    if not x.is_floating_point():
        return None
    levels = x.double() * 255.0
    whole = levels.round()
    if (levels - whole).abs().max() > 1e-6 or whole.min() < 0 or whole.max() > 255:
        return None
    return whole.to(torch.uint8)


def tensor_splits(
    train: Pair, val: Pair | None, test: Pair, num_classes: int, val_size: int | None = None
) -> tuple[Splits, bool]:
    """The splits of the caller's data and whether they are images on the 8-bit grid
    (tensor-backed `ImageSet`s; otherwise `ImageSet`-like pairs the caller's loaders batch).
    ``val`` None: ``val_size`` (default a tenth) of ``train`` held out, class-stratified."""
    if val is not None and val_size is not None:
        raise UserError(
            "val= and data.val_size both choose the validation images; give one of them"
        )
    if val is None:
        x, y = train
        keep, held = stratified_holdout(y, val_size or default_val_size(None, len(y)), seed=0)
        train, val = (x[keep], y[keep]), (x[held], y[held])
    parts = {"train": train, "val": val, "test": test}
    grid = {key: pixels(x) for key, (x, _) in parts.items()}
    on_grid = all(g is not None for g in grid.values())
    sets = {
        key: ImageSet(y, num_classes, images=grid[key]) if on_grid else _Pairs(floats(x), y)
        for key, (x, y) in parts.items()
    }
    images = sets["train"].images
    mean = std = None
    if images.dim() == 4 and images.shape[1] == 3:
        mean, std = channel_stats(images)
    info = DatasetInfo(
        TENSORS,
        TENSORS,
        num_classes,
        int(images.shape[-1]),
        {key: len(s) for key, s in sets.items()},
        "the caller's tensors",
        mean,
        std,
    )
    return Splits(sets["train"], sets["val"], sets["test"], info), on_grid


class _Pairs:
    """Inputs and labels the loaders cannot hold as images (token ids, floats off the grid)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)


def plain_loaders(
    splits: Splits, batch_size: int, *, seed: int = 0
) -> tuple[TensorBatches, TensorBatches, TensorBatches, DatasetInfo]:
    """(train, val, test loaders, info) of splits that are not images on the 8-bit grid:
    their tensors batched as they are (evaluation in batches of ``EVAL_BATCH_FACTOR`` ×
    ``batch_size``)."""
    evaluation = batch_size * EVAL_BATCH_FACTOR
    return (
        TensorBatches(splits.train.images, splits.train.labels, batch_size, train=True, seed=seed),
        TensorBatches(splits.val.images, splits.val.labels, evaluation, train=False),
        TensorBatches(splits.test.images, splits.test.labels, evaluation, train=False),
        splits.info,
    )
