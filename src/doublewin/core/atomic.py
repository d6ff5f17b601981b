"""Atomic file writes: a temporary name in the same folder, then a rename.

A killed process never leaves a half-written file under its final name, so a reader sees the
old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _file_mode() -> int:
    # mkstemp creates files 0600; give them the mode a plain open() would (0666 & ~umask).
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()
TEMPORARY_SUFFIX = ".tmp"


def _temporary(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    os.fchmod(fd, FILE_MODE)
    return fd, tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename."""
    path = Path(path)
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed to ``path``.

    For writers that want a file name (safetensors, torch.save, matplotlib)."""
    path = Path(path)
    fd, tmp = _temporary(path)
    os.close(fd)
    try:
        yield Path(tmp)
        # The writer may have made the file anew (safetensors does, 0600): the mode a plain
        # open() gives, so colleagues on a shared machine can read it.
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


PARTIAL_SUFFIX = ".partial"


@contextlib.contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """Yield ``<path>.partial``, an empty folder to write into; on success it replaces
    ``path``, on any failure it is removed. A folder written this way is whole or absent."""
    path = Path(path)
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if path.exists():
        shutil.rmtree(path)
    partial.rename(path)
