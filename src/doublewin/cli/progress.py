"""A rich progress display for library code that reports to `doublewin.core.progress.Progress`."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class _RichTask:
    def __init__(self, owner: RichProgress, task_id: int):
        self._owner = owner
        self._id = task_id

    def advance(self, n: float = 1, **metrics: Any) -> None:
        text = "  ".join(f"{k} {_fmt(v)}" for k, v in metrics.items())
        self._owner.bar.update(self._id, advance=n, metrics=text)

    def close(self) -> None:
        self._owner.bar.update(self._id, visible=False)
        self._owner.bar.remove_task(self._id)


class RichProgress:
    """Bars with elapsed time and ETA on stderr; use as a context manager."""

    def __init__(self, console: Console | None = None, *, enabled: bool = True):
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=console or Console(stderr=True),
            disable=not enabled,
            transient=False,
        )

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def task(self, description: str, total: float | None) -> _RichTask:
        return _RichTask(self, self.bar.add_task(description, total=total, metrics=""))

    def note(self, message: str) -> None:
        self.bar.console.print(message, highlight=False)


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
