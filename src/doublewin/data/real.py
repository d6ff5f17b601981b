"""Readers for the dataset files users already have. Nothing is ever downloaded.

- CIFAR-10 / CIFAR-100: the python pickle batches as distributed (``data`` uint8 [N, 3072],
  row-major RGB planes; ``labels`` / ``fine_labels``). They are pickles, so they are read with
  a restricted unpickler that only builds numpy arrays and plain containers — a file that asks
  for anything else is refused before any of it runs.
- SVHN: ``train_32x32.mat`` / ``test_32x32.mat`` (``X`` [32, 32, 3, N], ``y`` [N, 1] with 10
  meaning the digit 0).
- ImageFolder trees (ImageNet and ``folder:/path``): ``<split>/<class>/<image>``.
Every missing or malformed file is one `UserError` naming the path and what should be there.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from doublewin.core.errors import UserError
from doublewin.core.paths import IMAGE_SUFFIXES
from doublewin.data.imageset import ImageSet

# What a CIFAR batch legitimately needs to be rebuilt (numpy moved `core` to `_core` in 2.0).
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("builtins", "dict"),
    ("builtins", "list"),
    ("builtins", "bytes"),
    ("builtins", "str"),
    ("collections", "OrderedDict"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_cifar_batch(path: Path, label_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images [N,3,32,32], int64 labels [N]) of one CIFAR pickle batch."""
    if not path.is_file():
        raise UserError(
            f"{path} not found; extract the CIFAR python archive "
            "(cifar-10-python.tar.gz / cifar-100-python.tar.gz) under --data-root "
            "(or set DOUBLEWIN_DATA)"
        )
    try:
        with open(path, "rb") as handle:
            batch = _RestrictedUnpickler(io.BytesIO(handle.read()), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        raise UserError(
            f"{path}: not a CIFAR batch ({exc}); a CIFAR file holds only numpy "
            "arrays and lists — replace it with the original file"
        ) from None
    except Exception as exc:
        raise UserError(
            f"{path}: cannot be read as a CIFAR python batch ({type(exc).__name__});"
            " replace it with the original file"
        ) from None
    if not isinstance(batch, dict):
        raise UserError(f"{path}: expected a dict with b'data' and b'{label_key}'")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(label_key.encode(), batch.get(label_key))
    if (
        not isinstance(data, np.ndarray)
        or data.ndim != 2
        or data.shape[1] != 3072
        or labels is None
        or len(labels) != data.shape[0]
    ):
        raise UserError(
            f"{path}: malformed CIFAR batch (need b'data' uint8 [N, 3072] and "
            f"b'{label_key}' of length N); replace it with the original file"
        )
    images = torch.from_numpy(np.ascontiguousarray(data, dtype=np.uint8)).view(-1, 3, 32, 32)
    return images.clone(), torch.as_tensor(np.asarray(labels), dtype=torch.int64)


def read_cifar(root: Path, which: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{"train": ..., "test": ...} of CIFAR-10 (``which`` = cifar10) or CIFAR-100."""
    if which == "cifar10":
        folder = root / "cifar-10-batches-py"
        parts = [read_cifar_batch(folder / f"data_batch_{i}", "labels") for i in range(1, 6)]
        test = read_cifar_batch(folder / "test_batch", "labels")
    else:
        folder = root / "cifar-100-python"
        parts = [read_cifar_batch(folder / "train", "fine_labels")]
        test = read_cifar_batch(folder / "test", "fine_labels")
    train = (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))
    return {"train": train, "test": test}


def svhn_file(root: Path, split: str) -> Path:
    for candidate in (root / "svhn" / f"{split}_32x32.mat", root / f"{split}_32x32.mat"):
        if candidate.is_file():
            return candidate
    raise UserError(
        f"{root / 'svhn' / f'{split}_32x32.mat'} not found; put the SVHN "
        f"{split}_32x32.mat file there (or directly under --data-root)"
    )


def read_svhn_mat(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images [N,3,32,32], int64 labels [N] with 10 → 0) of one SVHN .mat file."""
    # deferred: scipy loads in about 1 s; only SVHN's .mat files need it
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path))
    except Exception as exc:
        raise UserError(
            f"{path}: cannot be read as a MATLAB file ({type(exc).__name__}); "
            "replace it with the original SVHN file"
        ) from None
    x, y = mat.get("X"), mat.get("y")
    if x is None or y is None or x.ndim != 4 or x.shape[:3] != (32, 32, 3) or y.size != x.shape[3]:
        raise UserError(
            f"{path}: malformed SVHN file (need X [32,32,3,N] and y [N,1]); "
            "replace it with the original file"
        )
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1), dtype=np.uint8))
    labels = torch.as_tensor(y.reshape(-1).astype(np.int64))
    labels[labels == 10] = 0
    return images, labels


def read_folder(folder: Path, classes: list[str] | None = None) -> ImageSet:
    """A folder-backed ImageSet of ``folder/<class>/<image>`` (classes sorted by name)."""
    if not folder.is_dir():
        raise UserError(
            f"{folder} not found; an ImageFolder tree needs <split>/<class>/<image> folders"
        )
    names = classes or sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not names:
        raise UserError(f"{folder}: no class folders; expected {folder}/<class>/<image files>")
    paths: list[str] = []
    labels: list[int] = []
    for index, name in enumerate(names):
        directory = folder / name
        if not directory.is_dir():
            continue
        for file in sorted(directory.rglob("*")):
            if file.suffix.lower() in IMAGE_SUFFIXES and file.is_file():
                paths.append(str(file))
                labels.append(index)
    if not paths:
        raise UserError(
            f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) in its class folders"
        )
    return ImageSet(torch.tensor(labels, dtype=torch.int64), len(names), paths=tuple(paths))


def folder_classes(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise UserError(
            f"{folder} not found; an ImageFolder tree needs train/ and val/ (or "
            "test/) with one sub-folder per class"
        )
    return sorted(p.name for p in folder.iterdir() if p.is_dir())
