"""Output paths of the commands: checked before any compute, and never left half-made.

`check_writable` fails at once, with one line, where an output cannot be written (a file
where a folder is wanted or the other way round, a read-only filesystem, no permission), so
no command trains for an hour and then fails to save. `output_folder` creates a command's
output folder and removes it again when the command fails with an error and the folder is
new: a failed command leaves nothing behind. An interrupted one (Ctrl-C, SIGTERM) keeps its
folder, which is how it resumes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from doublewin.core.errors import DoublewinError, UserError


def check_writable(path: Path, *, folder: bool, option: str = "--out") -> None:
    """Raise a one-line `UserError` unless ``path`` can be written as a folder (``folder``)
    or a file."""
    try:
        _check_writable(path, folder=folder, option=option)
    except OSError as exc:  # a name over the filesystem's limit, a path the system refuses
        reason = exc.strerror or type(exc).__name__
        raise UserError(f"{option} {path}: {reason}; choose a shorter or writable path") from None


def _check_writable(path: Path, *, folder: bool, option: str) -> None:
    if folder and path.exists() and not path.is_dir():
        raise UserError(f"{option} {path}: a file is there, not a folder; pass a folder path")
    if not folder and path.is_dir():
        raise UserError(f"{option} {path}: a folder is there; pass a file path inside it")
    probe_in = path if folder and path.is_dir() else _nearest_existing_parent(path)
    if not probe_in.is_dir():
        raise UserError(f"{option} {path}: {probe_in} is not a folder; pass a writable path")
    try:
        fd, name = tempfile.mkstemp(prefix=".doublewin-write-check-", dir=probe_in)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(
            f"{option} {path}: cannot write in {probe_in} ({reason}); choose a writable place"
        ) from None


def _nearest_existing_parent(path: Path) -> Path:
    parent = path if path.is_dir() else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


@contextlib.contextmanager
def output_folder(path: Path, *, option: str = "--out") -> Iterator[Path]:
    """Check, create and yield ``path``; remove it again if it is new and the body fails with a
    doublewin error (bad input or a failed run)."""
    check_writable(path, folder=True, option=option)
    created = not path.exists()
    made: list[Path] = []
    parent = path
    while not parent.exists():
        made.append(parent)
        parent = parent.parent
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    except DoublewinError:
        if created:
            shutil.rmtree(path, ignore_errors=True)
            for folder in made[1:]:  # parents this call made, if left empty
                with contextlib.suppress(OSError):
                    folder.rmdir()
        raise
