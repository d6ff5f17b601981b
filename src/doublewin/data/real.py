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

import collections
import functools
import importlib
import io
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from doublewin.core.errors import UserError
from doublewin.core.paths import IMAGE_SUFFIXES
from doublewin.data.imageset import ImageSet


def _numpy(module: str) -> Any:
    """numpy's ``_core.<module>`` (numpy 2), else ``core.<module>`` (numpy 1), imported
    directly: a pickle's old spelling ``numpy.core`` would warn under numpy 2."""
    try:
        return importlib.import_module(f"numpy._core.{module}")
    except ImportError:
        return importlib.import_module(f"numpy.core.{module}")


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as Python 3 pickles bytes at protocols 0-2 (``encode(str,
    'latin1')``), and nothing else: no other codec is looked up."""
    if not isinstance(text, str) or encoding.replace("-", "").lower() != "latin1":
        raise pickle.UnpicklingError(f"refusing _codecs.encode with {encoding!r}")
    return text.encode("latin-1")


@functools.lru_cache(maxsize=1)
def _allowed_globals() -> dict[tuple[str, str], Any]:
    """What a CIFAR batch legitimately needs to be rebuilt, in every form it exists in: the
    original (Python 2, protocol 2), and Python 3's re-saves at protocols 0-5 (bytes through
    ``_codecs.encode`` below protocol 3; arrays through ``_frombuffer`` at protocol 5), under
    numpy 1's and numpy 2's module names. Each name maps to the object itself, so nothing
    else is ever imported."""
    multiarray, numeric = _numpy("multiarray"), _numpy("numeric")
    found: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("builtins", "dict"): dict,
        ("builtins", "list"): list,
        ("builtins", "bytes"): bytes,
        ("builtins", "str"): str,
        ("builtins", "bytearray"): bytearray,
        ("__builtin__", "bytearray"): bytearray,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("_codecs", "encode"): _latin1_encode,
    }
    for core in ("numpy.core", "numpy._core"):
        found[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        found[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        found[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer
    return found


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        allowed = _allowed_globals()
        if (module, name) in allowed:
            return allowed[(module, name)]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_cifar_batch(
    path: Path, label_key: str, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images [N,3,32,32], int64 labels [N] in [0, num_classes)) of one CIFAR pickle
    batch."""
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
    return images.clone(), checked_labels(np.asarray(labels), num_classes, path)


def checked_labels(labels: np.ndarray, num_classes: int, path: Path) -> torch.Tensor:
    """``labels`` as int64, each a class in [0, num_classes), or one UserError naming the
    first that is not (a label of 57 would end training in an index error)."""
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"{path}: labels are not whole numbers; replace it with the original file")
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise UserError(
            f"{path}: label {int(labels[bad[0]])} at position {int(bad[0])} is not a class of "
            f"this dataset (0 … {num_classes - 1}); replace it with the original file"
        )
    return torch.as_tensor(labels, dtype=torch.int64)


def read_cifar(root: Path, which: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{"train": ..., "test": ...} of CIFAR-10 (``which`` = cifar10) or CIFAR-100."""
    if which == "cifar10":
        folder = root / "cifar-10-batches-py"
        parts = [read_cifar_batch(folder / f"data_batch_{i}", "labels", 10) for i in range(1, 6)]
        test = read_cifar_batch(folder / "test_batch", "labels", 10)
    else:
        folder = root / "cifar-100-python"
        parts = [read_cifar_batch(folder / "train", "fine_labels", 100)]
        test = read_cifar_batch(folder / "test", "fine_labels", 100)
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
    labels = y.reshape(-1).astype(np.int64)
    labels[labels == 10] = 0  # SVHN writes the digit 0 as 10
    return images, checked_labels(labels, 10, path)


def read_folder(folder: Path, classes: list[str] | None = None) -> ImageSet:
    """A folder-backed ImageSet of ``folder/<class>/<image>`` (classes sorted by name), read
    by torchvision's ImageFolder rules: a class folder without an image is refused; hidden
    files and folders (``.ipynb_checkpoints``, macOS's ``._x.jpg``) are not images."""
    names = classes or folder_classes(folder)
    if not names:
        raise UserError(f"{folder}: no class folders; expected {folder}/<class>/<image files>")
    paths: list[str] = []
    labels: list[int] = []
    for index, name in enumerate(names):
        directory = folder / name
        found = [
            str(file)
            for file in sorted(directory.rglob("*"))
            if file.suffix.lower() in IMAGE_SUFFIXES
            and file.is_file()
            and not any(part.startswith(".") for part in file.relative_to(directory).parts)
        ]
        if not found:
            raise UserError(
                f"{directory}: a class folder without image files ({', '.join(IMAGE_SUFFIXES)}); "
                "ImageFolder refuses empty classes: add its images or remove the folder"
            )
        paths += found
        labels += [index] * len(found)
    return ImageSet(torch.tensor(labels, dtype=torch.int64), len(names), paths=tuple(paths))


def folder_classes(folder: Path) -> list[str]:
    """The class folders of one split of an ImageFolder tree, sorted by name; hidden folders
    (``.ipynb_checkpoints``, ``.git``) are not classes and are skipped, with a warning."""
    if not folder.is_dir():
        raise UserError(
            f"{folder} not found; an ImageFolder tree needs train/ and val/ (or "
            "test/) with one sub-folder per class"
        )
    found = sorted(p.name for p in folder.iterdir() if p.is_dir())
    hidden = [name for name in found if name.startswith(".")]
    if hidden:
        warnings.warn(
            f"{folder}: hidden folder(s) {', '.join(hidden)} skipped, not classes", stacklevel=2
        )
    return [name for name in found if not name.startswith(".")]


def same_classes(train: Path, test: Path) -> list[str]:
    """The classes of ``train``, which ``test`` must have exactly: a test class missing from
    training would be dropped from the test set, a missing one would leave it untested."""
    classes, tested = folder_classes(train), folder_classes(test)
    extra = sorted(set(tested) - set(classes))
    if extra:
        raise UserError(
            f"{test}: class folder(s) {', '.join(extra)} that {train} does not have, whose "
            "images would be dropped from the test set; remove them or add them to training"
        )
    missing = sorted(set(classes) - set(tested))
    if missing:
        raise UserError(
            f"{test}: no folder for the class(es) {', '.join(missing)} of {train}; the test set "
            "needs the training set's classes"
        )
    return classes
