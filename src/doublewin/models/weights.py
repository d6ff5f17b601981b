"""Weights files: safetensors with doublewin metadata and a content hash.

The content hash is what ticket and transfer specs refer to: SHA-256 over the sorted
(name, dtype, shape, bytes) of the state dict, first 16 hex digits. Metadata values are
JSON-encoded strings (safetensors metadata is string → string).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from doublewin.core.atomic import atomic_path
from doublewin.core.errors import UserError
from doublewin.core.foreign import WEIGHTS_FILE, reading
from doublewin.core.paths import TICKET_FORMAT
from doublewin.models.architectures import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_model,
    set_normalization,
)
from doublewin.models.hf import build_from_config
from doublewin.models.slim import SlimResNet
from doublewin.models.supernets import build_supernet, is_description

FORMAT = "doublewin-weights-1"


@dataclass(frozen=True)
class WeightsMeta:
    """What a weights file says about itself. Accuracies in points (0–100) on the source
    dataset's validation split; ``eps`` in [0,1] pixel units."""

    arch: str
    num_classes: int
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    input_size: int = 224
    dataset: str = ""
    regime: str = "unknown"  # std | fat | at | control (not trained) | unknown
    eps: float | None = None
    attack_steps: int | None = None
    source: str = "pretrain"  # pretrain | torchvision | robustness | fast-adversarial | transfer
    source_sa: float | None = None
    source_ra: float | None = None
    content_hash: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def content_hash(state_dict: Mapping[str, torch.Tensor]) -> str:
    """16 hex digits of SHA-256 over the sorted (name, dtype, shape, bytes)."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(
            tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        )
    return digest.hexdigest()[:16]


def _state(model_or_state: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = (
        model_or_state.state_dict()
        if isinstance(model_or_state, nn.Module)
        else dict(model_or_state)
    )
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def save_weights(
    path: str | Path,
    model_or_state: nn.Module | Mapping[str, torch.Tensor],
    meta: WeightsMeta,
    *,
    stamp: Mapping[str, str] | None = None,
) -> str:
    """Write weights and metadata atomically; returns the content hash. ``stamp``: plain
    string entries added to the header as they are (a certified export's certificate hash,
    sparsity and pattern), for tools that read safetensors metadata without doublewin."""
    state = _state(model_or_state)
    digest = content_hash(state)
    meta = dataclasses.replace(meta, content_hash=digest)
    header = {key: json.dumps(value) for key, value in meta.as_dict().items()}
    clash = sorted(set(stamp or {}) & {*header, "format"})
    if clash:
        raise ValueError(f"stamp entries {clash} would replace weights metadata")
    header.update(stamp or {})
    header["format"] = FORMAT
    with atomic_path(Path(path)) as tmp:
        save_file(state, str(tmp), metadata=header)
    return digest


def _read_meta(raw: Mapping[str, str], path: Path) -> WeightsMeta:
    if raw.get("format") == TICKET_FORMAT:
        raise UserError(
            f"{path}: a ticket file, not weights; pass it as --ticket and the weights it was "
            "drawn from as --weights"
        )
    if raw.get("format") != FORMAT:
        raise UserError(
            f"{path}: a safetensors file without doublewin metadata; convert it "
            "with doublewin import-weights"
        )
    values = {}
    for f in dataclasses.fields(WeightsMeta):
        if f.name in raw:
            values[f.name] = json.loads(raw[f.name])
    for key in ("mean", "std"):
        if key in values:
            values[key] = tuple(values[key])
    return WeightsMeta(**values)


def read_content_hash(path: str | Path) -> str | None:
    """The content hash a doublewin weights file records in its metadata (None when the file
    is unreadable or not a doublewin weights file); reads the header only."""
    meta = read_weights_meta(path)
    return (meta.content_hash or None) if meta is not None else None


def read_weights_header(path: str | Path) -> dict[str, str]:
    """Every metadata entry of a safetensors file, as stored (strings); reads the header
    only. A file that is not safetensors is one UserError naming it."""
    with reading(path, *WEIGHTS_FILE) as path, safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


def read_weights_meta(path: str | Path) -> WeightsMeta | None:
    """The metadata a doublewin weights file records (None when the file is unreadable or
    not a doublewin weights file); reads the header only, no tensor."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError):
        return None
    if raw.get("format") != FORMAT:
        return None
    return _read_meta(raw, Path(path))


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], WeightsMeta]:
    """The state dict and metadata of a doublewin weights file."""
    with reading(path, *WEIGHTS_FILE) as path:
        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
        meta = _read_meta(raw, path)
        state = load_file(str(path))
    if meta.content_hash:
        # The recorded hash covers every tensor's bytes: flipped bytes behind an intact
        # header are caught here, not later as a mysterious accuracy.
        actual = content_hash(state)
        if actual != meta.content_hash:
            raise UserError(
                f"{path}: corrupt weights file: its tensors hash to {actual}, its metadata "
                f"records {meta.content_hash}; make or copy the file again"
            )
    for name, tensor in state.items():
        # A NaN or an infinity in θp is a broken file, not a learning rate to lower.
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise UserError(
                f"{path}: {name} holds NaN or infinite values; these weights are broken "
                "(a diverged run?): train or import them again"
            )
    return state, meta


def load_model(
    path: str | Path, *, device: str | torch.device = "cpu"
) -> tuple[nn.Module, WeightsMeta]:
    """Build ``meta.arch``, load the weights strictly, set the normalization. A network at its
    own widths (``extra.architecture``: a channel ticket's export, slim.py, or a SuperTicket's
    shrunk supernet, supernet.py) is built from its description."""
    state, meta = load_weights(path)
    if isinstance(meta.extra.get("hf_config"), Mapping):
        # A Hugging Face text encoder: token ids in, no image normalization.
        model = build_from_config(dict(meta.extra["hf_config"]), meta.num_classes)
        load_strict(model, state, source=str(path))
        return model.to(device), meta
    architecture = meta.extra.get("architecture")
    if isinstance(architecture, Mapping):
        # A network at its own widths: a SuperTicket's shrunk supernet, or a channel export.
        described = dict(architecture)
        model = build_supernet(described) if is_description(described) else SlimResNet(described)
        model.arch = meta.arch  # type: ignore[attr-defined]
    else:
        model = build_model(meta.arch, meta.num_classes, mean=meta.mean, std=meta.std)
    load_strict(model, state, source=str(path))
    set_normalization(model, meta.mean, meta.std)
    return model.to(device), meta


def load_strict(
    model: nn.Module, state: Mapping[str, torch.Tensor], *, source: str, hint: str = "wrong --arch?"
) -> None:
    """load_state_dict(strict=True) with one clear error listing what does not fit."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys (e.g. {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(
                f"{len(shapes)} shape mismatches (e.g. {shapes[0]}: "
                f"{tuple(state[shapes[0]].shape)} vs {tuple(expected[shapes[0]].shape)})"
            )
        raise UserError(f"{source} does not fit the model: {'; '.join(parts)}; {hint}")
    model.load_state_dict(dict(state), strict=True)
