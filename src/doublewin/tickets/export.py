"""`doublewin export`: a (transferred) ticket as a model that is really smaller or sparser.

- ``unstructured``: the pruned weights (zeros where the mask prunes) in a doublewin weights
  file, the ticket beside them, and optionally each pruned layer in CSR form.
- ``channel``: the network with the pruned channels removed (torch-pruning cuts the coupled
  filters, BatchNorm entries and input slices), as ``weights.safetensors`` under its original
  parameter names, ``architecture.json`` (every layer's width) and ``model.py``, a plain torch
  module definition (models/slim.py) that loads them without doublewin.
- a SuperTicket: its shrunk network (physically smaller than the supernet) carrying the mask,
  ``architecture.json`` and ``model.py`` (models/supernet.py), checked against the masked
  supernet (network_export.py).
- ``nm``: the dense weights holding the N:M pattern; on a CUDA GPU with 2:4 support every 2:4
  layer is also converted with ``torch.sparse.to_sparse_semi_structured`` and checked.

An unstructured or N:M ticket of a ResNet that slim.py's plain-torch module reproduces (its
logits within ``TOLERANCE``) gets ``model.py`` and ``architecture.json`` too, so every such
export loads without doublewin.

Every export is checked against the masked model on a batch (fp32, eval mode): the largest
logit difference must be at most ``TOLERANCE`` times the largest |logit| (or ``TOLERANCE`` when
that is below 1). Parameters, bytes and FLOPs
(``torch.utils.flop_counter``) are measured for the dense model and the export.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from doublewin.core import paths
from doublewin.core.atomic import atomic_folder
from doublewin.core.errors import RunFailure, UserError
from doublewin.models import (
    ARCHITECTURES,
    WeightsMeta,
    get_normalization,
    load_model,
    save_weights,
    slim,
)
from doublewin.tickets.channels import channel_groups, prunable_groups, pruned_positions
from doublewin.tickets.files import load_ticket, save_ticket
from doublewin.tickets.mask import Mask
from doublewin.tickets.network_export import export_network

# the CIFAR ResNets a channel export names when it refuses another network
_CIFAR_RESNETS = tuple(a.name for a in ARCHITECTURES.values() if a.family == "cifar-resnet")
TOLERANCE = 1e-4  # largest |Δlogit| between export and masked model, × max(1, largest |logit|)


@dataclass(frozen=True)
class Footprint:
    """What a model costs: parameters, bytes of its weights as stored, FLOPs of one image."""

    params: int
    bytes: int
    flops: int


@dataclass
class Exported:
    pattern: str
    out: Path
    files: list[str]
    dense: Footprint
    exported: Footprint
    max_logit_difference: float
    notes: list[str] = field(default_factory=list)
    largest_logit: float = 0.0  # the masked model's largest |logit| on the check batch

    @property
    def agrees(self) -> bool:
        """The export's check: |Δlogit| ≤ TOLERANCE × max(1, largest |logit|)."""
        return self.max_logit_difference <= TOLERANCE * max(1.0, self.largest_logit)

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["out"] = str(self.out)
        return out


def export_ticket(
    weights: Path,
    ticket_path: Path,
    out: Path,
    *,
    batch: torch.Tensor | None = None,
    csr: bool = False,
) -> Exported:
    """Export ``ticket_path`` applied to ``weights`` into the folder ``out`` (written under a
    temporary name and renamed into place, so a failed export leaves nothing)."""
    _check_out(out)
    with atomic_folder(out) as folder:
        return write_export(weights, ticket_path, folder, out=out, batch=batch, csr=csr)


