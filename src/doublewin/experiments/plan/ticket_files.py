"""Tickets you already have: ``pretrain.runs.<label>.tickets: {files: PATH}``.

An experiment can transfer ticket files instead of drawing tickets: an earlier run's, a
colleague's, or the official Double-Win-LTH ``*_mask`` files. ``files`` is a folder (every
ticket file in it) or a list of files; the rungs are the files' sparsities. Each file is read
and checked against the pre-training's architecture when the experiment is parsed, before
anything runs. A transfer names its ticket by the mask's content hash (``mask-<hash>``), so
the same mask in doublewin and in official format is the same store entry.

Each file's ladder comes from its own metadata (method, IMP regime); an official file without
doublewin metadata is an IMP ticket (what the official code draws) unless the entry says
``method:`` (and ``imp_regime:``) itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from doublewin.core import paths
from doublewin.core.errors import UserError
from doublewin.core.results import SPARSITY_DIGITS
from doublewin.data import dataset_info
from doublewin.models import build_model, read_weights_meta
from doublewin.tickets import load_ticket

TICKET_SUFFIXES = paths.TICKET_SUFFIXES
FILE_KEYS = ("files", "method", "imp_regime")
MASK_REF_PREFIX = "mask-"


@dataclass(frozen=True)
class TicketFile:
    """One ticket file of a pre-training: where it is, the mask's content hash (its store
    reference), its sparsity and the ladder it sits on."""

    path: Path
    mask_hash: str
    sparsity: float
    method: str
    imp_regime: str
    pattern: str = "unstructured"

    @property
    def ref(self) -> str:
        return f"{MASK_REF_PREFIX}{self.mask_hash}"


def parse_ticket_files(
    raw: Any, key: str, *, arch: str | None, num_classes: int | None
) -> tuple[TicketFile, ...]:
    """The files ``raw`` (the entry's ``tickets`` mapping) names, read and checked against
    ``arch`` (None: an imported file whose architecture is unknown)."""
    if not isinstance(raw, Mapping) or "files" not in raw:
        raise UserError(
            f"{key}: expected true, false or {{files: FOLDER_OR_LIST}} (ticket files to "
            "transfer instead of drawing tickets)"
        )
    unknown = sorted(set(raw) - set(FILE_KEYS))
    if unknown:
        raise UserError(f"{key}.{unknown[0]}: unknown key; known keys: {', '.join(FILE_KEYS)}")
    paths = _ticket_paths(raw["files"], f"{key}.files")
    model = _shapes_of(arch, num_classes)
    out = []
    for path in paths:
        ticket = load_ticket(path)
        if arch and ticket.info.arch and ticket.info.arch != arch:
            raise UserError(
                f"{path}: a ticket for {ticket.info.arch}, but this pre-training is {arch}; "
                f"pass tickets drawn for {arch}"
            )
        if model is not None:
            ticket.mask.check_fits(model, what=str(path))
        method, imp_regime = _ladder(ticket, raw)
        out.append(
            TicketFile(
                path=path.resolve(),
                mask_hash=ticket.mask.content_hash(),
                sparsity=round(float(ticket.mask.sparsity), SPARSITY_DIGITS),
                method=method,
                imp_regime=imp_regime,
                pattern=str((ticket.info.extra or {}).get("pattern") or "unstructured"),
            )
        )
    return _distinct_files(out, key)


def _distinct_files(files: list[TicketFile], key: str) -> tuple[TicketFile, ...]:
    """``files``, or one UserError where two hold one mask (a file listed twice, or one mask
    in both formats) or sit on one rung of one ladder: the grid would run one of them."""
    seen: dict[object, Path] = {}
    for f in files:
        for what, identity in (
            ("the same mask as", f.mask_hash),
            ("the same rung as", (f.method, f.imp_regime, f.pattern, f.sparsity)),
        ):
            if identity in seen:
                raise UserError(
                    f"{key}: {f.path} holds {what} {seen[identity]} ({f.method} at sparsity "
                    f"{f.sparsity:g}), and would run once; keep one of them"
                )
            seen[identity] = f.path
    return tuple(files)


def _ticket_paths(value: Any, key: str) -> list[Path]:
    items = value if isinstance(value, (list, tuple)) else [value]
    paths: list[Path] = []
    for item in items:
        if not isinstance(item, str):
            raise UserError(f"{key}: expected a folder or file path, got {item!r}")
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in TICKET_SUFFIXES)
            if not found:
                raise UserError(
                    f"{key}: {path} holds no ticket file ({', '.join(TICKET_SUFFIXES)}); "
                    "pass the folder doublewin find-tickets wrote, or ticket files"
                )
            paths += found
        elif path.is_file():
            paths.append(path)
        else:
            raise UserError(f"{key}: {path} not found; pass a folder of ticket files or files")
    return paths


def _shapes_of(arch: str | None, num_classes: int | None) -> torch.nn.Module | None:
    if not arch:
        return None
    # Built on the meta device: the parameter shapes a mask must fit, without any memory.
    with torch.device("meta"):
        return build_model(arch, num_classes or 10)


def _ladder(ticket: Any, raw: Mapping[str, Any]) -> tuple[str, str]:
    recorded = ticket.info.method if ticket.info.method not in ("", "official") else ""
    method = str(raw.get("method") or recorded or "imp")
    regime = raw.get("imp_regime")
    if regime is None and method == "imp":
        regime = ((ticket.info.spec or {}).get("train") or {}).get("regime", "")
    return method, str(regime or "") if method == "imp" else ""


def source_of(
    arch: str, data_name: str | None, weights: Path | None
) -> tuple[str | None, int | None]:
    """The architecture and class count a pre-training's tickets must fit: a trained one's
    spec, or an imported file's recorded metadata (None when it records none)."""
    if weights is not None:
        meta = read_weights_meta(weights)
        return (meta.arch, meta.num_classes) if meta is not None else (None, None)
    return arch, dataset_info(data_name).num_classes if data_name else None
