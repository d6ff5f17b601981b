"""Datasets (embedded and real), splits, data fractions and the batch loaders.

``prepare_data(spec, ...)``: the dataset's train (with the data fraction applied), val and
test loaders for a `DataSpec`, and the dataset's `DatasetInfo`; ``stage_data`` is how the
training stages call it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from doublewin.data.imageset import ImageSet
from doublewin.data.loader import BatchLoader, FolderLoader, make_loader
from doublewin.data.registry import (
    DatasetInfo,
    Splits,
    data_root,
    dataset_info,
    describe_datasets,
    list_datasets,
    load_dataset,
)
from doublewin.data.splits import stratified_holdout, take_fraction

# Evaluation batches need no gradient through the weights, so they can be larger. Small images
# get larger ones still, up to EVAL_BATCH_PIXELS pixels (side squared) a batch: at 8×8 a
# test attack's cost is mostly per step, not per image (PGD-10 with early stop on 1,500
# `strokes` images: an ST model's 1.9–2.5 s in batches of 128, 0.8–1.0 s in one batch).
EVAL_BATCH_FACTOR = 2
EVAL_BATCH_PIXELS = 2**17


def eval_batch_size(batch_size: int, resolution: int) -> int:
    """The batch of evaluation loaders for training batches of ``batch_size``."""
    return max(batch_size * EVAL_BATCH_FACTOR, EVAL_BATCH_PIXELS // resolution**2)


def prepare_data(
    spec,
    *,
    resolution_default: int,
    batch_size: int,
    device: torch.device | str = "cpu",
    seed: int = 0,
    root: str | Path | None = None,
) -> tuple[
    BatchLoader | FolderLoader, BatchLoader | FolderLoader, BatchLoader | FolderLoader, DatasetInfo
]:
    """(train, val, test loaders, info) for a `DataSpec`.

    The training split keeps ``spec.fraction`` of its images (``spec.subset``: seeded
    class-balanced, or the first ones), chosen with ``spec.subset_seed`` so every transfer seed
    sees the same subset; ``seed`` drives shuffling and augmentation.
    """
    splits = load_dataset(spec.name, root, val_size=spec.val_size, test_size=spec.test_limit)
    return split_loaders(
        splits,
        spec,
        resolution=int(spec.resolution or resolution_default),
        batch_size=batch_size,
        device=device,
        seed=seed,
    )


def stage_data(
    stage_spec: Any,
    *,
    resolution_default: int,
    device: torch.device | str = "cpu",
    root: str | Path | None = None,
) -> tuple[
    BatchLoader | FolderLoader, BatchLoader | FolderLoader, BatchLoader | FolderLoader, DatasetInfo
]:
    """`prepare_data` as a training stage asks for it (pre-training, tickets, transfer): the
    stage spec's ``data``, its training batch size and its seed."""
    return prepare_data(
        stage_spec.data,
        resolution_default=resolution_default,
        batch_size=stage_spec.train.batch_size,
        device=device,
        seed=stage_spec.seed,
        root=root,
    )


def split_loaders(
    splits: Splits,
    spec,
    *,
    resolution: int,
    batch_size: int,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> tuple[
    BatchLoader | FolderLoader, BatchLoader | FolderLoader, BatchLoader | FolderLoader, DatasetInfo
]:
    """(train, val, test loaders, info) of ``splits`` as a `DataSpec` asks for them (its
    fraction, subset, augmentation, validation share and test limit): `prepare_data` on a
    registry dataset, and the Python API on the caller's tensors."""
    train_set = take_fraction(splits.train, spec.fraction, seed=spec.subset_seed, mode=spec.subset)
    common = {
        "resolution": resolution,
        "device": device,
        "augment": spec.augment,
        "test_transform": spec.test_transform,
    }
    train = make_loader(train_set, batch_size=batch_size, train=True, seed=seed, **common)
    val_set = splits.val
    if spec.val_fraction is not None:
        val_set = take_fraction(val_set, spec.val_fraction, seed=spec.subset_seed, mode=spec.subset)
    eval_batch = eval_batch_size(batch_size, resolution)
    val = make_loader(val_set, batch_size=eval_batch, train=False, seed=seed, **common)
    test_set = first_images(splits.test, spec.test_limit)
    test = make_loader(test_set, batch_size=eval_batch, train=False, seed=seed, **common)
    return train, val, test, splits.info


def first_images(images: ImageSet, limit: int | None) -> ImageSet:
    """The first ``limit`` images of a split (all when None): what ``DataSpec.test_limit``
    keeps of the test split (RobustBench's convention)."""
    if limit is not None and limit < len(images):
        return images.subset(torch.arange(limit))
    return images


def test_split(spec, root: str | Path | None = None) -> tuple[ImageSet, DatasetInfo]:
    """The test images a `DataSpec` is measured on (``test_limit`` applied) and the dataset's
    info."""
    splits = load_dataset(spec.name, root, val_size=spec.val_size, test_size=spec.test_limit)
    return first_images(splits.test, spec.test_limit), splits.info


def training_sample(
    spec,
    *,
    images: int,
    resolution_default: int,
    batch_size: int,
    device: torch.device | str = "cpu",
    seed: int = 0,
    root: str | Path | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A fixed sample of ``images`` training images (of the ``spec.fraction`` subset, drawn with
    ``seed``), unaugmented, as a list of batches on ``device``: the points a loss landscape
    averages its loss over."""
    splits = load_dataset(spec.name, root, val_size=spec.val_size)
    train_set = take_fraction(splits.train, spec.fraction, seed=spec.subset_seed, mode=spec.subset)
    order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(seed))
    sample = train_set.subset(order[: min(images, len(train_set))])
    loader = make_loader(
        sample,
        batch_size=batch_size,
        train=False,
        seed=seed,
        resolution=int(spec.resolution or resolution_default),
        device=device,
        augment="none",
        test_transform=spec.test_transform,
    )
    return [(x.to(device), y.to(device)) for x, y in loader]


__all__ = [
    "BatchLoader",
    "DatasetInfo",
    "FolderLoader",
    "ImageSet",
    "Splits",
    "data_root",
    "dataset_info",
    "eval_batch_size",
    "first_images",
    "describe_datasets",
    "list_datasets",
    "load_dataset",
    "make_loader",
    "training_sample",
    "prepare_data",
    "split_loaders",
    "stage_data",
    "stratified_holdout",
    "take_fraction",
    "test_split",
]
