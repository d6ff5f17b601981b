"""Import the checkpoints users already have: torchvision, MadryLab robustness, fast_adversarial.

Checkpoints are pickles, and unpickling can run arbitrary code. They are read with
``torch.load(weights_only=True)``, which builds only tensors and plain containers; a file that
needs more (robustness files are pickled with dill) is refused unless the caller passes
``trust_pickle=True`` (``--trust-pickle``) after deciding to trust its source.

- torchvision: a plain state dict (also under ``state_dict`` or ``model``).
- robustness (Salman et al.): ``model`` (older files: ``state_dict``); exactly the keys that
  start with ``module.model.`` are kept and that prefix is stripped — the attacker's copy
  ``module.attacker.model.*`` and the normalizer buffers are dropped; the normalizer must hold
  ImageNet's mean/std.
- fast-adversarial (Wong et al.): ``state_dict`` with a ``module.`` prefix; normalization was
  outside the model, so the imported model gets ImageNet's mean/std inside.
"""

from __future__ import annotations

import pickle
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file

from doublewin.core import paths
from doublewin.core.errors import UserError
from doublewin.core.foreign import reading
from doublewin.models.architectures import IMAGENET_MEAN, IMAGENET_STD, arch_info, build_model
from doublewin.models.heads import head_name
from doublewin.models.hf import load_encoder
from doublewin.models.robustbench import (
    Entry,
    entries_with_signature,
    entry_state,
    find_entry,
    is_robustbench_name,
    state_signature,
)
from doublewin.models.weights import WeightsMeta, content_hash, load_strict, read_weights_meta

Format = Literal["torchvision", "robustness", "fast-adversarial", "robustbench", "huggingface"]
FORMATS: tuple[str, ...] = (
    "torchvision",
    "robustness",
    "fast-adversarial",
    "robustbench",
    "huggingface",
)
REGIME = {
    "torchvision": "std",
    "robustness": "at",
    "fast-adversarial": "fat",
    "robustbench": "at",
    "huggingface": "std",
}
# RobustBench's CIFAR models take [0, 1] pixels; most normalize nothing.
NO_NORMALIZATION = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
ROBUSTNESS_PREFIX = "module.model."


def read_checkpoint(path: Path, *, trust_pickle: bool = False) -> Any:
    """The object in a checkpoint file, loaded without running code unless trusted."""
    fix = "pass a .pt/.pth/.tar checkpoint or a .safetensors file"
    with reading(path, "a checkpoint (torch.save or safetensors)", fix) as path:
        return _read(path, trust_pickle=trust_pickle)


