"""The attacks pinned exactly: PGD's iterates against a hand-written reference step by step
(L∞ and L2, float64, gradients in closed form), per-example L2 steps and projection, the random
start's bounds, distribution and use, FGSM-RS against its formula, and torchattacks' PGD where
its semantics are the same."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from doublewin.attacks import PGD, fgsm_rs
from doublewin.core.specs import AttackSpec

D, K = 12, 4  # inputs of 12 "pixels", 4 classes


def _linear(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(D, K)).double().eval()
    with torch.no_grad():
        model[1].weight.mul_(8.0)  # steep enough that steps change the prediction
    return model


def _grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∂ Σ CE / ∂x for logits W x + b, in closed form: Wᵀ (softmax − onehot)."""
    w, b = model[1].weight.detach(), model[1].bias.detach()
    p = torch.softmax(x.flatten(1) @ w.T + b, dim=1)
    p[torch.arange(len(y)), y] -= 1.0
    return (p @ w).view_as(x)


def _reference(model, x, y, *, eps, step, steps, norm):
    """PGD by the book: ascend, project onto the ε-ball, clip to [0, 1]; every iterate."""
    delta = torch.zeros_like(x)
    iterates = []
    for _ in range(steps):
        g = _grad(model, x + delta, y)
        if norm == "linf":
            delta = (delta + step * g.sign()).clamp(-eps, eps)
        else:
            g_norm = g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            delta = delta + step * g / g_norm
            d_norm = delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            delta = delta * torch.clamp(eps / d_norm, max=1.0)
        delta = (x + delta).clamp(0.0, 1.0) - x
        iterates.append(x + delta)
    return iterates


