"""Exporting a SuperTicket: its shrunk network, physically smaller than the supernet, with the
mask, written as supernet.py describes (``architecture.json`` and ``model.py``), and the masked
supernet it is checked against.

The masked supernet is the supernet with the SuperTicket as a mask: every channel the search
removed is zero (its expansion row, depthwise filter and projection column masked, its BatchNorm
at γ = β = 0 with unit statistics), every path it removed is zero, and the kept channels hold
the network's weights under the pruned mask. Both compute the same logits.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from doublewin.core import paths
from doublewin.core.errors import UserError
from doublewin.core.specs import MaskScope
from doublewin.models import WeightsMeta, save_weights, supernet
from doublewin.models.supernets import build_supernet, full_description
from doublewin.tickets.mask import Mask
from doublewin.tickets.ticket import Ticket

# Per path, the hidden-channel dimension of each of its tensors (None: the whole tensor).
_PATH_DIMS = {
    "expand.conv.weight": 0,
    "expand.bn.weight": 0,
    "expand.bn.bias": 0,
    "expand.bn.running_mean": 0,
    "expand.bn.running_var": 0,
    "depthwise.conv.weight": 0,
    "depthwise.bn.weight": 0,
    "depthwise.bn.bias": 0,
    "depthwise.bn.running_mean": 0,
    "depthwise.bn.running_var": 0,
    "project.weight": 1,
}


def export_network(
    network: nn.Module, mask: Mask, ticket: Ticket, meta: WeightsMeta, out: Path
) -> tuple[nn.Module, nn.Module]:
    """Write the masked ``network`` into ``out`` (``weights.safetensors`` with its
    architecture, ``architecture.json``, ``model.py``); returns it (eval mode) and the masked
    supernet to check it against."""
    description = network.describe()  # type: ignore[operator]
    exported = supernet.SuperNet(description)
    exported.load_state_dict(network.state_dict())
    mask.apply_to(exported)
    extra = {
        **dict(meta.extra),
        "exported": "supertickets",
        "mask_hash": mask.content_hash(),
        "architecture": description,
    }
    written = dataclasses.replace(meta, source="export", extra=extra)
    save_weights(out / paths.WEIGHTS, exported, written)
    (out / paths.EXPORT_ARCHITECTURE).write_text(json.dumps(description, indent=2) + "\n")
    shutil.copyfile(supernet.__file__, out / paths.EXPORT_MODULE)
    return exported.eval(), masked_supernet(exported, mask, ticket, meta)


@torch.no_grad()
def masked_supernet(network: nn.Module, mask: Mask, ticket: Ticket, meta: WeightsMeta) -> nn.Module:
    """The supernet ``meta.arch`` holding ``network``'s weights at the channels the ticket
    records (``supernet_channels``), zero elsewhere, with the SuperTicket applied as its mask
    (returned in eval mode)."""
    channels = ticket.info.extra.get("supernet_channels")
    if not isinstance(channels, dict):
        raise UserError(
            "the ticket records no supernet channels (supernet_channels); export a ticket made "
            "by doublewin find-tickets --method supertickets"
        )
    fc = network.fc  # type: ignore[union-attr]
    full = build_supernet(full_description(meta.arch, fc.out_features, meta.mean, meta.std))
    state = {k: torch.zeros_like(v) for k, v in full.state_dict().items()}
    for name in state:
        if name.endswith("running_var"):
            state[name].fill_(1.0)
    small = network.state_dict()
    for name, value in small.items():
        path, suffix = _split(name, channels)
        if path is None:
            state[name].copy_(value)
            continue
        index = torch.tensor(channels[path], dtype=torch.long)
        dim = _PATH_DIMS.get(suffix)
        if dim is None:
            state[name].copy_(value)
        else:
            state[name].index_copy_(dim, index, value)
    full.load_state_dict(state)
    wide = Mask.dense(full, MaskScope(**_scope(ticket)))
    for name in wide:
        wide[name] = state[name] != 0 if name not in mask else _widen(name, mask, channels, wide)
    wide.apply_to(full)
    return full.eval()


def _widen(name: str, mask: Mask, channels: dict[str, Any], wide: Mask) -> torch.Tensor:
    path, suffix = _split(name, channels)
    if path is None:
        return mask[name]
    out = torch.zeros_like(wide[name])
    index = torch.tensor(channels[path], dtype=torch.long)
    return out.index_copy_(_PATH_DIMS[suffix], index, mask[name].to(out.dtype)).bool()


def _split(name: str, channels: dict[str, Any]) -> tuple[str | None, str]:
    """(``cells.3.paths.k5``, ``expand.conv.weight``) for a path's tensor, (None, name) else."""
    for path in channels:
        if name.startswith(path + "."):
            return path, name[len(path) + 1 :]
    return None, name


def _scope(ticket: Ticket) -> dict[str, Any]:
    scope = ticket.info.scope
    return {"include_linear": scope.include_linear, "exclude": tuple(scope.exclude)}
