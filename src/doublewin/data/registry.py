"""The dataset registry: what each dataset is, where its files are, and its train/val/test.

Validation is held out of the training files: CIFAR keeps the first 45,000 training images for
training and the last 5,000 for validation, SVHN the first 68,257 (the official split);
ImageNet holds out a seeded, class-stratified 10,000, a ``folder:`` tree 10%.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from doublewin.core.errors import UserError
from doublewin.core.typed import by_name
from doublewin.data.embedded import extra_test_images, load_embedded
from doublewin.data.imageset import ImageSet
from doublewin.data.printed import NUM_CLASSES as CHARS_CLASSES
from doublewin.data.real import read_cifar, read_folder, read_svhn_mat, same_classes, svhn_file
from doublewin.data.splits import channel_stats, stratified_holdout

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset. ``image_size``: native side in pixels; ``splits``: images per split with the
    default validation split; ``mean``/``std``: per-channel statistics of the training split in
    [0,1] units (None until the embedded set is generated)."""

    name: str
    kind: str  # embedded | real
    num_classes: int
    image_size: int
    splits: dict[str, int]
    description: str
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    files: str = ""  # where the files go, relative to the data root

    def with_stats(self, mean: tuple[float, ...], std: tuple[float, ...]) -> DatasetInfo:
        return dataclasses.replace(self, mean=tuple(mean), std=tuple(std))


# The official code's normalization (dataset.py, main_adv_eval.py): mean, std per channel.
# SVHN's std is not the pixels' std (about 0.198): kept as the official recipe normalizes
# (docs/paper.md).
OFFICIAL_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1201, 0.1231, 0.1052)),
}


def _cifar(classes: int, description: str, files: str) -> DatasetInfo:
    """CIFAR-10 or -100: 32-pixel images, the first 45,000 training images for training and
    the last 5,000 for validation, the official statistics."""
    name = f"cifar{classes}"
    splits = {"train": 45000, "val": 5000, "test": 10000}
    return DatasetInfo(name, "real", classes, 32, splits, description, *OFFICIAL_STATS[name], files)


@dataclass
class Splits:
    train: ImageSet
    val: ImageSet
    test: ImageSet
    info: DatasetInfo


_REGISTRY: dict[str, DatasetInfo] = by_name(
    DatasetInfo(
        "shapes",
        "embedded",
        10,
        32,
        {"train": 10000, "val": 2000, "test": 2000},
        "procedural source task: 10 shape classes on textured backgrounds",
    ),
    DatasetInfo(
        "chars",
        "embedded",
        CHARS_CLASSES,
        8,
        {"train": 20000, "val": 2000, "test": 2000},
        "printed letters and digits (47 classes, 21 faces) in the digits' 8×8 format",
    ),
    DatasetInfo(
        "digits",
        "embedded",
        10,
        8,
        {"train": 1078, "val": 180, "test": 539},
        "scikit-learn's handwritten digits (8×8, 17 grey levels) as RGB",
    ),
    DatasetInfo(
        "strokes",
        "embedded",
        10,
        8,
        {"train": 3000, "val": 500, "test": 2000},
        "handwritten-style digits drawn as pen strokes, in the digits' 8×8 format; a test "
        "split of any size (data.test_limit)",
    ),
    DatasetInfo(
        "textures",
        "embedded",
        10,
        32,
        {"train": 1500, "val": 250, "test": 500},
        "procedural downstream task: gratings, checkerboards, dots, rings, noise",
    ),
    _cifar(10, "CIFAR-10 python batches", "cifar-10-batches-py/"),
    _cifar(100, "CIFAR-100 python batches", "cifar-100-python/"),
    DatasetInfo(
        "svhn",
        "real",
        10,
        32,
        {"train": 68257, "val": 5000, "test": 26032},
        "SVHN cropped digits (.mat)",
        *OFFICIAL_STATS["svhn"],
        "svhn/train_32x32.mat, svhn/test_32x32.mat",
    ),
    DatasetInfo(
        "imagenet",
        "real",
        1000,
        224,
        {"train": 1271167, "val": 10000, "test": 50000},
        "ImageNet ILSVRC-2012 as an ImageFolder tree (val/ is the test split)",
        IMAGENET_MEAN,
        IMAGENET_STD,
        "imagenet/train/<wnid>/, imagenet/val/<wnid>/",
    ),
)


