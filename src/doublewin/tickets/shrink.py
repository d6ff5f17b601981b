"""SuperTickets' architecture search inside a supernet: the MAC-weighted γ-L1 penalty and its
warm-up, and shrinking (HR-NAS's ``utils/prune.py`` and ``compress_utils.py``).

A path's hidden channel is gated by the γ of the BatchNorm after its depthwise convolution.
The penalty pushes the γ of expensive channels to zero; shrinking removes the channels whose
|γ| is at or under a threshold and rebuilds the cells at their new widths.

Removing a channel whose γ is 0 changes no logit: its BatchNorm then outputs the constant β,
which the ReLU and the projection turn into a constant per output channel of the cell; that
constant is taken out of the cell BatchNorm's running mean (HR-NAS's ``_adjust_bn_mean``, which
its code leaves disabled), and in training mode the batch mean removes it anyway. A channel
with 0 < |γ| ≤ threshold changes the logits by at most what its γ weighs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from doublewin.core.ticket_parts import SuperTicketsSpec
from doublewin.models.supernet import Path, cell_sizes, path_key, path_macs
from doublewin.models.supernets import gates, searchable_cells
from doublewin.tickets.mask import Mask

PathId = tuple[str, int]  # (cell name, kernel size)


def channel_macs(model: nn.Module) -> dict[PathId, float]:
    """MACs one hidden channel of each path costs per image (HR-NAS's ``per_channel_flops``:
    the path's convolutions divided by its hidden channels)."""
    description = model.describe()  # type: ignore[operator]
    sizes = cell_sizes(description)
    out = {}
    for (name, _), cell, size in zip(
        searchable_cells(model), description["cells"], sizes, strict=True
    ):
        for k in cell["kernels"]:
            out[(name, int(k))] = float(path_macs(cell, int(k), 1, size))
    return out


def mac_penalties(model: nn.Module) -> dict[PathId, float]:
    """Each path's penalty weight: its MACs per hidden channel over their mean across every
    hidden channel of the supernet (HR-NAS's ``bn_prune_filter: expansion_only``)."""
    per_channel = channel_macs(model)
    widths = {p: bn.num_features for p, bn in gates(model).items()}
    mean = sum(per_channel[p] * widths[p] for p in per_channel) / sum(widths.values())
    return {p: per_channel[p] / mean for p in per_channel}


def rho_at(spec: SuperTicketsSpec, step: int, steps_per_epoch: int) -> float:
    """ρ after ``step`` optimizer steps of the run: 0 through ``rho_free_epochs``, then linear
    to ``rho`` at ``rho_warmup_epochs`` (whole epochs unless ``rho_stepwise``), then ``rho``."""
    free = spec.rho_free_epochs * steps_per_epoch
    warm = spec.rho_warmup_epochs * steps_per_epoch
    if not spec.rho_stepwise:
        step = (step // steps_per_epoch) * steps_per_epoch
    if step < free:
        return 0.0
    if step >= warm:
        return spec.rho
    return (step - free) / (warm - free) * spec.rho


def gamma_l1(model: nn.Module, penalties: dict[PathId, float]) -> torch.Tensor:
    """Σ over the paths still present of penalty × Σ|γ| (the penalty without ρ)."""
    terms = [penalties[p] * bn.weight.abs().sum() for p, bn in gates(model).items()]
    return torch.stack(terms).sum()


def dead_channels(model: nn.Module, threshold: float) -> dict[PathId, torch.Tensor]:
    """Per path, which hidden channels have |γ| ≤ ``threshold`` (bool)."""
    return {p: bn.weight.detach().abs() <= threshold for p, bn in gates(model).items()}


def dead_macs(dead: dict[PathId, torch.Tensor], per_channel: dict[PathId, float]) -> float:
    """MACs per image the dead channels cost."""
    return sum(float(d.sum()) * per_channel[p] for p, d in dead.items())


@dataclass
class SearchMasks:
    """The unstructured mask of the network being searched, with the values its pruned weights
    had when pruned (``dormant``: a mask reset or a regrowth brings them back), the mask the
    last prune left (``pruned``: never reset, so a weight it pruned that a later prune keeps
    counts as regrown) and for each path the supernet channels its hidden channels are
    (``origin``)."""

    mask: Mask
    dormant: dict[str, torch.Tensor]
    origin: dict[PathId, torch.Tensor] = field(default_factory=dict)
    pruned: dict[str, torch.Tensor] = field(default_factory=dict)


@torch.no_grad()
def shrink(
    model: nn.Module, threshold: float, state: SearchMasks, *, reuse_mask: bool
) -> tuple[int, int]:
    """Remove every hidden channel with |γ| ≤ ``threshold`` from ``model`` in place (a path
    left without channels is removed), rebuild the cells and carry ``state`` along. Every
    cell is rebuilt, as HR-NAS does: without ``reuse_mask`` the masks of the cells' paths are
    reset to dense, and their pruned weights come back with their dormant values. Returns
    (channels removed, paths removed)."""
    removed_channels = removed_paths = 0
    for name, cell in searchable_cells(model):
        for k in cell.kernels():
            key = path_key(k)
            keep = cell.paths[key].gate.weight.abs() > threshold
            prefix = f"{name}.paths.{key}"
            if bool(keep.all()):
                continue
            removed_channels += int((~keep).sum())
            _fold_constants(cell, cell.paths[key], keep)
            _slice_state(state, prefix, keep)
            if not bool(keep.any()):
                del cell.paths[key]
                state.origin.pop((name, k), None)
                removed_paths += 1
                continue
            cell.paths[key] = _narrowed(cell.paths[key], keep, k, cell.stride)
            if (name, k) in state.origin:
                state.origin[(name, k)] = state.origin[(name, k)][keep.cpu()]
        if not reuse_mask:
            _reset_masks(model, state, f"{name}.paths.")
    return removed_channels, removed_paths


def _fold_constants(cell: nn.Module, path: Path, keep: torch.Tensor) -> None:
    """Take the removed channels' constant (ReLU(β) through the projection) out of the cell
    BatchNorm's running mean."""
    beta = path.gate.bias[~keep]
    weight = path.project.weight[:, ~keep, 0, 0]
    cell.bn.running_mean.sub_(weight @ torch.relu(beta))


def _narrowed(path: Path, keep: torch.Tensor, kernel: int, stride: int) -> Path:
    """A copy of ``path`` with only its ``keep`` hidden channels."""
    bn = {"momentum": path.gate.momentum, "eps": path.gate.eps}
    cin, cout = path.expand.conv.in_channels, path.project.out_channels
    new = Path(cin, cout, int(keep.sum()), kernel, stride, bn).to(path.project.weight.device)
    for part in ("expand", "depthwise"):
        old, fresh = getattr(path, part), getattr(new, part)
        fresh.conv.weight.copy_(old.conv.weight[keep])
        for attr in ("weight", "bias", "running_mean", "running_var"):
            getattr(fresh.bn, attr).copy_(getattr(old.bn, attr)[keep])
        fresh.bn.num_batches_tracked.copy_(old.bn.num_batches_tracked)
    new.project.weight.copy_(path.project.weight[:, keep])
    return new.train(path.training)


def _slice_state(state: SearchMasks, prefix: str, keep: torch.Tensor) -> None:
    """Cut the mask and dormant values of one path's convolutions to its kept channels."""
    cuts = {"expand.conv.weight": 0, "depthwise.conv.weight": 0, "project.weight": 1}
    for suffix, dim in cuts.items():
        name = f"{prefix}.{suffix}"
        for store in (state.mask, state.dormant, state.pruned):
            if name not in store:
                continue
            if bool(keep.any()):
                index = keep.nonzero().squeeze(1).to(store[name].device)
                store[name] = store[name].index_select(dim, index)
            else:
                del store[name]


def _reset_masks(model: nn.Module, state: SearchMasks, prefix: str) -> None:
    """Masks under ``prefix`` back to dense, their pruned weights back to their old values."""
    params = dict(model.named_parameters())
    for name in [n for n in state.mask if n.startswith(prefix)]:
        keep = state.mask[name]
        if name in state.dormant:
            old = state.dormant[name].to(keep.device)
            params[name].copy_(torch.where(keep, params[name], old))
        state.mask[name] = torch.ones_like(keep)
