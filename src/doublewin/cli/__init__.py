"""The command line: parses, calls library functions, prints. Nothing else lives here.

Each module under ``doublewin.cli`` registers its commands on the one typer ``app``.
"""

from __future__ import annotations

from doublewin.cli import (
    catalog,  # noqa: F401  (registers commands)
    evaluate,  # noqa: F401
    experiments,  # noqa: F401
    stages,  # noqa: F401
    tickets,  # noqa: F401
    verdict,  # noqa: F401
    weights,  # noqa: F401
)
from doublewin.cli.app import app, err_console
from doublewin.core import distributed
from doublewin.core.errors import DoublewinError


def main(argv: list[str] | None = None) -> None:
    """Entry point: library errors become one line on stderr and their exit code."""
    try:
        if distributed.launched():  # torchrun --nproc-per-node N -m doublewin ...
            distributed.init()
        app(args=argv, standalone_mode=False)
    except DoublewinError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("interrupted; finished work is kept: run the same command to resume")
        raise SystemExit(130) from None
    except Exception as exc:
        # Usage errors of the click underneath typer (vendored in newer typer releases).
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        if type(exc).__name__ == "Abort":
            raise SystemExit(1) from None
        raise