def _read(path: Path, *, trust_pickle: bool) -> Any:
    if path.suffix == paths.SAFETENSORS:
        return load_file(str(path))
    if not _looks_like_torch(path):
        raise UserError(
            f"{path}: not a torch checkpoint (neither torch's zip format nor a pickle); pass "
            "a .pt/.pth/.tar checkpoint or a .safetensors file"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not trust_pickle:
            raise UserError(
                f"{path} needs full unpickling ({str(exc).splitlines()[0][:120]}); unpickling "
                "can run arbitrary code, so it is refused — pass --trust-pickle only if you "
                "trust where the file came from"
            ) from None
    except Exception as exc:
        raise UserError(
            f"{path}: not a torch checkpoint ({type(exc).__name__}); pass a .pt/"
            ".pth/.tar checkpoint or a .safetensors file"
        ) from None
    return torch.load(path, map_location="cpu", weights_only=False)


def _looks_like_torch(path: Path) -> bool:
    """torch.save's zip archive, a pickle (protocol marker 0x80) or the legacy tar format."""
    with open(path, "rb") as handle:
        head = handle.read(2)
    return head == b"PK" or head[:1] == b"\x80" or tarfile.is_tarfile(path)


def _tensors(obj: Any, path: Path, keys: tuple[str, ...]) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in keys:
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
    raise UserError(
        f"{path}: no state dict found (looked under {', '.join(keys)}); wrong --format?"
    )


def convert_state(obj: Any, fmt: str, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict with torchvision names, notes) for a loaded checkpoint of ``fmt``."""
    notes: dict[str, Any] = {}
    if fmt == "torchvision":
        return _tensors(obj, path, ("state_dict", "model")), notes
    if fmt == "robustness":
        raw = _tensors(obj, path, ("model", "state_dict"))
        state = {
            k[len(ROBUSTNESS_PREFIX) :]: v
            for k, v in raw.items()
            if k.startswith(ROBUSTNESS_PREFIX)
        }
        if not state:
            raise UserError(
                f"{path}: no keys start with {ROBUSTNESS_PREFIX!r}; not a "
                "robustness checkpoint — wrong --format?"
            )
        for name, expected in (("new_mean", IMAGENET_MEAN), ("new_std", IMAGENET_STD)):
            value = raw.get(f"module.normalizer.{name}")
            if value is None:
                continue
            found = tuple(round(float(v), 4) for v in value.flatten())
            notes[f"normalizer_{name}"] = found
            if not torch.allclose(value.flatten().float(), torch.tensor(expected), atol=1e-3):
                raise UserError(
                    f"{path}: normalizer {name} is {found}, not ImageNet's "
                    f"{expected}; this importer expects ImageNet models"
                )
        return state, notes
    if fmt == "fast-adversarial":
        raw = _tensors(obj, path, ("state_dict",))
        if not all(k.startswith("module.") for k in raw):
            raise UserError(
                f"{path}: fast_adversarial keys start with 'module.'; these do "
                "not — wrong --format?"
            )
        return {k[len("module.") :]: v for k, v in raw.items()}, notes
    if fmt == "robustbench":
        return _robustbench(obj, path)
    raise UserError(f"--format {fmt}: use one of {', '.join(FORMATS)}")


def _robustbench(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A RobustBench model file: the state dict (also under ``state_dict`` or
    ``model_state_dict``), DataParallel's ``module.`` prefix stripped, the unused
    ``sub_block1`` of TRADES-era WideResNets dropped, and the ``mu``/``sigma`` buffers of the
    models that normalize inside read as the normalization."""
    raw = _tensors(obj, path, ("last", "state_dict", "model_state_dict", "model"))
    if raw and all(k.startswith("module.") for k in raw):
        raw = {k[len("module.") :]: v for k, v in raw.items()}
    notes: dict[str, Any] = {}
    dropped = [k for k in raw if k.startswith("sub_block1.")]
    if dropped:
        notes["dropped_unused"] = f"sub_block1 ({len(dropped)} tensors)"
    state = {
        k: v for k, v in raw.items() if not k.startswith("sub_block1.") and k not in ("mu", "sigma")
    }
    if "mu" in raw and "sigma" in raw:
        notes["mean"] = tuple(float(v) for v in raw["mu"].flatten())
        notes["std"] = tuple(float(v) for v in raw["sigma"].flatten())
    return state, notes


def import_checkpoint(
    path: str | Path,
    *,
    format: str,
    arch: str,
    trust_pickle: bool = False,
    eps: float | None = None,
    num_classes: int = 2,
) -> tuple[dict[str, torch.Tensor], WeightsMeta]:
    """Read ``path`` in ``format`` for ``arch``; returns the strict-checked state dict and the
    metadata of the doublewin weights file to write. A ``huggingface`` folder names its own
    architecture and gets a fresh ``num_classes`` classifier."""
    path = Path(path)
    if format not in FORMATS:
        raise UserError(f"--format {format}: use one of {', '.join(FORMATS)}")
    if path.is_file() and read_weights_meta(path) is not None:
        raise UserError(
            f"{path}: already a doublewin weights file; use it as it is (import-weights "
            "converts foreign checkpoints, and would give it another normalization under the "
            "same content hash)"
        )
    if format == "huggingface":
        model, config = load_encoder(path, num_classes)
        state = model.state_dict()
        meta = WeightsMeta(
            arch=model.arch,
            num_classes=num_classes,
            input_size=int(config.get("max_position_embeddings", 512)),
            dataset="text",
            regime="std",
            source="huggingface",
            content_hash=content_hash(state),
            extra={"imported_from": str(path), "hf_config": config},
        )
        return state, meta
    info = arch_info(arch)
    obj = read_checkpoint(path, trust_pickle=trust_pickle)
    if is_robustbench_name(arch):
        if format != "robustbench":
            raise UserError(
                f"--arch {arch} reads RobustBench's checkpoint files; pass --format robustbench"
            )
        return _import_entry(obj, find_entry(arch), path, eps)
    state, notes = convert_state(obj, format, path)
    with torch.device("meta"):
        head = head_name(build_model(arch, 10))
    fc = state.get(f"{head}.weight")
    if fc is None:
        raise UserError(
            f"{path}: no {head}.weight after conversion, so it is not a {arch} checkpoint; wrong "
            "--format or --arch?"
        )
    if format == "robustbench":
        mean, std = notes.pop("mean", NO_NORMALIZATION[0]), notes.pop("std", NO_NORMALIZATION[1])
    else:
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    model = build_model(arch, int(fc.shape[0]), mean=mean, std=std)
    hint = f"wrong --arch ({arch}?) or wrong --format ({format}?)"
    if format == "robustbench":
        hint = robustbench_hint(obj, path) or hint
    load_strict(model, state, source=str(path), hint=hint)
    meta = WeightsMeta(
        arch=arch,
        num_classes=int(fc.shape[0]),
        mean=tuple(mean),
        std=tuple(std),
        input_size=info.input_size,
        dataset="cifar10" if format == "robustbench" else "imagenet",
        regime=REGIME[format],
        eps=eps,
        source=format,
        content_hash=content_hash(state),
        extra={"imported_from": str(path), **notes},
    )
    return model.state_dict(), meta


def _import_entry(
    obj: Any, entry: Entry, path: Path, eps: float | None
) -> tuple[dict[str, torch.Tensor], WeightsMeta]:
    """A RobustBench checkpoint of ``entry``, read into the network RobustBench builds for it
    and checked key by key."""
    model = build_model(
        entry.arch, entry.num_classes, mean=NO_NORMALIZATION[0], std=NO_NORMALIZATION[1]
    )
    state = entry_state(obj, entry, model.state_dict(), path)
    hint = robustbench_hint(obj, path, exclude=entry.arch) or (
        f"not a checkpoint of {entry.arch} ({entry.architecture}); check the entry name"
    )
    load_strict(model, state, source=str(path), hint=hint)
    meta = WeightsMeta(
        arch=entry.arch,
        num_classes=entry.num_classes,
        mean=NO_NORMALIZATION[0],
        std=NO_NORMALIZATION[1],
        input_size=entry.input_size,
        dataset=entry.dataset,
        regime="std" if entry.threat == "corruptions" else "at",
        eps=eps,
        source="robustbench",
        content_hash=content_hash(state),
        extra={"imported_from": str(path), "robustbench_entry": entry.name},
    )
    return model.state_dict(), meta


def robustbench_hint(obj: Any, path: Path, *, exclude: str = "") -> str | None:
    """What a RobustBench file that does not fit holds, when its keys and shapes are those of
    known entries: the entries and the ``--arch`` that reads it."""
    try:
        raw = _tensors(obj, path, ("last", "state_dict", "model_state_dict", "model"))
    except UserError:
        return None
    for prefix in ("module.", "model."):
        raw = {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in raw.items()}
    fits = [e for e in entries_with_signature(state_signature(raw)) if e.arch != exclude]
    if not fits:
        return None
    first = fits[0]
    more = f" and {len(fits) - 1} more entries" if len(fits) > 1 else ""
    return (
        f"its keys and shapes are those of RobustBench's {first.architecture} of "
        f"{first.arch}{more}: import it with --arch {first.arch} "
        "(pip install 'doublewin[robustbench]')"
    )
