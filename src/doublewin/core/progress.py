"""Progress reporting without printing: library code reports to a `Progress`, the CLI draws it.

Long stages call ``task = progress.task(description, total)``, then ``task.advance(n,
**metrics)`` and finally ``task.close()``. The CLI passes a rich-based implementation
(`doublewin.cli.progress.RichProgress`) that shows a bar with an ETA; tests and library users
get `NullProgress`.
"""

from __future__ import annotations

from typing import Any, Protocol


class Task(Protocol):
    def advance(self, n: float = 1, **metrics: Any) -> None: ...

    def close(self) -> None: ...


class Progress(Protocol):
    def task(self, description: str, total: float | None) -> Task: ...

    def note(self, message: str) -> None:
        """A one-line message for the user (e.g. "resuming at epoch 4")."""
        ...


class _NullTask:
    def advance(self, n: float = 1, **metrics: Any) -> None:
        pass

    def close(self) -> None:
        pass


class NullProgress:
    """Reports nowhere."""

    def task(self, description: str, total: float | None) -> Task:
        return _NullTask()

    def note(self, message: str) -> None:
        pass


NULL_PROGRESS = NullProgress()
