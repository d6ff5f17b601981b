"""The run store: one directory per stage and spec hash.

``store/<stage>-<hash>/`` holds ``spec.json``, the stage's artifacts, ``metrics.json``,
``log.jsonl`` and, last of all, ``DONE``. Every file is written under a temporary name and
renamed into place, so a killed process never leaves a half-written file under its final
name, and an entry without ``DONE`` is incomplete: the stage runs again in the same directory
(resuming from checkpoints it finds there, or starting over). An entry with ``DONE`` is never
recomputed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doublewin.experiments.hashing import canonical, spec_hash
from doublewin.experiments.typed import to_dict

DONE = "DONE"


def _file_mode() -> int:
    # mkstemp creates files 0600; give them the mode a plain open() would (0666 & ~umask).
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@dataclass
class Entry:
    """One stage's directory in the store."""

    path: Path
    stage: str
    hash: str
    spec: Any

    @property
    def done(self) -> bool:
        return (self.path / DONE).is_file()

    def open(self) -> Path:
        """Create the directory (if needed) and record the spec; returns the directory."""
        self.path.mkdir(parents=True, exist_ok=True)
        spec_file = self.path / "spec.json"
        if not spec_file.is_file():
            atomic_write_json(
                spec_file,
                {
                    "stage": self.stage,
                    "hash": self.hash,
                    "spec": to_dict(self.spec),
                    "canonical": canonical(self.spec),
                },
            )
        return self.path

    def clear(self) -> None:
        """Remove partial work so an incomplete stage starts over."""
        if self.done:
            raise RuntimeError(f"refusing to clear a finished entry: {self.path}")
        for child in self.path.iterdir() if self.path.exists() else ():
            if child.name in ("spec.json", ".lock"):
                continue
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()

    def metrics(self) -> dict[str, Any]:
        """The finished entry's metrics.json ({} when it has none)."""
        path = self.path / "metrics.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def finish(self, metrics: dict[str, Any] | None = None) -> None:
        """Write metrics.json, then DONE. Only call once every artifact is in place."""
        if metrics is not None:
            atomic_write_json(self.path / "metrics.json", metrics)
        atomic_write_text(self.path / DONE, time.strftime("%Y-%m-%dT%H:%M:%S%z") + "\n")

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive lock so two processes never work on the same entry at once."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class Store:
    """Directory of stage entries, addressed by (stage, spec)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def entry(self, stage: str, spec: Any) -> Entry:
        digest = spec_hash(stage, spec)
        return Entry(self.root / f"{stage}-{digest}", stage, digest, spec)

    def get_or_run(
        self,
        stage: str,
        spec: Any,
        compute: Callable[[Entry], dict[str, Any]],
        *,
        resumable: bool = False,
    ) -> Entry:
        """Return the finished entry for ``spec``, computing it first when needed.

        ``compute(entry)`` writes artifacts into ``entry.path`` and returns the metrics. When
        ``resumable`` is False, leftovers of an interrupted earlier attempt are cleared first.
        """
        entry = self.entry(stage, spec)
        if entry.done:
            return entry
        with entry.lock():
            if entry.done:  # another process finished it while we waited
                return entry
            entry.open()
            if not resumable:
                entry.clear()
            metrics = compute(entry)
            entry.finish(metrics)
        return entry

    def entries(self, stage: str | None = None) -> list[Entry]:
        """Every entry on disk (finished or not), optionally of one stage."""
        out = []
        if not self.root.is_dir():
            return out
        for child in sorted(self.root.iterdir()):
            name, sep, digest = child.name.rpartition("-")
            if not sep or not child.is_dir() or (stage and name != stage):
                continue
            spec_file = child / "spec.json"
            spec = json.loads(spec_file.read_text())["spec"] if spec_file.is_file() else None
            out.append(Entry(child, name, digest, spec))
        return out
