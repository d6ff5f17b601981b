"""The two kinds of error a user can meet.

`UserError` is bad input (a missing file, a wrong format, an option out of range): the message
names the problem and the fix, and the CLI exits with code 2. `Diverged` is the bad input found
only by training on it (a learning rate so high the loss turns NaN or infinite): exit code 2,
and the stage's work is removed. `RunFailure` is work that failed on good input (a damaged
store entry, a failed job): exit code 1.
"""

from __future__ import annotations


class DoublewinError(Exception):
    """Base class; `exit_code` is what the CLI returns."""

    exit_code = 1


class UserError(DoublewinError):
    """Bad input. The message is one line: what is wrong and how to fix it."""

    exit_code = 2


class Diverged(UserError):
    """Training diverged (the loss turned NaN or infinite): the settings, not the machine, are
    at fault, so it is bad input; nothing of the stage is kept."""


class RunFailure(DoublewinError):
    """The computation failed on valid input (a damaged store entry, a job that failed)."""

    exit_code = 1
