"""The one checked reader of numbers.

Every number a user gives enters through `read_number`: a spec field from YAML or ``--set``
(typed.py), a command-line option, an environment variable (`env_number`) and a table cell.
It accepts ``0.03``, ``8/255``, ``2e-4`` and numbers YAML already parsed, and refuses, in one
line naming where the number came from: text that is not a number, NaN and infinities (YAML's
``.nan``/``.inf``, or ``1e400``, which overflows to infinity), true/false, a fraction where a
whole number is wanted, and a value outside the field's range.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from fractions import Fraction
from typing import Any

from doublewin.core.errors import UserError

_NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")
_WHOLE = re.compile(r"^\s*[-+]?\d+\s*$")


@dataclasses.dataclass(frozen=True)
class Range:
    """An interval check; ``low_open``/``high_open`` exclude the end points."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def holds(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (
            self.high is not None and (value >= self.high if self.high_open else value > self.high)
        )

    def describe(self) -> str:
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        low = "-inf" if self.low is None else _shown(self.low)
        high = "inf" if self.high is None else _shown(self.high)
        return f"{left}{low}, {high}{right}"


def _shown(bound: float) -> str:
    return str(bound) if isinstance(bound, int) else f"{bound:g}"


POSITIVE = Range(0.0, None, low_open=True)
NON_NEGATIVE = Range(0.0, None)
UNIT_OPEN_CLOSED = Range(0.0, 1.0, low_open=True)  # (0, 1]
UNIT_CLOSED_OPEN = Range(0.0, 1.0, high_open=True)  # [0, 1)
UNIT_OPEN = Range(0.0, 1.0, low_open=True, high_open=True)
AT_LEAST_ONE = Range(1, None)
PIXEL_UNITS = Range(0.0, 1.0)  # ε and step sizes: [0,1] pixel space
EPS_HINT = "; write ε in [0,1] pixel units, e.g. 8/255"
# Seeds keep 32 bits (core/seeds.py masks them so): a larger or negative seed would give the
# random streams of another one.
SEED = Range(0, 2**32 - 1)
# Counts that drive a loop (epochs, attack steps, IMP rounds): far beyond any real run, well
# below a count that would never end.
EPOCHS = Range(1, 100_000)
STEPS = Range(1, 100_000)
ROUNDS = Range(1, 1_000)
RESTARTS = Range(1, 1_000)
# Whole numbers past 64 bits fit no tensor, no numpy seed and no index.
WHOLE_LIMIT = 2**63


def read_number(
    value: Any, *, name: str, range: Range | None = None, whole: bool = False, hint: str = ""
) -> Any:  # noqa: A002
    """``value`` as a finite float (``whole``: an int) inside ``range``, or one UserError
    naming ``name`` (a dotted key, an option, a variable); ``hint`` is added to a range error."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        kind = "a whole number" if whole else "a number"
        raise UserError(f"{name}: expected {kind}, got {value!r}")
    number = _from_text(value, name, whole) if isinstance(value, str) else value
    if isinstance(number, float) and not math.isfinite(number):
        raise UserError(
            f"{name}: {value!r} is not a finite number (NaN and infinities are refused); "
            "give a number such as 0.1"
        )
    if whole:
        if isinstance(number, float):
            if not number.is_integer():
                raise UserError(f"{name}: expected a whole number, got {value!r}")
            number = int(number)
        if abs(number) >= WHOLE_LIMIT and (range is None or range.holds(number)):
            raise UserError(f"{name}: {value} is far too large for a whole number here")
    elif isinstance(number, int):
        try:
            number = float(number)
        except OverflowError:
            raise UserError(f"{name}: {value} is far too large for a number here") from None
    if range is not None and not range.holds(number):
        shown = f"{number:g}" if isinstance(number, float) else str(number)
        raise UserError(f"{name}: {shown} is out of range; allowed {range.describe()}{hint}")
    return number


def _from_text(text: str, name: str, whole: bool) -> float | int:
    stripped = text.strip()
    if whole and _WHOLE.match(stripped):
        return int(stripped)
    if "/" in stripped:
        num, _, den = stripped.partition("/")
        if _NUMBER.match(num) and _NUMBER.match(den):
            if float(den) == 0:
                raise UserError(f"{name}: division by zero in {stripped!r}; write e.g. 8/255")
            return float(Fraction(num.strip()) / Fraction(den.strip()))
    elif _NUMBER.match(stripped):
        return float(stripped)
    if whole:
        raise UserError(f"{name}: expected a whole number, got {stripped!r}")
    raise UserError(f"{name}: {stripped!r} is not a number; write e.g. 0.03 or 8/255")


def env_number(
    variable: str, default: Any, *, range: Range | None = None, whole: bool = False
) -> Any:  # noqa: A002
    """The environment variable ``variable`` read as a number (``default`` when unset or
    empty), checked like every other number; the message names the variable."""
    raw = os.environ.get(variable, "")
    if not raw.strip():
        return default
    try:
        return read_number(raw, name=f"${variable}", range=range, whole=whole)
    except UserError as exc:
        raise UserError(f"{exc}; set it to a valid value or unset it") from None
