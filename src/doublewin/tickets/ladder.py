"""The ladder of sparsities a tickets spec produces: the one definition of every rung.

IMP's ladder is 1 − (1 − prune_rate)^k for k = 1 … rounds; the other methods are drawn at
their ``sparsities`` (by default the same IMP ladder, so methods meet at equal sparsity).
Rungs are fractions rounded to 6 digits: the precision of ticket file names, of transfer
references (``tickets-<hash>@0.488000``) and of results rows, so a rung compares equal to itself
everywhere without tolerances.
"""

from __future__ import annotations

import math

from doublewin.core.errors import UserError
from doublewin.core.results import SPARSITY_DIGITS
from doublewin.core.specs import TicketSpec
from doublewin.tickets.nm import nm_ladder

# Longest IMP ladder a list of sparsities is matched against (0.2 per round: 1 − 4e-20).
MAX_IMP_ROUNDS = 200


def imp_ladder(prune_rate: float, rounds: int) -> tuple[float, ...]:
    """Sparsities 1 − (1 − prune_rate)^k for k = 1 … rounds (fractions, 6 digits)."""
    keep = 1.0 - prune_rate
    return tuple(round(1.0 - keep**k, SPARSITY_DIGITS) for k in range(1, rounds + 1))


def ticket_ladder(spec: TicketSpec) -> tuple[float, ...]:
    """The target sparsities of a tickets spec, ascending: its ``sparsities``, else the IMP
    ladder of its ``prune_rate`` and ``rounds``. An N:M spec has the one rung 1 − N/M, and
    IMP the rungs (M−1):M … N:M on its way there (nm.py)."""
    if spec.pattern == "nm":
        n, m = spec.nm
        final = round(1 - n / m, SPARSITY_DIGITS)
        if any(round(s, SPARSITY_DIGITS) != final for s in spec.sparsities):
            raise UserError(
                f"tickets.sparsities: an {n}:{m} ticket is {final:.4f} sparse by "
                "construction; leave sparsities empty"
            )
        return nm_ladder(n, m) if spec.method == "imp" else (final,)
    if spec.sparsities:
        return tuple(sorted(round(s, SPARSITY_DIGITS) for s in spec.sparsities))
    return imp_ladder(spec.prune_rate, spec.rounds)


def imp_rounds(spec: TicketSpec) -> int:
    """IMP rounds needed: ``rounds``, or enough to reach the largest requested sparsity (each
    requested sparsity must be a rung of the ladder)."""
    if spec.pattern == "nm":
        return len(nm_ladder(*spec.nm))
    if not spec.sparsities:
        return spec.rounds
    ladder = imp_ladder(spec.prune_rate, MAX_IMP_ROUNDS)
    rounds = 0
    for s in spec.sparsities:
        rung = round(s, SPARSITY_DIGITS)
        if rung not in ladder:
            raise UserError(
                f"tickets.sparsities: {s} is not a rung of the IMP ladder "
                f"1 − {1 - spec.prune_rate:g}^k; leave sparsities empty and set "
                "rounds, or change prune_rate"
            )
        rounds = max(rounds, ladder.index(rung) + 1)
    return rounds


def check_rungs(spec: TicketSpec, total: int, arch: str) -> None:
    """Before anything is drawn: every rung of the spec's ladder keeps at least one of the
    ``total`` prunable weights of ``arch``, and no two rungs are one at 6 digits (a ticket
    file is named by its rung). N:M keeps N of every M by construction."""
    if spec.pattern == "nm":
        return
    ladder = ticket_ladder(spec)
    for k, rung in enumerate(ladder, 1):
        kept = total - round(rung * total)
        if kept >= 1 and rung not in ladder[: k - 1]:
            continue
        what = f"keeps {kept} of the {total:,} prunable weights of {arch or 'the model'}"
        if rung in ladder[: k - 1]:
            what = f"is the same rung as the one before it at {SPARSITY_DIGITS} digits"
        if spec.sparsities:
            sparsest = math.floor((1 - 1 / total) * 10**SPARSITY_DIGITS) / 10**SPARSITY_DIGITS
            raise UserError(
                f"tickets.sparsities: {rung:.6f} {what}; the sparsest rung that keeps a weight "
                f"is {sparsest:.6f}"
            )
        rounds = _rounds_that_keep(spec.prune_rate, total)
        raise UserError(
            f"tickets.rounds: round {k} of the IMP ladder 1 − {1 - spec.prune_rate:g}^k is "
            f"{rung:.6f}, which {what}; use at most rounds: {rounds}"
        )


def _rounds_that_keep(prune_rate: float, total: int) -> int:
    """The longest IMP ladder of ``prune_rate`` whose rungs all keep a weight and differ."""
    ladder = imp_ladder(prune_rate, MAX_IMP_ROUNDS)
    for k, rung in enumerate(ladder, 1):
        if total - round(rung * total) < 1 or rung in ladder[: k - 1]:
            return k - 1
    return MAX_IMP_ROUNDS
