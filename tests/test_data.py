"""Datasets: fabricated real-format files load right; fractions; the loader."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from doublewin.core.errors import UserError
from doublewin.data import load_dataset, make_loader, take_fraction
from doublewin.data.imageset import ImageSet


def _cifar_batch(path: Path, n: int, offset: int, label_key: str) -> None:
    data = np.zeros((n, 3072), dtype=np.uint8)
    for i in range(n):
        data[i, :1024] = (offset + i) % 256  # red plane: the image index
        data[i, 1024:2048] = 100  # green plane
        data[i, 2048] = 7  # blue plane, first pixel (row 0, col 0)
    with open(path, "wb") as handle:
        pickle.dump(
            {b"data": data, label_key.encode(): [(offset + i) % 10 for i in range(n)]}, handle
        )


def test_fabricated_cifar10_loads_with_the_official_split_rule(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for b in range(1, 6):
        _cifar_batch(folder / f"data_batch_{b}", 6, (b - 1) * 6, "labels")
    _cifar_batch(folder / "test_batch", 5, 200, "labels")
    splits = load_dataset("cifar10", tmp_path, val_size=4)
    assert splits.train.images.shape == (26, 3, 32, 32)
    assert splits.val.labels.tolist() == [26 % 10, 27 % 10, 28 % 10, 29 % 10]  # the last ones
    image = splits.train.images[3]
    assert int(image[0, 5, 5]) == 3 and int(image[1, 0, 0]) == 100
    assert int(image[2, 0, 0]) == 7 and int(image[2, 0, 1]) == 0  # row-major planes
    assert splits.test.labels.tolist() == [0, 1, 2, 3, 4]


def test_fabricated_cifar100_uses_fine_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    _cifar_batch(folder / "train", 12, 0, "fine_labels")
    _cifar_batch(folder / "test", 4, 0, "fine_labels")
    splits = load_dataset("cifar100", tmp_path, val_size=2)
    assert len(splits.train) == 10 and splits.info.num_classes == 100


def test_fabricated_svhn_maps_label_10_to_0(tmp_path: Path) -> None:
    from scipy.io import savemat

    (tmp_path / "svhn").mkdir()
    for split, n in (("train", 12), ("test", 4)):
        x = np.zeros((32, 32, 3, n), dtype=np.uint8)
        x[0, 1, 2, :] = 9  # row 0, col 1, blue channel
        y = np.array([[10 if i % 2 == 0 else i % 10] for i in range(n)], dtype=np.uint8)
        savemat(tmp_path / "svhn" / f"{split}_32x32.mat", {"X": x, "y": y})
    splits = load_dataset("svhn", tmp_path, val_size=2)
    assert splits.train.images.shape == (10, 3, 32, 32)
    assert int(splits.train.images[0, 2, 0, 1]) == 9
    assert splits.train.labels.tolist()[:4] == [0, 1, 0, 3]


def test_imagefolder_tree_loads_through_the_folder_loader(tmp_path: Path) -> None:
    from PIL import Image

    for split, per_class in (("train", 6), ("val", 2)):
        for c in ("cat", "dog"):
            d = tmp_path / "tree" / split / c
            d.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(
                    np.full((20, 24, 3), 50 if c == "cat" else 200, dtype=np.uint8)
                ).save(d / f"{i}.png")
    splits = load_dataset(f"folder:{tmp_path / 'tree'}", val_size=2)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (10, 2, 4)
    loader = make_loader(
        splits.test,
        batch_size=4,
        train=False,
        resolution=16,
        test_transform="resize-center-crop",
        workers=0,
    )
    x, y = next(iter(loader))
    assert x.shape == (4, 3, 16, 16) and sorted(y.tolist()) == [0, 0, 1, 1]


def test_missing_and_malformed_files_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="data_batch_1 not found"):
        load_dataset("cifar10", tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(b"garbage")
    with pytest.raises(UserError, match="data_batch_1"):
        load_dataset("cifar10", tmp_path)


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_cifar_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "ran"
    with open(folder / "data_batch_1", "wb") as handle:
        pickle.dump({b"data": _Evil(marker), b"labels": []}, handle)
    with pytest.raises(UserError, match="data_batch_1"):
        load_dataset("cifar10", tmp_path)
    assert not marker.exists()


def _labelled(n_per_class: list[int]) -> ImageSet:
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(n_per_class)])
    return ImageSet(
        labels, len(n_per_class), images=torch.zeros(len(labels), 3, 4, 4, dtype=torch.uint8)
    )


def test_fractions_are_class_balanced_reproducible_and_seeded() -> None:
    images = _labelled([100, 50, 3])
    a = take_fraction(images, 0.1, seed=0)
    assert torch.bincount(a.labels).tolist() == [10, 5, 1]  # every class keeps one
    assert torch.equal(a.labels, take_fraction(images, 0.1, seed=0).labels)
    b_idx = take_fraction(
        ImageSet(
            torch.arange(153) % 3,
            3,
            images=torch.arange(153).view(-1, 1, 1, 1).expand(-1, 3, 1, 1).to(torch.uint8),
        ),
        0.5,
        seed=1,
    )
    c_idx = take_fraction(
        ImageSet(
            torch.arange(153) % 3,
            3,
            images=torch.arange(153).view(-1, 1, 1, 1).expand(-1, 3, 1, 1).to(torch.uint8),
        ),
        0.5,
        seed=2,
    )
    assert not torch.equal(b_idx.images, c_idx.images)
    assert len(take_fraction(images, 0.1, mode="first")) == 15
    for bad in (0.0, 1.5):
        with pytest.raises(UserError, match="fraction"):
            take_fraction(images, bad)


def test_the_loader_is_deterministic_per_seed_and_epoch_and_in_range() -> None:
    g = torch.Generator().manual_seed(0)
    images = ImageSet(
        torch.arange(40) % 4,
        4,
        images=torch.randint(0, 256, (40, 3, 32, 32), generator=g, dtype=torch.uint8),
    )
    loader = make_loader(images, batch_size=16, train=True, resolution=16, seed=3)
    first = [x for x, _ in loader]
    again = [x for x, _ in loader]
    loader.set_epoch(1)
    other = [x for x, _ in loader]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])
    assert first[0].shape == (16, 3, 16, 16) and 0 <= first[0].min() <= first[0].max() <= 1
    rrc = make_loader(images, batch_size=8, train=True, resolution=24, augment="rrc-flip")
    assert next(iter(rrc))[0].shape == (8, 3, 24, 24)


def test_crop_shifts_but_never_mirrors_while_crop_flip_mirrors_about_half() -> None:
    # A left-to-right ramp: mirrored, its right third is darker than its left third.
    ramp = torch.linspace(0, 255, 32).round().to(torch.uint8).expand(64, 3, 32, 32).clone()
    images = ImageSet(torch.zeros(64, dtype=torch.long), 1, images=ramp)

    def mirrored(augment: str) -> float:
        loader = make_loader(
            images, batch_size=64, train=True, resolution=32, augment=augment, seed=0
        )
        x = next(iter(loader))[0]
        return (
            (x[..., :10].mean(dim=(1, 2, 3)) > x[..., 22:].mean(dim=(1, 2, 3)))
            .float()
            .mean()
            .item()
        )

    shifted = next(
        iter(make_loader(images, batch_size=64, train=True, resolution=32, augment="crop", seed=0))
    )[0]
    assert (shifted != ramp.float() / 255).flatten(1).any(dim=1).float().mean() > 0.5
    assert mirrored("crop") == 0.0
    assert 0.25 < mirrored("crop-flip") < 0.75


def test_chars_are_printed_glyphs_in_the_format_of_the_handwritten_digits() -> None:
    from doublewin.data import load_dataset
    from doublewin.data.printed import CLASS_CHARS, NUM_CLASSES, render_chars

    # EMNIST-balanced's 47 classes: 10 digits, 26 capitals, 11 lower-case letters.
    assert NUM_CLASSES == 47 and CLASS_CHARS[12] == "Cc" and CLASS_CHARS[-1] == "t"
    chars, digits = load_dataset("chars"), load_dataset("digits")
    assert [len(chars.train), len(chars.val), len(chars.test)] == [20000, 2000, 2000]
    assert chars.info.num_classes == 47 and chars.info.image_size == 8
    assert chars.train.images.shape[1:] == digits.train.images.shape[1:] == (3, 8, 8)
    # 17 grey levels (a count of 0–16 ink pixels per 4×4 block), grey in all three channels.
    levels = {round(v * 16 / 255) * 255 / 16 for v in chars.train.images.unique().tolist()}
    assert {round(v) for v in levels} == set(chars.train.images.unique().tolist())
    assert len(levels) == 17
    assert torch.equal(chars.train.images[:, 0], chars.train.images[:, 2])
    assert chars.train.labels.bincount(minlength=47).min() >= 20000 // 47
    # The same seed gives the same bytes; another seed other images.
    a, b = render_chars(64, seed=5), render_chars(64, seed=5)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], render_chars(64, seed=6)[0])
