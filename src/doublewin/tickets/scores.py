"""Importance scores for one-shot pruning of the pre-trained weights θp.

Every function returns parameter name → score tensor (higher = keep) for the tensors of a
mask; `doublewin.tickets.pruning` turns scores into masks. Scores are computed on θp as given:
nothing is re-initialized first. Data-based scores (SNIP, GraSP) run the model in eval mode so
the pre-trained BatchNorm statistics define the function being scored, and draw
``score_batches`` batches of (x in [0,1], y) from a loader. Every scorer leaves the model's
train/eval mode and the global RNG (an attack's random starts draw from it) as it found them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from doublewin.core.errors import UserError
from doublewin.core.seeds import stream
from doublewin.tickets.mask import Mask

Attack = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def random_scores(mask: Mask, seed: int) -> dict[str, torch.Tensor]:
    """Uniform random scores from the ``random-ticket`` stream of ``seed`` (independent of any
    weight initialization, see core/seeds.py): pruning the lowest gives a global uniformly
    random subset, and the masks for increasing sparsities are nested."""
    generator = stream("random-ticket", seed)
    return {n: torch.rand(m.shape, generator=generator) for n, m in mask.items()}


def _batches(
    loader: Iterable, count: int, device: torch.device
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    out = []
    for x, y in loader:
        out.append((x.to(device), y.to(device)))
        if len(out) == count:
            break
    if not out:
        raise UserError("the scoring data loader yielded no batch; use a dataset with images")
    return out


@contextlib.contextmanager
def scoring(model: nn.Module, device: torch.device | str = "cpu") -> Iterator[None]:
    """Eval mode and a forked global RNG for the duration; mode and RNG restored after."""
    was_training = model.training
    device = torch.device(device)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        model.eval()
        try:
            yield
        finally:
            model.train(was_training)


def prunable_weights(model: nn.Module) -> list[str]:
    """Names of the weights of every convolution and linear layer: the parameter set
    Synaptic-Flow's GraSP takes its Hessian-gradient product over (``masked_parameters``)."""
    return [
        f"{name}.weight" if name else "weight"
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))
        and getattr(module, "weight", None) is not None
    ]


def _masked_params(model: nn.Module, mask: Mask) -> list[nn.Parameter]:
    params = dict(model.named_parameters())
    return [params[n] for n in mask]


def _inputs(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Attack | None
) -> torch.Tensor:
    if attack is None:
        return x
    return attack(model, x, y).detach()


def snip_scores(
    model: nn.Module,
    mask: Mask,
    loader: Iterable,
    *,
    score_batches: int,
    device: torch.device,
    attack: Attack | None = None,
) -> dict[str, torch.Tensor]:
    """SNIP connection sensitivity |g ⊙ w|, g = ∂L/∂w summed over ``score_batches`` batches
    (cross-entropy; on ``attack``'s examples when one is given)."""
    with scoring(model, device):
        params = _masked_params(model, mask)
        grads = [torch.zeros_like(p) for p in params]
        for x, y in _batches(loader, score_batches, device):
            x = _inputs(model, x, y, attack)
            loss = F.cross_entropy(model(x), y)
            for acc, g in zip(grads, torch.autograd.grad(loss, params), strict=True):
                acc.add_(g)
    return {n: (g * p.detach()).abs() for n, p, g in zip(mask, params, grads, strict=True)}


def grasp_scores(
    model: nn.Module,
    mask: Mask,
    loader: Iterable,
    *,
    score_batches: int,
    device: torch.device,
    temperature: float = 200.0,
    attack: Attack | None = None,
) -> dict[str, torch.Tensor]:
    """GraSP: S = −w ⊙ Hg (logits divided by ``temperature``); GraSP removes the *highest* S,
    so this returns −S = w ⊙ Hg (pruning the lowest of it removes the highest S).

    g is the gradient summed over the batches; Hg is the Hessian-gradient product from a second
    pass, ∂(gᵀ ∇L)/∂w. Both are taken over every convolution and linear weight (Synaptic-Flow's
    parameter set, ``prunable_weights``) whatever the mask covers: gᵀ∇L couples all of them,
    so a narrower set changes the ranking. Scores are returned for the mask's tensors.
    """
    named = dict(model.named_parameters())
    names = list(dict.fromkeys([*prunable_weights(model), *mask]))
    params = [named[n] for n in names]
    with scoring(model, device):
        batches = [
            (_inputs(model, x, y, attack), y) for x, y in _batches(loader, score_batches, device)
        ]
        g = [torch.zeros_like(p) for p in params]
        for x, y in batches:
            loss = F.cross_entropy(model(x) / temperature, y)
            for acc, gi in zip(g, torch.autograd.grad(loss, params), strict=True):
                acc.add_(gi)
        hg = [torch.zeros_like(p) for p in params]
        for x, y in batches:
            loss = F.cross_entropy(model(x) / temperature, y)
            grad_f = torch.autograd.grad(loss, params, create_graph=True)
            z = sum((gi.detach() * fi).sum() for gi, fi in zip(g, grad_f, strict=True))
            for acc, h in zip(hg, torch.autograd.grad(z, params), strict=True):
                acc.add_(h)
    by_name = dict(zip(names, hg, strict=True))
    return {n: named[n].detach() * by_name[n] for n in mask}
