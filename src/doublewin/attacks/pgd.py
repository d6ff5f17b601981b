"""Projected gradient descent under L∞ or L2, and FGSM with random start (fast AT).

Inputs and outputs are pixels in [0,1]; ε and step sizes are in the same units (8/255 ≈ 0.031).
Gradients are taken with ``torch.autograd.grad`` with respect to the input only, so an attack
never computes or touches parameter gradients (``p.grad`` is left as it was).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from doublewin.attacks.modes import BnMode, model_mode
from doublewin.core.errors import UserError
from doublewin.core.specs import AttackSpec

Norm = Literal["linf", "l2"]
_TINY = 1e-12


@dataclass(frozen=True)
class PGD:
    """PGD with ``steps`` steps of size ``step`` inside the ``norm`` ball of radius ``eps``.

    ``random_start``: start from a uniform point of the L∞ ball (L2: a random direction at a
    uniform radius). ``restarts`` > 1 runs the attack again from fresh random starts and keeps,
    per example, the first restart that fools the model (else the last one). ``bn_mode``: the
    mode the model is put in while attacking (``train``: BatchNorm uses batch statistics and
    updates its running statistics, as in the official Double-Win code; ``eval``: running
    statistics, as in robustness/torchattacks; ``None``: the model's current mode). The model's
    modes are restored afterwards. ``loss``: ``ce`` ascends the cross-entropy, ``margin`` the
    margin max_{j≠y} z_j − z_y, ``ce+margin`` takes per example the worst of both (margin PGD
    attacks the examples cross-entropy PGD left standing: AutoAttack's reading of its
    APGD-CE and APGD-T pair). ``early_stop`` (test attacks, eval-mode BN): an example that
    an iterate fools keeps that iterate and is attacked no more (AutoAttack's reading: fooled
    by any iterate, not only the last), so the attack costs less where examples fall early.
    The returned ``x_adv`` is detached, in [0,1].
    """

    eps: float
    step: float
    steps: int
    norm: Norm = "linf"
    random_start: bool = True
    restarts: int = 1
    bn_mode: BnMode | None = None
    loss: Literal["ce", "margin", "ce+margin"] = "ce"
    early_stop: bool = False

    @classmethod
    def from_spec(
        cls, spec: AttackSpec, *, bn_mode: BnMode | None | Literal["spec"] = "spec"
    ) -> PGD:
        """The attack an `AttackSpec` describes (every field of it). ``bn_mode`` overrides
        ``spec.bn_mode`` (evaluation passes ``"eval"``)."""
        fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
        if bn_mode != "spec":
            fields["bn_mode"] = bn_mode
        return cls(**fields)

    def __post_init__(self) -> None:
        if self.norm not in ("linf", "l2"):
            raise UserError(f"attack norm {self.norm!r} is not supported; use linf or l2")
        if self.eps < 0 or self.step < 0:
            raise UserError("attack eps and step must be >= 0; write e.g. eps=8/255 step=2/255")
        if self.steps < 1 or self.restarts < 1:
            raise UserError("attack steps and restarts must be >= 1")
        if self.loss not in ("ce", "margin", "ce+margin"):
            raise UserError(
                f"attack loss {self.loss!r} is not supported; use ce, margin or ce+margin"
            )

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = x.detach()
        if self.eps == 0:
            return x.clone()
        if self.loss == "ce+margin":
            return self._worst_of_both(model, x, y)
        with model_mode(model, self.bn_mode), torch.enable_grad():
            best = self._run(model, x, y)
            for _ in range(self.restarts - 1):
                with torch.no_grad():
                    fooled = model(best).argmax(1) != y
                if bool(fooled.all()):
                    break
                candidate = self._run(model, x, y)
                keep = fooled.view(-1, *([1] * (x.dim() - 1)))
                best = torch.where(keep, best, candidate)
        return best

    def _worst_of_both(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        first = dataclasses.replace(self, loss="ce")(model, x, y)
        with model_mode(model, self.bn_mode), torch.no_grad():
            standing = model(first).argmax(1) == y
        if not bool(standing.any()):
            return first
        margin = dataclasses.replace(self, loss="margin")
        if self.bn_mode == "train":
            # Batch statistics: the margin attack sees the whole batch, as the first one did.
            keep = standing.view(-1, *([1] * (x.dim() - 1)))
            return torch.where(keep, margin(model, x, y), first)
        out = first.clone()
        out[standing] = margin(model, x[standing], y[standing])
        return out

    def _run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.early_stop:
            return self._run_until_fooled(model, x, y)
        delta = self._start(x)
        for _ in range(self.steps):
            delta, _ = self._step(model, x, y, delta)
        return (x + delta).detach()

    def _step(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, delta: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One ascent step from ``delta``; also returns the logits at ``x + delta``."""
        delta = delta.detach().requires_grad_(True)
        logits = model(x + delta)
        # Sum, not mean: the step direction must not depend on the batch size. The loss in at
        # least fp32 (bf16 logits under autocast are promoted; fp64 stays fp64).
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        (grad,) = torch.autograd.grad(self._objective(logits, y), delta)
        with torch.no_grad():
            delta = self._ascend(delta.detach(), grad)
            delta = self._project(delta)
            delta = (x + delta).clamp_(0.0, 1.0) - x
        return delta, logits.detach()

    def _run_until_fooled(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        delta = self._start(x)
        active = torch.arange(x.shape[0], device=x.device)  # examples not fooled yet
        for _ in range(self.steps):
            stepped, logits = self._step(model, x[active], y[active], delta[active])
            # The logits are those of the iterate this step started from: an example they
            # already fool keeps that iterate; the others take the step.
            holding = logits.argmax(1) == y[active]
            delta[active[holding]] = stepped[holding]
            active = active[holding]
            if active.numel() == 0:
                break
        return (x + delta).detach()

    def _objective(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss == "ce":
            return F.cross_entropy(logits, y, reduction="sum")
        true = logits.gather(1, y[:, None]).squeeze(1)
        others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
        return (others.amax(1) - true).sum()

    def _start(self, x: torch.Tensor) -> torch.Tensor:
        if not self.random_start:
            return torch.zeros_like(x)
        if self.norm == "linf":
            delta = torch.empty_like(x).uniform_(-self.eps, self.eps)
        else:
            direction = torch.randn_like(x)
            norms = _l2(direction).clamp_min(_TINY)
            radius = torch.rand(x.shape[0], device=x.device, dtype=x.dtype)
            delta = direction / norms * (radius * self.eps).view(-1, *([1] * (x.dim() - 1)))
        return (x + delta).clamp_(0.0, 1.0) - x

    def _ascend(self, delta: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        if self.norm == "linf":
            return delta + self.step * grad.sign()
        return delta + self.step * grad / _l2(grad).clamp_min(_TINY)

    def _project(self, delta: torch.Tensor) -> torch.Tensor:
        if self.norm == "linf":
            return delta.clamp(-self.eps, self.eps)
        factor = (self.eps / _l2(delta).clamp_min(_TINY)).clamp(max=1.0)
        return delta * factor


def _l2(t: torch.Tensor) -> torch.Tensor:
    """Per-example L2 norm, shaped to broadcast against ``t``."""
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


def fgsm_rs(spec: AttackSpec, alpha: float = 1.25) -> PGD:
    """FGSM with random start (Wong et al. 2020, fast adversarial training): one step of size
    ``alpha`` × ε from a uniform random point of the ε-ball, then projected back onto it.
    ``alpha`` is ``TrainSpec.fat_alpha`` (1.25 by default)."""
    return dataclasses.replace(
        PGD.from_spec(spec), step=alpha * spec.eps, steps=1, random_start=True, restarts=1
    )
