"""Tickets: masks, the ways to find them on pre-trained weights, and ticket files.

``Mask`` (mask.py) is a mapping parameter name → bool tensor; ``pruning.py`` turns scores
into masks (global, like torch.nn.utils.prune); ``scores.py``, ``synflow.py`` and
``gem_miner.py`` score or search; ``imp.py`` runs iterative magnitude pruning with rewinding;
``find.py`` is the entry point used by the CLI and the runner; ``files.py`` and
``official.py`` read and write ticket files.
"""

from doublewin.experiments.specs import MaskScope
from doublewin.tickets.files import (
    Ticket,
    TicketInfo,
    TicketWeightsWarning,
    load_ticket,
    make_info,
    save_ticket,
)
from doublewin.tickets.find import find_tickets, target_sparsities, trunk_key
from doublewin.tickets.mask import LayerSparsity, Mask, prunable_parameters

__all__ = [
    "LayerSparsity",
    "Mask",
    "MaskScope",
    "Ticket",
    "TicketInfo",
    "TicketWeightsWarning",
    "find_tickets",
    "load_ticket",
    "make_info",
    "prunable_parameters",
    "save_ticket",
    "target_sparsities",
    "trunk_key",
]