def data_root(root: str | Path | None = None) -> Path:
    """The explicit root, else $DOUBLEWIN_DATA, else ./data."""
    if root:
        return Path(root).expanduser()
    env = os.environ.get("DOUBLEWIN_DATA")
    return Path(env).expanduser() if env else Path("data")


def check_val_size(name: str, val_size: int | None, key: str) -> None:
    """Before anything runs: an explicit ``val_size`` leaves training images of ``name``'s
    files (known for the embedded sets; a real dataset's files are counted when read)."""
    if val_size is None or name.startswith("folder:") or name not in _REGISTRY:
        return
    info = _REGISTRY[name]
    files = info.splits["train"] + info.splits["val"]
    if info.kind == "embedded" and val_size >= files:
        raise UserError(
            f"{key}: {val_size} must be smaller than the {files:,} training images of {name}; "
            f"hold out fewer (e.g. {info.splits['val']})"
        )


def list_datasets() -> list[DatasetInfo]:
    return list(_REGISTRY.values())


def dataset_info(name: str) -> DatasetInfo:
    """Registry entry of ``name``; ``folder:/path`` describes an ImageFolder tree."""
    if name.startswith("folder:"):
        path = name.partition(":")[2]
        return DatasetInfo(
            name,
            "real",
            0,
            224,
            {"train": 0, "val": 0, "test": 0},
            f"ImageFolder tree at {path}",
            IMAGENET_MEAN,
            IMAGENET_STD,
            path,
        )
    if name not in _REGISTRY:
        raise UserError(
            f"unknown dataset {name!r}; known: {', '.join(_REGISTRY)} or "
            "folder:/path/to/imagefolder (doublewin datasets)"
        )
    return _REGISTRY[name]


def _status(info: DatasetInfo, root: Path) -> tuple[str, str]:
    if info.kind == "embedded":
        return "built in", "generated; cache: $DOUBLEWIN_CACHE"
    expected = {
        "cifar10": [
            root / "cifar-10-batches-py" / "data_batch_1",
            root / "cifar-10-batches-py" / "test_batch",
        ],
        "cifar100": [root / "cifar-100-python" / "train", root / "cifar-100-python" / "test"],
        "svhn": [root / "svhn" / "train_32x32.mat", root / "svhn" / "test_32x32.mat"],
        "imagenet": [root / "imagenet" / "train", root / "imagenet" / "val"],
    }[info.name]
    found = all(p.exists() for p in expected)
    if info.name == "svhn" and not found:
        alternative = [root / "train_32x32.mat", root / "test_32x32.mat"]
        if all(p.exists() for p in alternative):
            return "found", str(root)
    return ("found" if found else "missing"), str(expected[0].parent)


def describe_datasets(root: str | Path | None = None) -> list[dict[str, object]]:
    """One dict per dataset for `doublewin datasets`."""
    base = data_root(root)
    rows = []
    for info in list_datasets():
        status, location = _status(info, base)
        rows.append(
            {
                "name": info.name,
                "kind": info.kind,
                "num_classes": info.num_classes,
                "image_size": info.image_size,
                "splits": dict(info.splits),
                "status": status,
                "location": location,
                "description": info.description,
            }
        )
    return rows


