"""The command line: parses, calls library functions, prints. Nothing else lives here.

Each module under ``doublewin.cli`` registers its commands on the one typer ``app``.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
import warnings
from typing import NoReturn

from rich.markup import escape

# Before torch loads (the commands import it): OpenMP threads that wait for work by sleeping,
# not spinning, so a doublewin process beside another busy one does not collapse (measured in
# benchmarks/bench_contention.py, docs/benchmarks.md). An explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from doublewin.cli import (  # noqa: E402
    catalog,  # noqa: F401  (registers commands)
    evaluate,  # noqa: F401
    experiments,  # noqa: F401
    export,  # noqa: F401
    find_tickets,  # noqa: F401
    landscape,  # noqa: F401
    stages,  # noqa: F401
    store,  # noqa: F401
    tickets,  # noqa: F401
    verdict,  # noqa: F401
    verify,  # noqa: F401
    weights,  # noqa: F401
)
from doublewin.cli.app import command, err_console  # noqa: E402
from doublewin.core.errors import DoublewinError  # noqa: E402
from doublewin.core.numbers import Range, env_number  # noqa: E402
from doublewin.core.processes import RESUME_LINE, exit_code, raise_on_sigterm  # noqa: E402

# OSErrors that name a bad path (bad input, exit 2); any other is a failure of the run.
BAD_PATH_ERRNOS = {
    errno.ENAMETOOLONG,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOENT,
    errno.ENOTDIR,
    errno.EISDIR,
}


def main(argv: list[str] | None = None) -> None:
    """Entry point: library errors become one line on stderr and their exit code. Under
    torchrun (``torchrun --nproc-per-node N -m doublewin ...``) each rank leaves the process
    group and ends its process itself, with the command's exit code (`distributed.finish`)."""
    raise_on_sigterm()
    try:
        world_size = env_number("WORLD_SIZE", 1, range=Range(1, None), whole=True)
    except DoublewinError as exc:
        _error(exc)
    if world_size <= 1:  # not under torchrun (distributed.launched)
        _main(argv)
        return
    # deferred: torch, which a single process loads only when its command needs it
    from doublewin.core import distributed

    code = 1
    try:
        distributed.init()
        _main(argv)
        code = 0
    except DoublewinError as exc:  # a launch torchrun did not prepare (distributed.init)
        err_console.print(f"error: {escape(str(exc))}", highlight=False, soft_wrap=True)
        code = exc.exit_code
    except SystemExit as stop:
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
        code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    except BaseException:
        traceback.print_exc()
    # A barrier before leaving only when this rank finished: a failed peer may be gone.
    distributed.finish(code, synchronize=code == 0)


def _warn(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """A warning in the tool's words: one line, once per message, no source line."""
    text = " ".join(str(message).split())
    if text in _WARNED:
        return
    _WARNED.add(text)
    err_console.print(f"warning: {escape(text)}", highlight=False, soft_wrap=True)


_WARNED: set[str] = set()


def _main(argv: list[str] | None) -> None:
    warnings.showwarning = _warn
    try:
        code = command().main(args=argv, standalone_mode=False)
    except DoublewinError as exc:
        _error(exc)
    except KeyboardInterrupt as interrupt:
        _interrupted(exit_code(interrupt))
    except OSError as exc:
        # A path the system refuses that no earlier check caught (a name over the limit, no
        # permission, a full disk): one line, not a traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        bad_path = exc.errno in BAD_PATH_ERRNOS
        err_console.print(
            f"[bold red]error:[/] {escape(where + (exc.strerror or str(exc)))}; "
            + (
                "choose another path" if bad_path else "check the disk and the path, then run again"
            ),
            highlight=False,
            soft_wrap=True,
        )
        raise SystemExit(2 if bad_path else 1) from None
    except Exception as exc:
        # Usage errors of the click underneath typer (vendored in newer typer releases).
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        if type(exc).__name__ == "Abort":
            _interrupted(exit_code())  # click re-wraps an interrupt it catches as Abort
        raise
    if isinstance(code, int) and code == 130:
        # click turns an interrupt it catches into a returned 130 without standalone mode
        _interrupted(exit_code())
    if isinstance(code, int) and code:
        raise SystemExit(code)


def _error(exc: DoublewinError) -> NoReturn:
    # escape: a message's own brackets (pip install 'doublewin[zoo]') are text, not markup
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise SystemExit(exc.exit_code) from None


def _interrupted(code: int) -> None:
    what = "stopped (SIGTERM)" if code == 143 else "interrupted"
    err_console.print(f"{what}; {RESUME_LINE}", highlight=False)
    raise SystemExit(code)
