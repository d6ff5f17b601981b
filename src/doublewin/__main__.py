"""`doublewin` and `python -m doublewin`: the command line.

Loading the commands imports torch (seconds); a Ctrl-C or SIGTERM meanwhile, when nothing has
started, ends the process at once with 130 / 143 and the resume line.
"""

from doublewin.core.processes import stop_while_loading

stop_while_loading()

from doublewin.cli import main  # noqa: E402


def run() -> None:
    """The console script's entry point."""
    main()


if __name__ == "__main__":
    main()
