"""The two kinds of error a user can meet.

`UserError` is bad input (a missing file, a wrong format, an option out of range): the message
names the problem and the fix, and the CLI exits with code 2. `RunFailure` is work that failed
on good input (a loss that turned NaN): exit code 1.
"""

from __future__ import annotations


class DoublewinError(Exception):
    """Base class; `exit_code` is what the CLI returns."""

    exit_code = 1


class UserError(DoublewinError):
    """Bad input. The message is one line: what is wrong and how to fix it."""

    exit_code = 2


class RunFailure(DoublewinError):
    """The computation failed on valid input (divergence, NaN loss, a collapsed run)."""

    exit_code = 1