def _margin_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∂ Σ (max_{j≠y} z_j − z_y) / ∂x for logits W x + b: W_j* − W_y, j* the best other class."""
    w, b = model[1].weight.detach(), model[1].bias.detach()
    z = x.flatten(1) @ w.T + b
    z[torch.arange(len(y)), y] = float("-inf")
    return (w[z.argmax(1)] - w[y]).view_as(x)


def _data(n: int = 6, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 3, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, K, (n,), generator=g)
    return x, y


@pytest.mark.parametrize(
    ("norm", "eps", "step"),
    [("linf", 8 / 255, 2 / 255), ("linf", 0.1, 0.03), ("l2", 0.5, 0.15), ("l2", 1.0, 0.4)],
)
def test_pgd_iterates_equal_the_reference_step_by_step(norm, eps, step):
    model, (x, y) = _linear(), _data()
    reference = _reference(model, x, y, eps=eps, step=step, steps=6, norm=norm)
    for t, expected in enumerate(reference, start=1):
        ours = PGD(eps=eps, step=step, steps=t, norm=norm, random_start=False)(model, x, y)
        torch.testing.assert_close(ours, expected, rtol=0, atol=1e-12, msg=f"step {t}")
    # The step size is the step, not ε: one L∞ step moves each pixel by exactly `step`
    # (where [0, 1] does not clip it).
    if norm == "linf":
        first = reference[0] - x
        inside = (x > eps) & (x < 1 - eps)
        assert torch.allclose(first[inside].abs(), torch.full_like(first[inside], step))


def test_margin_pgd_iterates_ascend_the_best_other_logit_minus_the_true_one():
    model, (x, y) = _linear(), _data()
    eps, step, delta = 0.1, 0.03, torch.zeros_like(x)
    for t in range(1, 7):
        delta = (delta + step * _margin_grad(model, x + delta, y).sign()).clamp(-eps, eps)
        delta = (x + delta).clamp(0.0, 1.0) - x
        ours = PGD(eps=eps, step=step, steps=t, random_start=False, loss="margin")(model, x, y)
        torch.testing.assert_close(ours, x + delta, rtol=0, atol=1e-12, msg=f"step {t}")
    # Not the cross-entropy's iterates: the two losses point elsewhere on this model.
    ce = PGD(eps=eps, step=step, steps=6, random_start=False)(model, x, y)
    assert not torch.allclose(ce, x + delta)


def test_l2_steps_and_projection_are_per_example():
    model = _linear()
    x = torch.full((3, 1, 3, 4), 0.5, dtype=torch.float64)
    y = torch.tensor([0, 1, 2])
    # A large ball: one step of 0.1 stays inside; each example moves exactly 0.1 in L2,
    # whatever its gradient's size (the normalization is per example, not per batch).
    one = PGD(eps=5.0, step=0.1, steps=1, norm="l2", random_start=False)(model, x, y) - x
    torch.testing.assert_close(one.flatten(1).norm(dim=1), torch.full((3,), 0.1, dtype=x.dtype))
    # A small ball: the projection scales back onto it only the examples that left it; a
    # point inside stays where it is (not pushed onto the sphere).
    inside = PGD(eps=0.25, step=0.1, steps=1, norm="l2", random_start=False)(model, x, y) - x
    torch.testing.assert_close(inside.flatten(1).norm(dim=1), torch.full((3,), 0.1, dtype=x.dtype))
    out = PGD(eps=0.25, step=0.1, steps=6, norm="l2", random_start=False)(model, x, y) - x
    assert torch.all(out.flatten(1).norm(dim=1) <= 0.25 + 1e-12)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_the_random_start_is_used_bounded_and_uniform(norm):
    model = _linear()
    eps = 0.2
    x = torch.full((4000, 1, 3, 4), 0.5, dtype=torch.float64)  # no [0, 1] clipping at 0.5 ± 0.2
    y = torch.zeros(4000, dtype=torch.long)
    torch.manual_seed(3)
    # step 0: the result is the start itself.
    start = PGD(eps=eps, step=0.0, steps=1, norm=norm, random_start=True)(model, x, y) - x
    assert start.abs().max() > 0  # the start is used
    if norm == "linf":
        assert start.abs().max() <= eps
        # U(−ε, ε): mean 0, std ε/√3.
        assert abs(float(start.mean())) < 0.005
        assert float(start.std()) == pytest.approx(eps / 3**0.5, rel=0.02)
    else:
        radii = start.flatten(1).norm(dim=1)
        assert float(radii.max()) <= eps + 1e-12
        # Radius uniform in [0, ε]: mean ε/2; direction uniform: mean of δ near 0.
        assert float(radii.mean()) == pytest.approx(eps / 2, rel=0.03)
        assert abs(float(start.mean())) < 0.005
    torch.manual_seed(3)
    again = PGD(eps=eps, step=0.0, steps=1, norm=norm, random_start=True)(model, x, y) - x
    assert torch.equal(start, again)  # seeded
    fixed = PGD(eps=eps, step=0.0, steps=1, norm=norm, random_start=False)(model, x, y) - x
    assert torch.all(fixed == 0)


def test_fgsm_rs_is_one_step_of_alpha_eps_from_a_uniform_start_projected_back():
    model, (x, y) = _linear(), _data(n=8)
    eps, alpha = 8 / 255, 1.25
    torch.manual_seed(5)
    ours = fgsm_rs(AttackSpec(eps=eps, step=2 / 255, steps=10), alpha)(model, x, y)
    torch.manual_seed(5)
    start = torch.empty_like(x).uniform_(-eps, eps)
    start = (x + start).clamp(0, 1) - x
    delta = (start + alpha * eps * _grad(model, x + start, y).sign()).clamp(-eps, eps)
    expected = (x + delta).clamp(0, 1)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-12)


def test_torchattacks_pgd_without_random_start_gives_the_same_iterates():
    torchattacks = pytest.importorskip("torchattacks")
    model, (x, y) = _linear(), _data()
    eps, step = 8 / 255, 2 / 255
    for steps in (1, 3, 7):
        theirs = torchattacks.PGD(model, eps=eps, alpha=step, steps=steps, random_start=False)
        ours = PGD(eps=eps, step=step, steps=steps, random_start=False)(model, x, y)
        torch.testing.assert_close(ours, theirs(x, y), rtol=0, atol=1e-12)
