"""Tickets: masks, the ways to find them on pre-trained weights, and ticket files.

``Mask`` (mask.py) is a mapping parameter name → bool tensor; ``pruning.py`` turns scores
into masks (global, like torch.nn.utils.prune); ``ladder.py`` names the rungs; ``scores.py``,
``synflow.py`` and ``gem_miner.py`` score or search; ``imp.py`` runs iterative magnitude
pruning with rewinding; ``search.py``, ``shrink.py``, ``progressive.py`` and
``supertickets.py`` draw SuperTickets from a supernet (``network_export.py`` exports one);
``macs.py`` counts multiply-accumulates; ``find.py`` is the entry point the tickets stage calls; ``ticket.py``
is a mask with its provenance, ``files.py`` and ``official.py`` read and write ticket files.
"""

from doublewin.core.specs import MaskScope
from doublewin.tickets.files import load_ticket, save_ticket
from doublewin.tickets.find import find_tickets, trunk_key
from doublewin.tickets.ladder import imp_ladder, ticket_ladder
from doublewin.tickets.mask import LayerSparsity, Mask, prunable_parameters
from doublewin.tickets.ticket import Ticket, TicketInfo, TicketWeightsWarning, make_info

__all__ = [
    "LayerSparsity",
    "Mask",
    "MaskScope",
    "Ticket",
    "TicketInfo",
    "TicketWeightsWarning",
    "find_tickets",
    "imp_ladder",
    "load_ticket",
    "make_info",
    "prunable_parameters",
    "save_ticket",
    "ticket_ladder",
    "trunk_key",
]
