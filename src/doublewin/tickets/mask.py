"""`Mask`: which weights of a model a ticket keeps.

A mask is a plain mapping from parameter name (the model's state-dict name, e.g.
``layer1.0.conv1.weight``) to a boolean tensor of the parameter's shape: True = kept, False =
pruned. It covers the *parameter set* chosen by a `MaskScope`; every other parameter is dense.
The training engine enforces a mask (zero once, mask gradients, re-zero after each step);
`Mask.apply_to` only zeroes the pruned weights.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from doublewin.core.errors import UserError
from doublewin.core.specs import MaskScope
from doublewin.models import head_name


def prunable_parameters(
    model: nn.Module, scope: MaskScope | None = None
) -> dict[str, nn.Parameter]:
    """The parameters a ticket prunes, in model order.

    Default scope (the paper): the weight of every ``Conv2d``, the first conv included;
    ``scope.include_linear`` adds ``Linear`` weights; a model with attention layers gets
    BERT-Tickets' set instead (``scope.layers``, specs.py); ``scope.exclude`` removes layers
    whose module or parameter name matches one of its glob patterns (``conv1``, ``layer4.*``).
    Biases and BatchNorm parameters are never pruned. A pattern that matches nothing is a
    UserError (a typo would otherwise silently prune the layer it meant to keep).
    """
    scope = scope or MaskScope()
    layers = scope.layers
    if layers == "auto":
        layers = "transformer" if is_transformer(model) else "conv"
    candidates = (
        _transformer_candidates(model)
        if layers == "transformer"
        else _conv_candidates(model, scope)
    )
    used = set()
    out: dict[str, nn.Parameter] = {}
    for module_name, param_name, param in candidates:
        hits = [
            p
            for p in scope.exclude
            if fnmatch.fnmatchcase(module_name, p) or fnmatch.fnmatchcase(param_name, p)
        ]
        used.update(hits)
        if not hits:
            out[param_name] = param
    unused = [p for p in scope.exclude if p not in used]
    if unused:
        names = ", ".join(n for _, n, _ in candidates[:4])
        raise UserError(
            f"scope.exclude: {unused[0]!r} matches no prunable layer; use module "
            f"names such as {names} (glob patterns like 'layer4.*' work)"
        )
    if not out:
        raise UserError("the mask scope leaves no parameter to prune; exclude fewer layers")
    return out


# A module of one of these classes is attention: timm's, torch's, and Hugging Face's (BERT).
_ATTENTION = ("Attention", "MultiheadAttention", "SelfAttention")
# Never pruned under the transformer convention: embeddings, poolers, norms, the head.
_DENSE_NAMES = ("embed", "embedding", "pooler", "norm", "head", "classifier", "cls")


def is_transformer(model: nn.Module) -> bool:
    """A model with attention layers (timm ViTs, torch's MultiheadAttention, BERT)."""
    return any(type(m).__name__.endswith(_ATTENTION) for m in model.modules())


def _conv_candidates(model: nn.Module, scope: MaskScope) -> list[tuple[str, str, nn.Parameter]]:
    kinds: tuple[type[nn.Module], ...] = (
        (nn.Conv2d, nn.Linear) if scope.include_linear else (nn.Conv2d,)
    )
    out = []
    for module_name, module in model.named_modules():
        if isinstance(module, kinds) and isinstance(module.weight, nn.Parameter):
            out.append(
                (module_name, f"{module_name}.weight" if module_name else "weight", module.weight)
            )
    return out


def _transformer_candidates(model: nn.Module) -> list[tuple[str, str, nn.Parameter]]:
    """BERT-Tickets' parameter set: every Linear weight (and MultiheadAttention's packed input
    projection) outside embeddings, poolers, norms and the head."""
    head = _head(model)
    out = []
    for module_name, module in model.named_modules():
        parts = module_name.lower().split(".")
        if module_name == head or any(d in p for p in parts for d in _DENSE_NAMES):
            continue
        if isinstance(module, nn.Linear) and isinstance(module.weight, nn.Parameter):
            out.append((module_name, f"{module_name}.weight", module.weight))
        elif isinstance(module, nn.MultiheadAttention) and module.in_proj_weight is not None:
            out.append((module_name, f"{module_name}.in_proj_weight", module.in_proj_weight))
    return out


def _head(model: nn.Module) -> str:
    try:
        return head_name(model)
    except UserError:
        return ""


@dataclass(frozen=True)
class LayerSparsity:
    """One row of a sparsity report; ``sparsity`` is the pruned fraction in [0, 1]."""

    name: str
    shape: tuple[int, ...]
    total: int
    kept: int

    @property
    def pruned(self) -> int:
        return self.total - self.kept

    @property
    def sparsity(self) -> float:
        return self.pruned / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, object]:
        row = asdict(self)
        row["shape"] = list(self.shape)
        row["pruned"] = self.pruned
        row["sparsity"] = self.sparsity
        return row


