"""`ImageSet`: the images of one split, either in memory (a uint8 tensor) or on disk (files).

Tensor-backed sets hold ``images`` uint8 [N, 3, H, W] on the CPU (pixels 0–255) and ``labels``
int64 [N]. Folder-backed sets hold ``paths`` (one image file per sample) and ``labels``; the
folder loader decodes them on the fly. Both expose ``len``, ``labels``, ``num_classes`` and
``subset(indices)``, so splits and fractions work the same way on either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True, eq=False)
class ImageSet:
    """One split. Exactly one of ``images`` (uint8 [N,3,H,W]) or ``paths`` (N files) is set."""

    labels: torch.Tensor
    num_classes: int
    images: torch.Tensor | None = None
    paths: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if (self.images is None) == (self.paths is None):
            raise ValueError("an ImageSet holds either images or paths, not both or neither")
        if self.labels.dtype != torch.int64 or self.labels.dim() != 1:
            raise ValueError("labels must be an int64 vector")
        n = len(self.images) if self.images is not None else len(self.paths or ())
        if n != len(self.labels):
            raise ValueError(f"{n} images but {len(self.labels)} labels")
        if self.images is not None and (
            self.images.dtype != torch.uint8 or self.images.dim() != 4 or self.images.shape[1] != 3
        ):
            raise ValueError("images must be uint8 [N, 3, H, W]")

    def __len__(self) -> int:
        return int(self.labels.numel())

    @property
    def samples(self) -> list[tuple[str, int]]:
        """(path, label) pairs of a folder-backed set, in order."""
        if self.paths is None:
            raise ValueError("a tensor-backed ImageSet has no file paths")
        return list(zip(self.paths, self.labels.tolist(), strict=True))

    def subset(self, indices: Sequence[int] | torch.Tensor) -> ImageSet:
        """The images at ``indices``, in that order."""
        index = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
        labels = self.labels[index]
        if self.images is not None:
            return ImageSet(labels, self.num_classes, images=self.images[index])
        paths = self.paths or ()
        return ImageSet(labels, self.num_classes, paths=tuple(paths[i] for i in index.tolist()))

    def fingerprint(self) -> str:
        """16 hex digits of SHA-256 over the labels and the images in order: the pixels of a
        tensor-backed set, the file bytes of a folder-backed one. The same images in the same
        order give the same value wherever they are stored."""
        digest = hashlib.sha256(self.labels.contiguous().numpy().tobytes())
        if self.images is not None:
            digest.update(str(tuple(self.images.shape)).encode())
            digest.update(self.images.contiguous().numpy().tobytes())
        else:
            for path in self.paths or ():
                digest.update(Path(path).read_bytes())
        return digest.hexdigest()[:16]
