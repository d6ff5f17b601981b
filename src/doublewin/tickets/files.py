"""Ticket files: one bit-packed mask per pruned tensor, in safetensors, with their provenance.

Layout of a doublewin ticket (``*.safetensors``):

* one ``uint8`` tensor per masked parameter, named like the parameter
  (``layer1.0.conv1.weight``): the mask flattened in row-major order, packed eight weights to
  a byte with ``numpy.packbits`` (first weight in the most significant bit, 1 = kept), then
  compressed with zlib (deflate) when the metadata says ``encoding: packbits+deflate``. At 90%
  sparsity deflate roughly halves the packed bits, which keeps a file (header included) under
  one eighth of the one-byte-per-weight size;
* string metadata: ``format`` (``doublewin-ticket``), ``version``, ``encoding``, ``arch``,
  ``method``, ``target_sparsity`` and ``sparsity`` (global, achieved; fractions), ``kept`` and
  ``total`` (weight counts), ``weights_hash`` (content hash of θp), ``mask_hash`` (see
  `Mask.content_hash`), ``scope`` (JSON `MaskScope`), ``masks`` (JSON name → shape, in
  order), ``spec`` (JSON of the `TicketSpec` that made it) and ``extra`` (JSON, e.g. the IMP
  rung and the cost).

`load_ticket` also reads the official Double-Win-LTH files (see `official.py`).
"""

from __future__ import annotations

import json
import warnings
import zlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes
from torch import nn

from doublewin.errors import UserError
from doublewin.experiments.specs import MaskScope
from doublewin.experiments.store import atomic_write_bytes
from doublewin.tickets.mask import Mask, pack_bits, unpack_bits

FORMAT = "doublewin-ticket"
VERSION = "1"
ENCODINGS = ("packbits+deflate", "packbits")


class TicketWeightsWarning(UserWarning):
    """A ticket is applied to weights other than those it was drawn from."""


@dataclass(frozen=True)
class TicketInfo:
    """Provenance of a ticket. Sparsities are fractions in [0, 1]; hashes are hex strings
    ("" when unknown, e.g. for an official file)."""

    arch: str = ""
    method: str = ""
    target_sparsity: float | None = None
    sparsity: float = 0.0
    kept: int = 0
    total: int = 0
    weights_hash: str = ""
    mask_hash: str = ""
    scope: MaskScope = field(default_factory=MaskScope)
    spec: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    format: str = FORMAT

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["scope"] = {
            "include_linear": self.scope.include_linear,
            "exclude": list(self.scope.exclude),
        }
        return out


@dataclass(frozen=True)
class Ticket:
    """A mask and where it came from."""

    mask: Mask
    info: TicketInfo

    def fit(
        self, model: nn.Module, *, weights_hash: str = "", arch: str = "", source: str = "ticket"
    ) -> Mask:
        """The mask, checked against ``model``.

        A ticket for another architecture or other shapes is a UserError. Weights other than
        those the ticket was drawn from are allowed, with a `TicketWeightsWarning` naming both
        content hashes (pass ``weights_hash`` of the weights the model holds).
        """
        if arch and self.info.arch and arch != self.info.arch:
            raise UserError(
                f"{source} was drawn for {self.info.arch}, the model is {arch}; "
                f"use a ticket drawn for {arch}"
            )
        self.mask.check_fits(model, what=source)
        if weights_hash and self.info.weights_hash and weights_hash != self.info.weights_hash:
            warnings.warn(
                f"{source} was drawn from weights {self.info.weights_hash} but is applied to "
                f"weights {weights_hash}",
                TicketWeightsWarning,
                stacklevel=2,
            )
        return self.mask


