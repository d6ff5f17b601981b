"""The tickets stage: one ticket file per sparsity of the ladder, by the spec's method.

The files go into the output folder (``paths.ticket(sparsity)``); the metrics index them by
target sparsity, so a transfer job that names ``tickets-<hash>@<sparsity>`` finds its file.
IMP rungs are found in a trunk folder shared by every ladder length of the same IMP run
(``inputs.trunk``), so asking for more rounds later continues from the rungs already found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from doublewin.core.errors import UserError
from doublewin.core.results import SPARSITY_DIGITS
from doublewin.core.specs import TicketSpec
from doublewin.stages.environment import Environment, Inputs
from doublewin.tickets import find_tickets, load_ticket


def tickets(spec: TicketSpec, inputs: Inputs, out: Path, env: Environment) -> dict[str, Any]:
    """Find the tickets of ``spec`` on ``inputs.weights``. Returns ``tickets`` (target
    sparsity with 6 digits → file path relative to ``out``), ``achieved_sparsity`` (the
    same keys → the mask's global sparsity) and, for tickets that bring their network
    (SuperTickets), ``networks`` (the same keys → the network's weights file)."""
    if inputs.weights is None:
        raise UserError("find-tickets needs the pre-trained weights θp; pass --weights FILE")
    found = find_tickets(
        spec,
        inputs.weights,
        workdir=out,
        device=env.device,
        progress=env.progress,
        data_root=env.data_root,
        log=env.log,
        trunk=inputs.trunk,
        reference=inputs.reference,
    )
    index: dict[str, str] = {}
    networks: dict[str, str] = {}
    achieved: dict[str, float] = {}
    for path in found:
        info = load_ticket(path).info
        target = info.target_sparsity if info.target_sparsity is not None else info.sparsity
        key = f"{target:.{SPARSITY_DIGITS}f}"
        index[key] = str(Path(path).resolve().relative_to(Path(out).resolve()))
        achieved[key] = round(float(info.sparsity), SPARSITY_DIGITS)
        if info.extra.get("network"):
            networks[key] = str(Path(index[key]).with_name(str(info.extra["network"])))
    metrics: dict[str, Any] = {"tickets": index, "achieved_sparsity": achieved}
    if networks:
        metrics["networks"] = networks
    return metrics


def ticket_in(
    folder: Path, metrics: dict[str, Any], sparsity: float, what: str = "tickets"
) -> Path | None:
    """The file of the ticket at ``sparsity`` among a finished tickets stage's ``metrics``
    (``what``: ``networks`` for the network it brings; None when the stage produced none
    there)."""
    relative = metrics.get(what, {}).get(f"{sparsity:.{SPARSITY_DIGITS}f}")
    return None if relative is None else folder / relative
