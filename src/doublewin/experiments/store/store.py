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
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doublewin.core import paths
from doublewin.core.atomic import atomic_write_json, atomic_write_text
from doublewin.core.errors import Diverged, RunFailure, UserError
from doublewin.core.hashing import canonical, spec_hash
from doublewin.core.typed import to_dict
from doublewin.experiments.store.locks import entry_lock


@dataclass
class Entry:
    """One stage's directory in the store."""

    path: Path
    stage: str
    hash: str
    spec: Any

    @property
    def done(self) -> bool:
        return (self.path / paths.DONE).is_file()

    def open(self) -> Path:
        """Create the directory (if needed) and record the spec; returns the directory."""
        self.path.mkdir(parents=True, exist_ok=True)
        spec_file = self.path / paths.SPEC
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
            if child.name in (paths.SPEC, paths.LEASE) or child.name.startswith(paths.LOCK):
                continue
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()

    def recorded_spec(self) -> dict[str, Any] | None:
        """The full spec recorded in spec.json (None when there is none or it is unreadable)."""
        try:
            return json.loads((self.path / paths.SPEC).read_text())["spec"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def metrics(self) -> dict[str, Any]:
        """The finished entry's metrics.json ({} when it has none)."""
        path = self.path / paths.METRICS
        if not path.is_file():
            return {}
        try:
            metrics = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise RunFailure(
                f"{path}: damaged ({type(exc).__name__}); remove the folder {self.path} and "
                "run again to recompute that entry"
            ) from None
        if not isinstance(metrics, dict):
            raise RunFailure(f"{path}: not a metrics mapping; remove {self.path} and run again")
        return metrics

    def finish(self, metrics: dict[str, Any] | None = None) -> None:
        """Write metrics.json, then DONE. Only call once every artifact is in place."""
        if metrics is not None:
            atomic_write_json(self.path / paths.METRICS, metrics)
        atomic_write_text(self.path / paths.DONE, time.strftime("%Y-%m-%dT%H:%M:%S%z") + "\n")

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Exclusive lock so two processes, on one host or several, never work on the same
        entry at once (locks.py: flock with a heartbeat lease)."""
        return entry_lock(self.path)


class Store:
    """Directory of stage entries, addressed by (stage, spec)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def entry(self, stage: str, spec: Any) -> Entry:
        """The entry of (stage, spec). A finished entry recorded with a value that is now a
        different default (the hash omits defaults, so it cannot tell) is a UserError naming
        the key, instead of a silent reuse of work done under the old value."""
        digest = spec_hash(stage, spec)
        entry = Entry(self.root / f"{stage}-{digest}", stage, digest, spec)
        if entry.done:
            changed = _changed_keys(entry.recorded_spec(), to_dict(spec))
            if changed:
                key, old, new = changed[0]
                raise UserError(
                    f"{entry.path} was computed with {key} = {old!r}, whose default is now "
                    f"{new!r}; remove that folder to recompute it with the new default"
                )
        return entry

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
        try:
            with entry.lock():
                if entry.done:  # another process finished it while we waited
                    return entry
                entry.open()
                if not resumable:
                    entry.clear()
                metrics = compute(entry)
                entry.finish(metrics)
        except Diverged:
            # This spec can never finish: its checkpoints are no start for another one.
            shutil.rmtree(entry.path, ignore_errors=True)
            raise
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
            spec_file = child / paths.SPEC
            spec = json.loads(spec_file.read_text())["spec"] if spec_file.is_file() else None
            out.append(Entry(child, name, digest, spec))
        return out


def _changed_keys(recorded: Any, current: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Dotted keys both specs have whose values differ (keys only one has are a field added
    or removed since, with a neutral default: not a change)."""
    if not isinstance(recorded, dict) or not isinstance(current, dict):
        return []
    out = []
    for key in sorted(set(recorded) & set(current)):
        a, b = recorded[key], current[key]
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += _changed_keys(a, b, name + ".")
        elif a != b:
            out.append((name, a, b))
    return out