def make_info(
    mask: Mask,
    *,
    arch: str,
    method: str,
    weights_hash: str,
    target_sparsity: float | None = None,
    scope: MaskScope | None = None,
    spec: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> TicketInfo:
    """TicketInfo with the counts and the mask hash computed from ``mask``."""
    return TicketInfo(
        arch=arch,
        method=method,
        target_sparsity=target_sparsity,
        sparsity=mask.sparsity,
        kept=mask.num_kept,
        total=mask.num_total,
        weights_hash=weights_hash,
        mask_hash=mask.content_hash(),
        scope=scope or MaskScope(),
        spec=dict(spec or {}),
        extra=dict(extra or {}),
    )


def ticket_bytes(ticket: Ticket, *, encoding: str = "packbits+deflate") -> bytes:
    """The safetensors bytes of a doublewin ticket file."""
    if encoding not in ENCODINGS:
        raise UserError(f"ticket encoding {encoding!r} unknown; use one of {', '.join(ENCODINGS)}")
    tensors: dict[str, torch.Tensor] = {}
    shapes: dict[str, list[int]] = {}
    for name, m in ticket.mask.items():
        packed = pack_bits(m)
        data = packed.tobytes()
        if encoding == "packbits+deflate":
            data = zlib.compress(data, 6)
        tensors[name] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        shapes[name] = list(m.shape)
    info = ticket.info
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "encoding": encoding,
        "arch": info.arch,
        "method": info.method,
        "target_sparsity": "" if info.target_sparsity is None else repr(info.target_sparsity),
        "sparsity": repr(ticket.mask.sparsity),
        "kept": str(ticket.mask.num_kept),
        "total": str(ticket.mask.num_total),
        "weights_hash": info.weights_hash,
        "mask_hash": ticket.mask.content_hash(),
        "scope": json.dumps(info.as_dict()["scope"], sort_keys=True),
        "masks": json.dumps(shapes),
        "spec": json.dumps(dict(info.spec), sort_keys=True, default=str),
        "extra": json.dumps(dict(info.extra), sort_keys=True, default=str),
    }
    return safetensors_bytes(tensors, metadata)


def save_ticket(path: str | Path, ticket: Ticket, *, encoding: str = "packbits+deflate") -> Path:
    """Write ``ticket`` to ``path`` atomically (temporary name, then rename). Returns the path."""
    path = Path(path)
    atomic_write_bytes(path, ticket_bytes(ticket, encoding=encoding))
    return path


def is_doublewin_ticket(path: str | Path) -> bool:
    """True when ``path`` is a safetensors file whose metadata says it is a doublewin ticket."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return (handle.metadata() or {}).get("format") == FORMAT
    except (SafetensorError, OSError, ValueError):
        return False


def load_ticket(path: str | Path) -> Ticket:
    """Read a doublewin ticket or an official Double-Win-LTH mask file (by content)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found; pass the path of a ticket file")
    if _looks_like_safetensors(path):
        return _load_doublewin(path)
    from doublewin.tickets.official import load_official

    return load_official(path)


def _looks_like_safetensors(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(9)
    if len(head) < 9:
        return False
    header_len = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 0 < header_len <= path.stat().st_size


def _load_doublewin(path: Path) -> Ticket:
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = dict(handle.metadata() or {})
            if meta.get("format") != FORMAT:
                raise UserError(
                    f"{path}: a safetensors file but not a doublewin ticket (weights?); "
                    "pass a ticket made by `doublewin find-tickets`"
                )
            if meta.get("version") != VERSION:
                raise UserError(
                    f"{path}: ticket format version {meta.get('version')!r} is not "
                    f"supported (this doublewin reads version {VERSION}); upgrade"
                )
            encoding = meta.get("encoding", "packbits")
            if encoding not in ENCODINGS:
                raise UserError(f"{path}: unknown mask encoding {encoding!r}")
            shapes = json.loads(meta["masks"])
            mask = Mask()
            for name, shape in shapes.items():
                data = handle.get_tensor(name).numpy().tobytes()
                if encoding == "packbits+deflate":
                    data = zlib.decompress(data)
                mask[name] = unpack_bits(np.frombuffer(data, dtype=np.uint8), shape)
    except (SafetensorError, KeyError, json.JSONDecodeError, zlib.error) as exc:
        raise UserError(
            f"{path}: damaged ticket file ({exc}); make it again with `doublewin find-tickets`"
        ) from None
    scope_raw = json.loads(meta.get("scope") or "{}")
    scope = MaskScope(
        include_linear=bool(scope_raw.get("include_linear", False)),
        exclude=tuple(scope_raw.get("exclude", ())),
    )
    target = meta.get("target_sparsity", "")
    info = TicketInfo(
        arch=meta.get("arch", ""),
        method=meta.get("method", ""),
        target_sparsity=float(target) if target else None,
        sparsity=mask.sparsity,
        kept=mask.num_kept,
        total=mask.num_total,
        weights_hash=meta.get("weights_hash", ""),
        mask_hash=mask.content_hash(),
        scope=scope,
        spec=json.loads(meta.get("spec") or "{}"),
        extra=json.loads(meta.get("extra") or "{}"),
    )
    stored_hash = meta.get("mask_hash", "")
    if stored_hash and stored_hash != info.mask_hash:
        raise UserError(
            f"{path}: mask content does not match its recorded hash "
            f"({stored_hash}); the file is damaged, make it again"
        )
    return Ticket(mask, info)
