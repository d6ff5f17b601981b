"""Progress display for library code that reports to `doublewin.core.progress.Progress`.

On a terminal: rich bars with elapsed time and an ETA from the task's own average rate (shown
from the first update on, not after rich's speed window fills). When stderr is not a terminal
(CI, nohup, tee): one plain line per task every ``DOUBLEWIN_PROGRESS_INTERVAL`` seconds
(default 30), so logs show the run is alive.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from doublewin.core.numbers import Range, env_number

INTERVAL_ENV = "DOUBLEWIN_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 30.0
NON_NEGATIVE = Range(0.0, None)


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=int(max(0.0, seconds))))


def eta_seconds(elapsed: float, done: float, total: float | None) -> float | None:
    """Seconds left at the average rate so far (None before the first step or without a
    total)."""
    if not total or done <= 0 or elapsed <= 0:
        return None
    return elapsed * (total - done) / done


class AverageEtaColumn(ProgressColumn):
    """``eta 0:01:23`` from the task's average rate since it started."""

    def render(self, task) -> Text:
        left = eta_seconds(task.elapsed or 0.0, task.completed, task.total)
        return Text("eta " + ("-:--:--" if left is None else _clock(left)), style="cyan")


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


class _PlainTask:
    """A task written as plain lines: one at its first step (so a log shows at once what
    started), then at most one per interval, and one at the end."""

    def __init__(self, owner: RichProgress, description: str, total: float | None):
        self._owner, self.description, self.total = owner, description, total
        self.done = 0.0
        self.started = self.last = time.monotonic()
        self.printed = False
        self.metrics = ""

    def advance(self, n: float = 1, **metrics: Any) -> None:
        self.done += n
        if metrics:
            self.metrics = "  ".join(f"{k} {_fmt(v)}" for k, v in metrics.items())
        now = time.monotonic()
        if not self.printed or now - self.last >= self._owner.interval:
            self.last = now
            self._line()

    def close(self) -> None:
        if self.printed:
            self._line(final=True)

    def _line(self, final: bool = False) -> None:
        elapsed = time.monotonic() - self.started
        count = f"{_fmt(self.done)}/{_fmt(self.total)}" if self.total else _fmt(self.done)
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        if final:
            timing = f"done in {_clock(elapsed)}"
        else:
            left = eta_seconds(elapsed, self.done, self.total)
            timing = f"elapsed {_clock(elapsed)}, eta " + ("?" if left is None else _clock(left))
        stamp = time.strftime("%H:%M:%S")
        self._owner.console.print(
            f"[{stamp}] {self.description}: {count}{share}, {timing}  {self.metrics}".rstrip(),
            highlight=False,
            markup=False,
            soft_wrap=True,  # one line per update, whatever the log's width
        )
        self.printed = True


class RichProgress:
    """Progress on stderr; use as a context manager. ``enabled=False`` shows nothing (--json)."""

    def __init__(
        self, console: Console | None = None, *, enabled: bool = True, interval: float | None = None
    ):
        self.console = console or Console(stderr=True)
        self.plain = enabled and not self.console.is_terminal
        self.interval = (
            env_number(INTERVAL_ENV, DEFAULT_INTERVAL_S, range=NON_NEGATIVE)
            if interval is None
            else interval
        )
        self.enabled = enabled
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            AverageEtaColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=self.console,
            disable=not enabled or self.plain,
            transient=False,
        )

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def task(self, description: str, total: float | None) -> _RichTask | _PlainTask:
        if self.plain:
            return _PlainTask(self, description, total)
        return _RichTask(self, self.bar.add_task(description, total=total, metrics=""))

    def note(self, message: str) -> None:
        self.console.print(message, highlight=False, markup=False)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) < 1e9 else f"{value:.3g}"
    return str(value)
