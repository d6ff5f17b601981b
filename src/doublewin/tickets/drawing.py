"""One drawing of tickets: what a ticket records of the model it is drawn from (`Source`), and
everything the ticket methods share while they draw (`Draw`): the spec, the model holding θp,
the source task's loaders, the prunable scope, the pattern's rules, where the files go, and
`Draw.make_ticket`, which turns a mask into a ticket with its metadata."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from doublewin.core.logs import JsonlLog
from doublewin.core.progress import Progress
from doublewin.core.specs import TicketSpec
from doublewin.tickets.mask import Mask
from doublewin.tickets.patterned import Pattern
from doublewin.tickets.ticket import Ticket, make_info


@dataclass(frozen=True)
class Source:
    """What a ticket records about the model it is drawn from: its architecture name, the
    content hash of its weights, and the side in pixels it sees (traced for channel groups)."""

    arch: str
    weights_hash: str
    input_size: int


@dataclass(frozen=True)
class Draw:
    """One call of `draw_tickets`: the spec (its N:M scope applied), the model holding θp,
    what the tickets record of their source, the prunable scope and the pattern's rules."""

    spec: TicketSpec
    model: torch.nn.Module
    source: Source
    loaders: Callable[[], tuple[Any, Any]]
    workdir: Path
    device: torch.device
    progress: Progress
    log: JsonlLog | None
    scope_mask: Mask
    pattern: Pattern
    recorded: dict[str, Any]

    def make_ticket(self, mask: Mask, target: float, extra: dict[str, Any] | None = None) -> Ticket:
        extra = {**(extra or {}), **self.pattern.describe(mask)}
        info = make_info(
            mask,
            arch=self.source.arch,
            method=self.spec.method,
            weights_hash=self.source.weights_hash,
            target_sparsity=target,
            scope=self.spec.scope,
            spec=self.recorded,
            extra=extra,
        )
        return Ticket(mask, info)
