"""What `doublewin verify` reports: one row per claim it checked, and how two accuracies are
held against each other (points; the tolerance is tickets/certificate.py's)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Check:
    """One claim: what it is, what the certificate says, what was measured, and whether they
    agree."""

    claim: str
    certified: str
    measured: str
    agrees: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "claim": self.claim,
            "certified": self.certified,
            "measured": self.measured,
            "agrees": self.agrees,
        }


@dataclass
class Verification:
    """Every check of one export, and notes on what was not checked and why."""

    folder: Path
    certificate_sha256: str
    kind: str
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.agrees]

    def add(self, checks: list[Check], notes: list[str]) -> None:
        """The checks and notes of one way of measuring (remeasured, transferred again)."""
        self.checks += checks
        self.notes += notes

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "certificate_sha256": self.certificate_sha256,
            "kind": self.kind,
            "agrees": not self.failed,
            "checks": [c.as_dict() for c in self.checks],
            "notes": list(self.notes),
        }


def points(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def near(claim: str, certified: float, measured: float, tolerance: float) -> Check:
    """``measured`` within ``tolerance`` points of ``certified``."""
    return Check(
        claim,
        f"{certified:.2f} (± {tolerance:.2f})",
        f"{measured:.2f}",
        abs(measured - certified) <= tolerance + 1e-9,
    )


def within(claim: str, low: float, high: float, measured: float, tolerance: float) -> Check:
    """``measured`` inside [low, high] widened by ``tolerance`` points."""
    return Check(
        claim,
        f"{low:.2f} … {high:.2f} (± {tolerance:.2f})",
        f"{measured:.2f}",
        low - tolerance - 1e-9 <= measured <= high + tolerance + 1e-9,
    )


def span(values: Iterable[float | None]) -> tuple[float, float] | None:
    """The lowest and highest of the values that are there (None when none is)."""
    present = [float(v) for v in values if v is not None]
    return (min(present), max(present)) if present else None
