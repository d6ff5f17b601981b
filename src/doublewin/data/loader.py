"""Batches of (x, y): pixels float32 [B,3,R,R] in [0,1] and labels int64 [B], on the device.

Tensor-backed sets are moved to the device once as uint8; each batch is gathered, converted
and augmented as batched tensor work (no per-image Python, no host sync on CUDA). Folder-backed
sets go through a torch DataLoader with worker processes, PIL decoding and per-image
transforms, and yield the same format. Shuffling and augmentation draw from generators seeded
by (seed, epoch), so every epoch is reproducible and a resumed run sees the same batches.

Augmentations (training): ``none``; ``flip`` (horizontal); ``crop`` (pad 4 px at 32 px
native — scaled with the native size — random crop back to native; no flip, for digits and
other classes a mirror changes); ``crop-flip`` (``crop``, then flip), ``rrc-flip``
(RandomResizedCrop, scale 0.08–1, ratio 3/4–4/3, + flip). Every training image is then resized
to the model's resolution R (bilinear). Test transforms: ``resize`` (bilinear to R) or
``resize-center-crop`` (Resize(256/224·R) + CenterCrop(R), the ImageNet convention).
"""

from __future__ import annotations

import abc
import math
import os
import random
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from doublewin.core.errors import UserError
from doublewin.data.imageset import ImageSet

AUGMENTATIONS = ("none", "flip", "crop", "crop-flip", "rrc-flip")
TEST_TRANSFORMS = ("resize", "resize-center-crop")


def _generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch * 7919) % (2**63 - 1))


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(
        x, size=(size, size), mode="bilinear", align_corners=False, antialias=x.shape[-1] > size
    )


