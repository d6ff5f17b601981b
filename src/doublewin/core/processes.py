"""Processes that end with their runner, and signals that stop a run cleanly.

A worker process must not outlive the runner that started it: a runner killed by any signal
(SIGKILL included, which it cannot catch) would otherwise leave its workers blocked on a dead
pipe for good, each holding its memory. ``die_with_parent`` arms two guards in a worker: the
Linux parent-death signal (the kernel sends SIGKILL when the parent goes) and, on every
platform, a watchdog thread that ends the worker when its parent pid changes.

SIGTERM (a scheduler's or ``kill``'s stop) is turned into ``Terminated``, a KeyboardInterrupt,
so that Ctrl-C and SIGTERM take the same path: the runner stops its workers, keeps what has
finished, and the CLI exits with 130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # linux/prctl.h
WATCH_SECONDS = 0.5


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""

    exit_code = 143


_sigterm = threading.Event()


def exit_code(interrupt: BaseException | None = None) -> int:
    """130 for Ctrl-C (SIGINT), 143 for SIGTERM: the shell's 128 + signal number. SIGTERM is
    remembered when it arrives, so the code survives a library that re-wraps the interrupt."""
    return 143 if _sigterm.is_set() or isinstance(interrupt, Terminated) else 130


RESUME_LINE = "finished work is kept: run the same command to resume"


def stop_while_loading() -> None:
    """Until ``raise_on_sigterm`` runs: SIGINT / SIGTERM end the process at once (130 / 143)
    with the resume line. For the seconds a command spends importing, with nothing to save."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):  # noqa: ARG001
        what = "stopped (SIGTERM)" if signum == signal.SIGTERM else "interrupted"
        sys.stderr.write(f"{what}; {RESUME_LINE}\n")
        os._exit(143 if signum == signal.SIGTERM else 130)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def raise_on_sigterm() -> None:
    """Make SIGTERM raise ``Terminated`` and Ctrl-C raise KeyboardInterrupt in the main thread
    (no-op elsewhere). A signal that arrives while a module is being imported is delivered again
    once the import is over: an exception raised inside an import leaves that module (numpy,
    say, imported lazily by scipy) half-initialised, and the clean stop that follows would then
    fail on it."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        if _importing(frame):
            threading.Timer(REDELIVER_SECONDS, os.kill, (os.getpid(), signum)).start()
            return
        if signum == signal.SIGTERM:
            _sigterm.set()
            raise Terminated()
        raise KeyboardInterrupt()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


REDELIVER_SECONDS = 0.05


def _importing(frame) -> bool:  # noqa: ANN001
    """True when ``frame`` runs inside the import machinery (a module body being executed)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def die_with_parent(parent: int) -> None:
    """End this process within about a second of process ``parent`` ending, however it ends."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still holds
    if os.getppid() != parent:  # the parent died before the guard was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(WATCH_SECONDS)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()
