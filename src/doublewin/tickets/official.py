"""The official Double-Win-LTH ticket format, read and written losslessly.

An official ticket is a torch-saved state dict (sometimes nested under ``state_dict``, keys
sometimes prefixed ``module.``) made with ``torch.nn.utils.prune``: ``<module>.weight_mask``
holds the 0/1 float mask of each pruned tensor, next to ``<module>.weight_orig`` and the
other weights. Only the ``*_mask`` entries make the ticket. Files are read with
``torch.load(weights_only=True)``, so they never run code.

When doublewin writes an official file it adds one entry, ``doublewin_metadata``: the ticket's
provenance as UTF-8 JSON in a uint8 tensor. Loaders that pick the ``*_mask`` keys (as the
official code does) ignore it, and converting such a file back restores the doublewin ticket
exactly.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from doublewin.core.atomic import atomic_write_bytes
from doublewin.core.errors import UserError
from doublewin.core.foreign import reading
from doublewin.core.specs import MaskScope
from doublewin.models import build_model, list_architectures
from doublewin.tickets.mask import Mask, prunable_parameters
from doublewin.tickets.ticket import Ticket, TicketInfo, make_info

MASK_SUFFIX = "_mask"
METADATA_KEY = "doublewin_metadata"


def mask_key(param_name: str) -> str:
    """``layer1.0.conv1.weight`` → ``layer1.0.conv1.weight_mask``."""
    return param_name + MASK_SUFFIX


def official_state(
    ticket: Ticket, *, weights: Mapping[str, torch.Tensor] | None = None, metadata: bool = True
) -> dict[str, torch.Tensor]:
    """The official state dict of ``ticket``: float32 0/1 ``*_mask`` tensors.

    ``weights`` (a state dict of θp) adds what torch.nn.utils.prune leaves in a pruned model's
    state dict: ``<name>_orig`` for each masked tensor and every other entry unchanged, so the
    file loads into a pruned model like the official checkpoints.
    """
    state: dict[str, torch.Tensor] = {}
    if weights is not None:
        missing = [n for n in ticket.mask if n not in weights]
        if missing:
            raise UserError(
                f"the weights have no tensor {missing[0]!r} that the ticket masks; "
                "pass the weights the ticket was drawn from"
            )
        for name, value in weights.items():
            state[name + "_orig" if name in ticket.mask else name] = value.detach().cpu()
    for name, m in ticket.mask.items():
        state[mask_key(name)] = m.to(torch.float32).cpu()
    if metadata:
        blob = json.dumps(ticket.info.as_dict(), sort_keys=True, default=str).encode()
        state[METADATA_KEY] = torch.frombuffer(bytearray(blob), dtype=torch.uint8)
    return state


def save_official(
    path: str | Path,
    ticket: Ticket,
    *,
    weights: Mapping[str, torch.Tensor] | None = None,
    metadata: bool = True,
) -> Path:
    """Write ``ticket`` as an official state dict with torch.save, atomically."""
    buffer = io.BytesIO()
    torch.save(official_state(ticket, weights=weights, metadata=metadata), buffer)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def read_official_state(path: str | Path) -> dict[str, Any]:
    """The state dict of an official file (unwrapped from ``state_dict``), weights only."""
    expected = "a doublewin ticket or a torch state dict of masks"
    with reading(path, expected, "pass a ticket file") as path:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise UserError(
            f"{path}: holds a {type(obj).__name__}, not a state dict of masks; pass a ticket file"
        )
    return dict(obj)


def load_official(path: str | Path, *, arch: str = "") -> Ticket:
    """A `Ticket` from an official file. ``arch`` is taken from doublewin metadata when the
    file carries it, else from ``arch``, else inferred from the mask names and shapes
    (left empty when no single architecture fits)."""
    path = Path(path)
    state = read_official_state(path)
    raw = {
        k: v
        for k, v in state.items()
        if isinstance(k, str) and k.endswith(MASK_SUFFIX) and isinstance(v, torch.Tensor)
    }
    if not raw:
        raise UserError(f"{path}: no '<module>.weight_mask' entries; not a pruning-mask file")
    keys = list(raw)
    if all(k.startswith("module.") for k in keys):  # saved from DataParallel
        raw = {k[len("module.") :]: v for k, v in raw.items()}
    try:
        mask = Mask.from_tensors({k[: -len(MASK_SUFFIX)]: v for k, v in raw.items()})
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    embedded = state.get(METADATA_KEY)
    if isinstance(embedded, torch.Tensor) and embedded.dtype == torch.uint8:
        meta = json.loads(bytes(embedded.tolist()).decode())
        scope_raw = meta.get("scope") or {}
        scope = MaskScope(
            include_linear=bool(scope_raw.get("include_linear", False)),
            exclude=tuple(scope_raw.get("exclude", ())),
        )
        target = meta.get("target_sparsity")
        info = make_info(
            mask,
            arch=arch or meta.get("arch", ""),
            method=meta.get("method", ""),
            weights_hash=meta.get("weights_hash", ""),
            target_sparsity=None if target is None else float(target),
            scope=scope,
            spec=meta.get("spec") or {},
            extra=meta.get("extra") or {},
        )
        return Ticket(mask, _as_official(info, "official+doublewin"))
    inferred_scope = MaskScope()
    if not arch:
        arch, inferred_scope = infer_arch(mask)
    elif arch:
        inferred_scope = _scope_for(arch, mask)
    info = make_info(
        mask,
        arch=arch,
        method="official",
        weights_hash="",
        scope=inferred_scope,
        extra={"source": str(path)},
    )
    return Ticket(mask, _as_official(info, "official"))


def _as_official(info: TicketInfo, fmt: str) -> TicketInfo:
    return TicketInfo(**{**info.__dict__, "format": fmt})


def _candidate_models() -> list[tuple[str, nn.Module]]:
    """Every registered architecture, built on the meta device (no memory, no init)."""
    out = []
    for info in list_architectures():
        try:
            with torch.device("meta"):
                out.append((info.name, build_model(info.name, 1000)))
        except Exception:  # an architecture that cannot be built on meta is skipped
            continue
    return out


def _fits(mask: Mask, model: nn.Module) -> bool:
    params = dict(model.named_parameters())
    # The head's shape depends on the class count, so 2-D masks only need matching names.
    return all(
        n in params and (m.dim() == 2 or tuple(params[n].shape) == tuple(m.shape))
        for n, m in mask.items()
    )


def _scope_of(mask: Mask, model: nn.Module) -> MaskScope:
    include_linear = any(
        isinstance(mod, nn.Linear) and f"{name}.weight" in mask
        for name, mod in model.named_modules()
    )
    default = prunable_parameters(model, MaskScope(include_linear=include_linear))
    excluded = tuple(n[: -len(".weight")] for n in default if n not in mask)
    return MaskScope(include_linear=include_linear, exclude=excluded)


def _scope_for(arch: str, mask: Mask) -> MaskScope:
    for name, model in _candidate_models():
        if name == arch:
            if not _fits(mask, model):
                raise UserError(
                    f"the masks do not fit {arch}; check --arch (see `doublewin models`)"
                )
            return _scope_of(mask, model)
    raise UserError(f"--arch {arch}: unknown architecture; see `doublewin models`")


def infer_arch(mask: Mask) -> tuple[str, MaskScope]:
    """The one registered architecture whose prunable tensors the mask fits, preferring an
    exact cover of the default parameter set; ("", default scope) when none or several fit."""
    fitting = [(name, model) for name, model in _candidate_models() if _fits(mask, model)]
    exact = [
        (name, model) for name, model in fitting if set(prunable_parameters(model)) <= set(mask)
    ]
    chosen = exact if exact else fitting
    if len(chosen) != 1:
        return "", MaskScope()
    name, model = chosen[0]
    return name, _scope_of(mask, model)
