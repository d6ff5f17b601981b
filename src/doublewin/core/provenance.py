"""What made a file: doublewin's version and source commit, torch's version, and when.

Certificates record it, so a reader can tell which code produced a claim.
"""

from __future__ import annotations

import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parents[1]


def package_version(name: str) -> str | None:
    """The installed version of the distribution ``name`` (None when not installed)."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def source_commit() -> tuple[str | None, bool | None]:
    """(commit, modified) of the git checkout doublewin runs from; (None, None) for an
    installed copy or where git is absent."""
    try:
        commit = _git("rev-parse", "HEAD")
        status = _git("status", "--porcelain", "--untracked-files=no", "--", str(PACKAGE))
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, bool(status)


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(PACKAGE), *args], capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip()


def provenance() -> dict[str, Any]:
    """``{"doublewin", "commit", "modified", "torch", "date"}``; the date in UTC, ISO 8601."""
    commit, modified = source_commit()
    return {
        "doublewin": package_version("doublewin"),
        "commit": commit,
        "modified": modified,
        "torch": package_version("torch"),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
