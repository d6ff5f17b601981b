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
import zlib
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from doublewin.core.atomic import atomic_write_bytes
from doublewin.core.errors import UserError
from doublewin.core.foreign import TICKET_FILE, reading
from doublewin.core.specs import MaskScope
from doublewin.tickets.mask import Mask, pack_bits, unpack_bits
from doublewin.tickets.official import load_official
from doublewin.tickets.patterned import verified
from doublewin.tickets.ticket import FORMAT, Ticket, TicketInfo

VERSION = "1"
ENCODINGS = ("packbits+deflate", "packbits")


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
    """Write ``ticket`` to ``path`` atomically (temporary name, then rename). Returns the path.

    A ticket that keeps no weight is refused: every prediction would be the biases'."""
    path = Path(path)
    if ticket.mask.num_total and ticket.mask.num_kept == 0:
        raise UserError(
            f"{path}: this ticket keeps no weight at all (100% sparse); choose a sparsity "
            "below 1, e.g. 0.9"
        )
    atomic_write_bytes(path, ticket_bytes(ticket, encoding=encoding))
    return path


def load_ticket(path: str | Path, *, verify: bool = True) -> Ticket:
    """Read a doublewin ticket or an official Double-Win-LTH mask file (by content); with
    ``verify``, its mask must hold the pattern its file records (patterned.verified)."""
    with reading(path, *TICKET_FILE) as path:
        ticket = _load_doublewin(path) if looks_like_safetensors(path) else load_official(path)
    return verified(path, ticket) if verify else ticket


def looks_like_safetensors(path: Path) -> bool:
    """Whether ``path`` starts as a safetensors file (a doublewin ticket, not an official
    torch state dict)."""
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