def write_export(
    weights: Path,
    ticket_path: Path,
    folder: Path,
    *,
    out: Path,
    batch: torch.Tensor | None = None,
    csr: bool = False,
) -> Exported:
    """The export of ``ticket_path`` applied to ``weights``, written into the empty ``folder``
    (which becomes ``out``). A ResNet the plain-torch module of slim.py reproduces also gets
    ``model.py`` and ``architecture.json``, whatever its pattern."""
    model, meta = load_model(weights)
    ticket = load_ticket(ticket_path)
    mask = ticket.fit(
        model, weights_hash=meta.content_hash, arch=meta.arch, source=str(ticket_path)
    )
    masked = copy.deepcopy(model).eval()
    mask.apply_to(masked)
    size = int(meta.input_size)
    if batch is None:
        generator = torch.Generator().manual_seed(0)
        batch = torch.rand(16, 3, size, size, generator=generator)
    size = int(batch.shape[-1])
    pattern = str((ticket.info.extra or {}).get("pattern") or "unstructured")
    if csr and pattern != "unstructured":
        raise UserError(
            f"--csr writes the CSR form of an unstructured ticket; {ticket_path} is a {pattern} "
            "ticket, so it would write nothing: leave --csr out"
        )
    if (ticket.info.extra or {}).get("network"):
        pattern = "supertickets"  # a network of its own: checked against the masked supernet
    notes: list[str] = []
    if pattern == "channel":
        exported = _channel(masked, mask, meta, size, folder)
    elif pattern == "supertickets":
        exported, masked = export_network(model, mask, ticket, meta, folder)
        save_ticket(folder / paths.EXPORT_TICKET, ticket)
    else:
        exported = masked
        save_weights(folder / paths.WEIGHTS, masked, _meta(meta, pattern, mask))
        save_ticket(folder / paths.EXPORT_TICKET, ticket)
        if csr and pattern == "unstructured":
            _write_csr(masked, mask, folder / paths.EXPORT_CSR)
        if pattern == "nm":
            notes.append(_semi_structured(masked, mask, ticket.info.extra))
        _plain_module(masked, batch, folder)
    difference, scale = _max_difference(masked, exported.eval(), batch)
    # Relative to the logits' size (at least 1): float32 round-off grows with them and
    # differs between CPUs.
    if not difference <= TOLERANCE * max(1.0, scale):
        raise RunFailure(
            f"the exported {pattern} model differs from the masked one by {difference:.2e} "
            f"in a logit (more than {TOLERANCE:g} × max(1, largest |logit| {scale:.3g})); "
            "report this with the ticket file"
        )
    # A SuperTicket's dense model is the supernet it was drawn from.
    dense = _footprint(masked if pattern == "supertickets" else model, size)
    small = _footprint(exported, size, mask if pattern != "channel" else None, csr)
    summary = Exported(
        pattern,
        out,
        sorted(p.name for p in folder.iterdir()),
        dense,
        small,
        difference,
        notes,
        scale,
    )
    (folder / paths.EXPORT_SUMMARY).write_text(json.dumps(summary.as_dict(), indent=2) + "\n")
    summary.files = sorted(p.name for p in folder.iterdir())
    return summary


def _plain_module(masked: nn.Module, batch: torch.Tensor, folder: Path) -> None:
    """``model.py`` and ``architecture.json`` when slim.py's plain-torch ResNet, built at the
    masked model's widths, gives its logits; else nothing (the weights load with doublewin)."""
    if not hasattr(masked, "layer1") or not hasattr(masked, "fc"):
        return
    try:
        mean, std = get_normalization(masked)
        description = slim.describe(masked, list(mean), list(std))
        plain = slim.SlimResNet(description)
        plain.load_state_dict(masked.state_dict(), strict=True)
    except (AttributeError, TypeError, ValueError, KeyError, IndexError, RuntimeError):
        return  # another block layout (pre-activation, wide): not slim.py's network
    difference, scale = _max_difference(masked, plain.eval(), batch)
    if difference <= TOLERANCE * max(1.0, scale):
        (folder / paths.EXPORT_ARCHITECTURE).write_text(json.dumps(description, indent=2) + "\n")
        shutil.copyfile(slim.__file__, folder / paths.EXPORT_MODULE)


def _check_out(out: Path) -> None:
    """An export replaces an earlier export in ``out``, never a folder of other files."""
    if out.is_dir() and any(out.iterdir()) and not (out / paths.EXPORT_SUMMARY).is_file():
        raise UserError(
            f"--out {out}: a folder of other files (no {paths.EXPORT_SUMMARY} of an export), "
            "which the export would replace; pass a new folder"
        )


def _meta(meta: WeightsMeta, pattern: str, mask: Mask, **extra: Any) -> WeightsMeta:
    return dataclasses.replace(
        meta,
        source="export",
        extra={**dict(meta.extra), "exported": pattern, "mask_hash": mask.content_hash(), **extra},
    )