def center_crop_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize(256/224·R) then CenterCrop(R)."""
    outer = int(round(size * 256 / 224))
    x = resize(x, outer)
    top = (outer - size) // 2
    return x[..., top : top + size, top : top + size]


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``pad`` and cut a random native-size window per image (batched gather)."""
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    rows = (oy[:, None] + torch.arange(h, device=x.device)).view(b, 1, h, 1)
    cols = (ox[:, None] + torch.arange(w, device=x.device)).view(b, 1, 1, w)
    padded = padded.gather(2, rows.expand(b, c, h, w + 2 * pad))
    return padded.gather(3, cols.expand(b, c, h, w))


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device)
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def random_resized_crop(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Per-image RandomResizedCrop boxes cut and resized in one roi_align call."""
    # deferred: torchvision imports torch._dynamo (about 2 s); only rrc-flip needs it
    from torchvision.ops import roi_align

    b, _, h, w = x.shape
    area = h * w * (0.08 + 0.92 * torch.rand(b, generator=generator))
    log_ratio = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * torch.rand(
        b, generator=generator
    )
    ratio = torch.exp(log_ratio)
    bw = torch.sqrt(area * ratio).clamp(max=w)
    bh = torch.sqrt(area / ratio).clamp(max=h)
    x0 = (w - bw) * torch.rand(b, generator=generator)
    y0 = (h - bh) * torch.rand(b, generator=generator)
    boxes = torch.stack([torch.arange(b, dtype=torch.float32), x0, y0, x0 + bw, y0 + bh], 1)
    return roi_align(
        x,
        boxes.to(x.device, x.dtype),
        output_size=(size, size),
        spatial_scale=1.0,
        sampling_ratio=2,
        aligned=True,
    )


class _Loader(abc.ABC):
    """What both loaders check and keep: the options of one split's batches, their count,
    and the epoch that seeds shuffling and augmentation. ``workers``: the folder loader's
    worker processes (default: up to 8)."""

    def __init__(
        self,
        images: ImageSet,
        *,
        batch_size: int,
        train: bool,
        resolution: int,
        augment: str = "crop-flip",
        test_transform: str = "resize",
        device: torch.device | str = "cpu",
        seed: int = 0,
        drop_last: bool | None = None,
        workers: int | None = None,
    ):
        if augment not in AUGMENTATIONS:
            raise UserError(f"augment {augment!r}: use one of {', '.join(AUGMENTATIONS)}")
        if test_transform not in TEST_TRANSFORMS:
            raise UserError(
                f"test_transform {test_transform!r}: use one of {', '.join(TEST_TRANSFORMS)}"
            )
        if batch_size < 1:
            raise UserError(f"batch_size must be at least 1, got {batch_size}")
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.train = train
        self.resolution = int(resolution)
        self.augment = augment
        self.test_transform = test_transform
        self.seed = seed
        self.epoch = 0
        self.num_samples = len(images)
        self.drop_last = self._drops_last() if drop_last is None else drop_last
        self._hold(images, workers)

    @abc.abstractmethod
    def _hold(self, images: ImageSet, workers: int | None) -> None:
        """Keep what the batches are read from (each loader its own kind of set)."""

    def _drops_last(self) -> bool:
        """Whether a short last batch is dropped when the caller does not say."""
        return self.train

    def __len__(self) -> int:
        n, b = self.num_samples, self.batch_size
        return n // b if self.drop_last else math.ceil(n / b)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


class BatchLoader(_Loader):
    """Iterable of (x, y) batches over a tensor-backed ImageSet, resident on ``device``."""

    def _hold(self, images: ImageSet, workers: int | None) -> None:
        if images.images is None:
            raise ValueError("BatchLoader needs a tensor-backed ImageSet")
        self.images = images.images.to(self.device)
        self.labels = images.labels.to(self.device)

    def _drops_last(self) -> bool:
        # A last training batch of one image would break BatchNorm: drop it then.
        return self.train and self.num_samples % self.batch_size == 1

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = _generator(self.seed, self.epoch)
        n = self.num_samples
        if self.train:
            order = torch.randperm(n, generator=generator).to(self.device)
        else:
            order = torch.arange(n, device=self.device)
        for i in range(len(self)):
            index = order[i * self.batch_size : (i + 1) * self.batch_size]
            x = self.images.index_select(0, index).float().div_(255.0)
            yield self._transform(x, generator), self.labels.index_select(0, index)

    def _transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        size = self.resolution
        if not self.train:
            if self.test_transform == "resize-center-crop":
                return center_crop_resize(x, size)
            return resize(x, size)
        if self.augment == "rrc-flip":
            return random_flip(random_resized_crop(x, size, generator), generator)
        if self.augment in ("crop", "crop-flip"):
            pad = max(1, round(4 * x.shape[-1] / 32))
            x = random_crop(x, pad, generator)
        if self.augment in ("crop-flip", "flip"):
            x = random_flip(x, generator)
        return resize(x, size)


class FolderLoader(_Loader):
    """Iterable of (x, y) over a folder-backed ImageSet through a DataLoader with workers."""

    def _hold(self, images: ImageSet, workers: int | None) -> None:
        transform = _pil_transform(self.train, self.resolution, self.augment, self.test_transform)
        self.dataset = _FolderDataset(images, transform)
        self.workers = workers if workers is not None else min(8, os.cpu_count() or 1)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = _generator(self.seed, self.epoch)
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            shuffle=self.train,
            generator=generator,
            num_workers=self.workers,
            drop_last=self.drop_last,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            worker_init_fn=_seed_worker,
        )
        try:
            for x, y in loader:
                yield (x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True))
        except UserError as exc:
            # From a worker process the message carries the worker's traceback: keep its own
            # last line (the image it could not read).
            raise UserError(_original_message(str(exc))) from None


def _original_message(text: str) -> str:
    marker = f"{UserError.__module__}.{UserError.__name__}: "
    lines = [line for line in text.splitlines() if line.startswith(marker)]
    return lines[-1][len(marker) :] if lines else text.strip().splitlines()[-1]


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    random.seed(seed)


class _FolderDataset(Dataset):
    def __init__(self, images: ImageSet, transform):
        self.samples = images.samples
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        # deferred: PIL (with torchvision's transforms below) only serves image folders
        from PIL import Image

        path, label = self.samples[index]
        try:
            with Image.open(path) as image:
                return self.transform(image.convert("RGB")), label
        except (OSError, ValueError) as exc:  # PIL's UnidentifiedImageError is an OSError
            raise UserError(
                f"{path}: not a readable image ({str(exc).splitlines()[0][:100]}); remove or "
                "replace it"
            ) from None


def _pil_transform(train: bool, resolution: int, augment: str, test_transform: str):
    # deferred: torchvision imports torch._dynamo (about 2 s); only image folders need it
    from torchvision import transforms as T

    if train:
        if augment == "rrc-flip":
            steps = [T.RandomResizedCrop(resolution), T.RandomHorizontalFlip()]
        else:
            steps = [T.Resize(resolution), T.CenterCrop(resolution)]
            if augment in ("crop", "crop-flip"):
                pad = max(1, round(4 * resolution / 32))
                steps.append(T.RandomCrop(resolution, padding=pad))
            if augment in ("crop-flip", "flip"):
                steps.append(T.RandomHorizontalFlip())
    elif test_transform == "resize-center-crop":
        steps = [T.Resize(int(round(resolution * 256 / 224))), T.CenterCrop(resolution)]
    else:
        steps = [T.Resize((resolution, resolution))]
    return T.Compose([*steps, T.ToTensor()])


def make_loader(images: ImageSet, **options: Any) -> BatchLoader | FolderLoader:
    """The loader for ``images`` (``options``: those of the loaders, `_Loader`):
    device-resident batches for tensors, a DataLoader for files."""
    kind = BatchLoader if images.images is not None else FolderLoader
    return kind(images, **options)