class Mask(dict[str, torch.Tensor]):
    """Parameter name → boolean tensor (True = kept). A plain dict with a few helpers."""

    @classmethod
    def dense(cls, model: nn.Module, scope: MaskScope | None = None) -> Mask:
        """All-kept mask over the scope's parameters of ``model``."""
        return cls(
            {
                name: torch.ones_like(p, dtype=torch.bool)
                for name, p in prunable_parameters(model, scope).items()
            }
        )

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, torch.Tensor]) -> Mask:
        """Mask from any 0/1 tensors (float masks of torch.nn.utils.prune included)."""
        out = cls()
        for name, t in tensors.items():
            t = t.detach()
            if t.dtype != torch.bool:
                values = torch.unique(t)
                if not bool(((values == 0) | (values == 1)).all()):
                    raise UserError(f"mask {name}: values other than 0 and 1; not a pruning mask")
                t = t != 0
            out[name] = t.cpu()
        return out

    # counting ---------------------------------------------------------------------------
    @property
    def num_total(self) -> int:
        return sum(m.numel() for m in self.values())

    @property
    def num_kept(self) -> int:
        return int(sum(int(m.sum()) for m in self.values()))

    @property
    def num_pruned(self) -> int:
        return self.num_total - self.num_kept

    @property
    def sparsity(self) -> float:
        """Global pruned fraction over the masked parameters, in [0, 1]."""
        total = self.num_total
        return self.num_pruned / total if total else 0.0

    @property
    def density(self) -> float:
        return 1.0 - self.sparsity

    def per_layer(self) -> list[LayerSparsity]:
        """Sparsity of each masked tensor, in mask order."""
        return [
            LayerSparsity(name, tuple(m.shape), m.numel(), int(m.sum())) for name, m in self.items()
        ]

    def report(self) -> dict[str, object]:
        """JSON-ready: global counts and sparsity plus one row per layer."""
        return {
            "total": self.num_total,
            "kept": self.num_kept,
            "pruned": self.num_pruned,
            "sparsity": self.sparsity,
            "layers": [row.as_dict() for row in self.per_layer()],
        }

    # identity ---------------------------------------------------------------------------
    def content_hash(self) -> str:
        """16 hex digits of SHA-256 over names, shapes and bit-packed values (sorted names),
        so the hash is independent of device, dtype and file encoding."""
        digest = hashlib.sha256()
        for name in sorted(self):
            m = self[name]
            digest.update(f"{name}:{','.join(map(str, m.shape))};".encode())
            digest.update(pack_bits(m).tobytes())
        return digest.hexdigest()[:16]

    def equals(self, other: Mapping[str, torch.Tensor]) -> bool:
        """Same names, shapes and values."""
        return set(self) == set(other) and all(
            self[n].shape == other[n].shape
            and bool(torch.equal(self[n].cpu(), other[n].bool().cpu()))
            for n in self
        )

    # moving and applying ----------------------------------------------------------------
    def to(self, device: torch.device | str) -> Mask:
        return Mask({n: m.to(device) for n, m in self.items()})

    def clone(self) -> Mask:
        return Mask({n: m.clone() for n, m in self.items()})

    def check_fits(self, model: nn.Module, *, what: str = "mask") -> None:
        """UserError unless every masked name is a parameter of ``model`` with the same shape."""
        params = dict(model.named_parameters())
        for name, m in self.items():
            if name not in params:
                near = ", ".join(list(params)[:3])
                raise UserError(
                    f"{what} does not fit this model: it has no parameter {name!r} "
                    f"(model parameters look like {near}); use a ticket drawn for "
                    "this architecture"
                )
            if tuple(params[name].shape) != tuple(m.shape):
                raise UserError(
                    f"{what} does not fit this model: {name} is "
                    f"{tuple(m.shape)} in the ticket but {tuple(params[name].shape)} "
                    "in the model; use a ticket drawn for this architecture"
                )

    @torch.no_grad()
    def apply_to(self, model: nn.Module) -> nn.Module:
        """Zero the pruned weights of ``model`` in place (after checking the fit); returns it."""
        self.check_fits(model)
        params = dict(model.named_parameters())
        for name, m in self.items():
            p = params[name]
            p.mul_(m.to(device=p.device, dtype=p.dtype))
        return model


def pack_bits(mask: torch.Tensor) -> np.ndarray:
    """A boolean tensor as np.packbits of its row-major flattening (uint8, big bit order)."""
    return np.packbits(mask.detach().cpu().reshape(-1).numpy().astype(np.bool_))


def unpack_bits(packed: np.ndarray, shape: Iterable[int]) -> torch.Tensor:
    """Inverse of `pack_bits`."""
    shape = tuple(int(s) for s in shape)
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    bits = np.unpackbits(np.asarray(packed, dtype=np.uint8), count=count).astype(np.bool_)
    return torch.from_numpy(bits).reshape(shape)