def _channel(masked: nn.Module, mask: Mask, meta: WeightsMeta, size: int, out: Path) -> nn.Module:
    """The masked network with its pruned channels removed, written as slim.py describes."""
    # deferred: torch-pruning traces and cuts the network; only channel exports need it
    import torch_pruning as tp

    if not hasattr(masked, "layer1"):
        raise UserError(
            f"a channel export writes ResNets (doublewin's {', '.join(_CIFAR_RESNETS)}, "
            f"torchvision's); {meta.arch} is not one; export it as an unstructured ticket"
        )
    physical = copy.deepcopy(masked)
    groups = prunable_groups(channel_groups(physical, size), mask)
    drop = pruned_positions(mask, groups)
    modules = dict(physical.named_modules())
    graph = tp.DependencyGraph().build_dependency(
        physical, example_inputs=torch.rand(1, 3, size, size)
    )
    for group in groups:
        positions = sorted(drop.get(group.name, ()))
        if not positions:
            continue
        name, indices = group.filters[0]
        root = modules[name.rsplit(".", 1)[0]]
        graph.get_pruning_group(
            root, tp.prune_conv_out_channels, idxs=[indices[p] for p in positions]
        ).prune()
    mean, std = (physical.mean.flatten().tolist(), physical.std.flatten().tolist())
    description = slim.describe(physical, mean, std)
    exported = slim.SlimResNet(description)
    exported.load_state_dict(physical.state_dict(), strict=True)
    save_weights(
        out / paths.WEIGHTS, exported, _meta(meta, "channel", mask, architecture=description)
    )
    (out / paths.EXPORT_ARCHITECTURE).write_text(json.dumps(description, indent=2) + "\n")
    shutil.copyfile(slim.__file__, out / paths.EXPORT_MODULE)
    return exported


def _write_csr(model: nn.Module, mask: Mask, path: Path) -> None:
    # deferred: only --csr writes this file
    from safetensors.torch import save_file

    params = dict(model.named_parameters())
    tensors = {}
    for name in mask:
        with warnings.catch_warnings():  # "CSR support is in beta": the format is what we need
            warnings.simplefilter("ignore", UserWarning)
            matrix = params[name].detach().reshape(params[name].shape[0], -1).to_sparse_csr()
        tensors[f"{name}.crow_indices"] = matrix.crow_indices().contiguous()
        tensors[f"{name}.col_indices"] = matrix.col_indices().contiguous()
        tensors[f"{name}.values"] = matrix.values().contiguous()
    shapes = {name: list(params[name].shape) for name in mask}
    save_file(tensors, str(path), metadata={"shapes": json.dumps(shapes)})


def _semi_structured(model: nn.Module, mask: Mask, extra: Any) -> str:
    """Convert every 2:4 layer with ``to_sparse_semi_structured`` where CUDA supports it."""
    n, m = (int(v) for v in (extra or {}).get("nm", (2, 4)))
    if (n, m) != (2, 4):
        return f"{n}:{m} is not the 2:4 pattern sparse tensor cores run; kept the dense form"
    if not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] < 8:
        return "no CUDA GPU with 2:4 sparse tensor cores here: kept the dense form"
    # deferred: torch's semi-structured sparse tensors load only on a GPU that runs them
    from torch.sparse import to_sparse_semi_structured

    params = dict(model.named_parameters())
    worst = 0.0
    converted, dense = 0, []
    for name in mask:
        w = params[name].detach()
        # [out, in, kh, kw] → [out, kh·kw·in]: the 2:4 groups along the input dim, contiguous.
        matrix = w.movedim(1, -1).reshape(w.shape[0], -1).half().cuda()
        try:
            sparse = to_sparse_semi_structured(matrix)
        except (RuntimeError, ValueError):  # a shape the sparse kernels do not take
            dense.append(name.rsplit(".", 1)[0])
            continue
        probe = torch.rand(matrix.shape[1], 64, dtype=torch.half, device="cuda")
        worst = max(worst, float((sparse @ probe - matrix @ probe).abs().max()))
        converted += 1
    kept = f"; kept dense (shapes the 2:4 kernels do not take): {', '.join(dense)}" if dense else ""
    return (
        f"{converted} 2:4 layers converted with to_sparse_semi_structured on CUDA "
        f"(max |Δ| {worst:.1e}){kept}"
    )


def _max_difference(a: nn.Module, b: nn.Module, batch: torch.Tensor) -> tuple[float, float]:
    """The largest |logit difference| of ``b`` against ``a`` on ``batch``, and ``a``'s largest
    |logit|."""
    with torch.no_grad():
        reference = a(batch.float())
        return float((reference - b(batch.float())).abs().max()), float(reference.abs().max())


def _footprint(
    model: nn.Module, size: int, mask: Mask | None = None, csr: bool = False
) -> Footprint:
    """Parameters (a masked tensor counts its kept weights), bytes as stored (dense fp32, or
    CSR for the masked layers with ``csr``) and FLOPs of one [1, 3, size, size] image."""
    params = dict(model.named_parameters())
    count = sum(p.numel() for p in params.values())
    stored = sum(p.numel() * p.element_size() for p in params.values())
    if mask is not None:
        count -= mask.num_pruned
        if csr:
            for m in mask.values():
                kept, rows = int(m.sum()), m.shape[0]
                stored += kept * (4 + 8) + (rows + 1) * 8 - m.numel() * 4
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(torch.rand(1, 3, size, size))
    return Footprint(int(count), int(stored), int(counter.get_total_flops()))
