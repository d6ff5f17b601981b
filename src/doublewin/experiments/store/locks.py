"""The store's entry lock: an exclusive ``flock`` with a lease, for one host or many.

``flock`` alone is exact on one machine: the kernel releases the lock the moment its holder
dies, however it dies. On a filesystem shared by several hosts the lock lives on the file
server (NFSv4 leases, Lustre and GPFS lock managers), which releases a dead client's locks
only when that client's own lease expires, and some setups (NFSv3 without lockd) never do.
So the holder also writes a heartbeat, ``lease.json`` (host, pid, time), every
``HEARTBEAT_SECONDS``; a waiter that finds the lock held and the heartbeat older than
``LEASE_SECONDS`` treats the holder as dead and breaks the lock: it moves the lock file
aside (the dead holder's lock stays on the old file) and locks a fresh one. Breaking happens
under a second lock, so two waiters never break it twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from doublewin.core import paths

HEARTBEAT_SECONDS = 30.0
LEASE_SECONDS = 300.0  # a heartbeat this old means the holder is gone
POLL_SECONDS = 0.5


@contextlib.contextmanager
def entry_lock(folder: Path, lease_seconds: float = LEASE_SECONDS) -> Iterator[None]:
    """Hold the lock of ``folder`` for the duration (waiting for another holder to finish)."""
    folder.mkdir(parents=True, exist_ok=True)
    handle = _acquire(folder, lease_seconds)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(folder, stop), daemon=True)
    _write_lease(folder)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join(timeout=5)
        with contextlib.suppress(OSError):
            (folder / paths.LEASE).unlink()
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


def _acquire(folder: Path, lease_seconds: float):
    while True:
        handle = open(folder / paths.LOCK, "a+")  # noqa: SIM115 (held until release)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            if _stale(folder, lease_seconds):
                _break(folder, lease_seconds)
            time.sleep(POLL_SECONDS)
            continue
        # The file may have been moved aside (broken) between open and flock: retry then.
        if os.path.exists(folder / paths.LOCK) and os.path.samefile(
            folder / paths.LOCK, handle.fileno()
        ):
            return handle
        handle.close()


def _stale(folder: Path, lease_seconds: float) -> bool:
    try:
        lease = json.loads((folder / paths.LEASE).read_text())
        return time.time() - float(lease["time"]) > lease_seconds
    except (OSError, ValueError, KeyError, TypeError):
        return False  # no heartbeat yet: the holder has only just taken the lock


def _break(folder: Path, lease_seconds: float) -> None:
    with open(folder / paths.LOCK_BREAK, "a+") as guard:
        fcntl.flock(guard.fileno(), fcntl.LOCK_EX)
        try:
            if _stale(folder, lease_seconds):  # still stale now that we hold the guard
                stamp = f"{socket.gethostname()}-{os.getpid()}-{time.time():.0f}"
                with contextlib.suppress(OSError):
                    os.replace(folder / paths.LOCK, folder / f"{paths.LOCK}.broken-{stamp}")
                with contextlib.suppress(OSError):
                    (folder / paths.LEASE).unlink()
        finally:
            fcntl.flock(guard.fileno(), fcntl.LOCK_UN)


def _write_lease(folder: Path) -> None:
    record = {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}
    tmp = folder / f"{paths.LEASE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record))
    os.replace(tmp, folder / paths.LEASE)


def _heartbeat(folder: Path, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        with contextlib.suppress(OSError):
            _write_lease(folder)
