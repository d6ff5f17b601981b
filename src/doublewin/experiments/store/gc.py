"""`doublewin store gc RUN_DIR`: remove from a run's store what no finished result needs.

Kept: every finished entry's results (spec.json, metrics.json, DONE, the log, the artifacts
later stages read: weights, tickets, grids, and the best checkpoints a transfer was asked to
keep) and the IMP trunks (a longer ladder continues from them). Removed: the resume files of
finished entries (checkpoint.pt, trajectory snapshots, partial grids, IMP round checkpoints)
and unfinished entries nobody is working on (no live lock). ``--dry-run`` lists what would go.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from doublewin.core import paths

# Files and folders of a finished entry that only an unfinished run reads (to resume).
RESUME_FILES = (paths.CHECKPOINT, paths.LANDSCAPE_PARTIAL, paths.LANDSCAPE_SHARPNESS_PARTIAL)
RESUME_FOLDERS = (paths.TRAJECTORY_DIR, paths.TRAIN_DIR)


@dataclass(frozen=True)
class Garbage:
    path: Path
    bytes: int
    why: str


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _locked(entry: Path) -> bool:
    """Whether a live process holds the entry's lock."""
    lock = entry / paths.LOCK
    if not lock.exists():
        return False
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def find_garbage(store: Path) -> list[Garbage]:
    """What `collect` would remove from ``store``."""
    out = []
    for entry in sorted(p for p in store.iterdir() if p.is_dir() and "-" in p.name):
        if entry.name == paths.IMP_TRUNKS_DIR:
            continue
        if (entry / paths.DONE).is_file():
            for name in (*RESUME_FILES, *RESUME_FOLDERS):
                target = entry / name
                if target.exists():
                    out.append(Garbage(target, size_of(target), "resume file of a finished entry"))
        elif not _locked(entry):
            out.append(Garbage(entry, size_of(entry), "unfinished entry no process works on"))
    trunks = store / paths.IMP_TRUNKS_DIR
    for trunk in sorted(trunks.iterdir()) if trunks.is_dir() else ():
        for k in range(1, 1000):
            folder = trunk / paths.imp_round_dir(k)
            if not folder.is_dir():
                break
            checkpoint = folder / paths.CHECKPOINT
            if checkpoint.is_file() and (trunk / paths.rung(k)).is_file():
                # The round's rung is written: its training checkpoint only served a resume.
                out.append(Garbage(checkpoint, size_of(checkpoint), "finished IMP round"))
    return out


def collect(store: Path, *, dry_run: bool = False) -> list[Garbage]:
    garbage = find_garbage(store)
    if not dry_run:
        for item in garbage:
            if item.path.is_dir():
                shutil.rmtree(item.path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(item.path)
    return garbage