def load_dataset(
    name: str,
    root: str | Path | None = None,
    *,
    val_size: int | None = None,
    test_size: int | None = None,
) -> Splits:
    """Train/val/test of ``name``; ``val_size`` overrides the held-out validation size;
    ``test_size`` asks a dataset that renders its images (strokes) for a test split of that
    many (the published ones first); other datasets keep theirs."""
    info = dataset_info(name)
    base = data_root(root)
    if info.kind == "embedded":
        return _embedded(info, val_size, test_size)
    if name in ("cifar10", "cifar100"):
        parts = read_cifar(base, name)
        train_images, train_labels = parts["train"]
        return _tail_split(
            info,
            train_images,
            train_labels,
            *parts["test"],
            # The official 5,000 held out; a small CIFAR-format folder keeps a tenth instead,
            # so a command that never reads validation is not blocked by it.
            val_size or default_val_size(5000, len(train_labels)),
            source=str(base / info.files),
        )
    if name == "svhn":
        train_images, train_labels = read_svhn_mat(svhn_file(base, "train"))
        test = read_svhn_mat(svhn_file(base, "test"))
        default = max(1, len(train_labels) - 68257) if len(train_labels) > 68257 else None
        return _tail_split(
            info,
            train_images,
            train_labels,
            *test,
            val_size or default or max(1, len(train_labels) // 10),
            source=str(base / "svhn"),
        )
    return _folder(info, base, val_size)


def default_val_size(official: int | None, n: int) -> int:
    """The default validation size: ``official`` when the training files leave at least as
    many for training, else a tenth of them (at least one)."""
    if official is not None and 2 * official <= n:
        return official
    return max(1, n // 10)


def _tail_split(
    info: DatasetInfo,
    images: torch.Tensor,
    labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    val_size: int,
    *,
    source: str,
) -> Splits:
    n = len(labels)
    if not 0 < val_size < n:
        raise UserError(
            f"{info.name}: val_size {val_size} must be smaller than the "
            f"{n} training images in {source}"
        )
    k = info.num_classes
    train = ImageSet(labels[: n - val_size], k, images=images[: n - val_size])
    val = ImageSet(labels[n - val_size :], k, images=images[n - val_size :])
    test = ImageSet(test_labels, k, images=test_images)
    sized = dataclasses.replace(
        info, splits={"train": len(train), "val": len(val), "test": len(test)}
    )
    return Splits(train, val, test, sized)


def _embedded(info: DatasetInfo, val_size: int | None, test_size: int | None = None) -> Splits:
    data = dict(load_embedded(info.name))
    more = extra_test_images(info.name, (test_size or 0) - len(data["test_labels"]))
    if more is not None:
        for key, value in more.items():
            data[key] = torch.cat([data[key], value])
    k = info.num_classes
    sets = {
        s: ImageSet(data[f"{s}_labels"].to(torch.int64), k, images=data[f"{s}_images"])
        for s in ("train", "val", "test")
    }
    if val_size is not None:
        # Re-split the training and validation images together with the requested size.
        images = torch.cat([sets["train"].images, sets["val"].images])
        labels = torch.cat([sets["train"].labels, sets["val"].labels])
        keep, held = stratified_holdout(labels, val_size, seed=0)
        sets["train"] = ImageSet(labels[keep], k, images=images[keep])
        sets["val"] = ImageSet(labels[held], k, images=images[held])
    mean, std = channel_stats(sets["train"].images)
    sized = dataclasses.replace(
        info.with_stats(mean, std), splits={s: len(v) for s, v in sets.items()}
    )
    return Splits(sets["train"], sets["val"], sets["test"], sized)


def _folder(info: DatasetInfo, base: Path, val_size: int | None) -> Splits:
    if info.name == "imagenet":
        top, default_val = base / "imagenet", 10000
        test_dir = top / "val"
    else:
        top = Path(info.files).expanduser()
        test_dir = top / "val" if (top / "val").is_dir() else top / "test"
        default_val = None
    classes = same_classes(top / "train", test_dir)
    full = read_folder(top / "train", classes)
    test = read_folder(test_dir, classes)
    count = val_size or default_val_size(default_val, len(full))
    if count >= len(full):
        raise UserError(
            f"{info.name}: val_size {count} must be smaller than the {len(full)} "
            f"training images in {top / 'train'}"
        )
    keep, held = stratified_holdout(full.labels, count, seed=0)
    sized = dataclasses.replace(
        info,
        num_classes=len(classes),
        splits={"train": len(keep), "val": len(held), "test": len(test)},
    )
    return Splits(full.subset(keep), full.subset(held), test, sized)
