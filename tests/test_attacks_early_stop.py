"""PGD with early stop: an example fooled by any iterate counts as fooled and costs no more
forward passes; evaluation skips examples wrong when clean and counts them as not robust."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from doublewin.attacks import PGD
from doublewin.core.errors import UserError
from doublewin.core.specs import AttackSpec, TrainSpec
from doublewin.train import evaluate


class Counting(nn.Module):
    """A small eval-mode network in float64 that counts the examples it is run on."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(48, 32), nn.Tanh(), nn.Linear(32, 5))
        self.body.double().eval()
        self.examples = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.examples += x.shape[0]
        return self.body(x)


def batch(n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 3, 4, 4, generator=g, dtype=torch.float64), torch.randint(
        0, 5, (n,), generator=g
    )


def fooled(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).argmax(1) != y


def test_early_stop_fools_exactly_the_examples_some_iterate_of_plain_pgd_fools():
    """Without a random start, iterate k of plain PGD-K is plain PGD-k's output; early stop
    must fool the union of what the clean input and iterates 1..K fool, no more, no less."""
    model, (x, _) = Counting(), batch()
    with torch.no_grad():
        y = model(x).argmax(1)  # every example right when clean
    steps, eps = 6, 0.05
    union = torch.zeros_like(y, dtype=torch.bool)
    plain = x
    for k in range(1, steps + 1):
        # Steps as large as ε: iterates jump between corners of the ball and can leave a
        # region where the model is fooled.
        plain = PGD(eps=eps, step=eps, steps=k, random_start=False)(model, x, y)
        union |= fooled(model, plain, y)
    early = PGD(eps=eps, step=eps, steps=steps, random_start=False, early_stop=True)
    x_early = early(model, x, y)
    assert torch.equal(fooled(model, x_early, y), union)
    # The setting is one where some example is fooled by a middle iterate only, so early stop
    # is strictly stronger here than plain PGD's last iterate.
    assert int(union.sum()) > int(fooled(model, plain, y).sum())
    assert (x_early - x).abs().max() <= eps + 1e-12 and 0 <= x_early.min() <= x_early.max() <= 1
    # Examples never fooled took every step, as in plain PGD.
    kept = ~union
    assert torch.allclose(x_early[kept], plain[kept])


def test_early_stop_runs_the_model_on_fewer_examples_when_examples_fall_early():
    model, (x, y) = Counting(), batch()
    model.examples = 0
    PGD(eps=0.2, step=0.05, steps=10)(model, x, y)
    plain = model.examples
    model.examples = 0
    PGD(eps=0.2, step=0.05, steps=10, early_stop=True)(model, x, y)
    assert plain == 10 * x.shape[0]
    assert model.examples < 0.5 * plain


def test_evaluate_with_early_stop_attacks_only_right_examples_and_never_reports_more_ra():
    model, (x, y) = Counting(), batch()
    loader = [(x[i : i + 64], y[i : i + 64]) for i in range(0, x.shape[0], 64)]
    spec = AttackSpec(eps=0.05, step=0.02, steps=5, bn_mode="eval")
    right = int((~fooled(model, x, y)).sum())
    torch.manual_seed(0)
    plain = evaluate(model, loader, attack=spec)
    model.examples = 0
    torch.manual_seed(0)
    early = evaluate(model, loader, attack=dataclasses.replace(spec, early_stop=True))
    assert early["n"] == plain["n"] == x.shape[0]
    assert early["sa"] == plain["sa"] == pytest.approx(100 * right / x.shape[0])
    assert early["ra"] <= plain["ra"]
    # Clean pass over all, then at most 5 attack passes and one check over the right ones.
    assert model.examples <= x.shape[0] + 6 * right


def test_an_example_wrong_when_clean_is_never_counted_robust():
    """Even when the attack's point is classified right, a wrong clean example is not robust."""

    class Flips(nn.Module):
        # Class 1 at the clean input (all pixels 0.5), class 0 anywhere a little away from it.
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            away = 1000 * ((x - 0.5) ** 2).flatten(1).sum(1)
            return torch.stack([away, torch.full_like(away, 1e-3)], 1)

    x = torch.full((4, 3, 2, 2), 0.5, dtype=torch.float64)
    y = torch.zeros(4, dtype=torch.long)  # class 0: right only off the grid
    spec = AttackSpec(eps=0.05, step=0.02, steps=2, bn_mode="eval")
    result = evaluate(Flips(), [(x, y)], attack=spec)
    assert result["sa"] == 0 and result["ra"] == 0


def test_a_training_attack_with_early_stop_is_refused_in_one_line():
    with pytest.raises(UserError, match="early_stop is for test and validation attacks"):
        TrainSpec(regime="at", attack=AttackSpec(eps=8 / 255, early_stop=True))


def test_early_stop_keeps_stepping_a_lone_example_that_holds():
    """One example never fooled takes all of plain PGD's steps, even when it is the only one
    left to attack."""
    model, (x, _) = Counting(), batch(1)
    with torch.no_grad():
        y = model(x).argmax(1)
    eps = 1e-3  # too small to fool it
    plain = PGD(eps=eps, step=eps / 4, steps=6, random_start=False)(model, x, y)
    early = PGD(eps=eps, step=eps / 4, steps=6, random_start=False, early_stop=True)(model, x, y)
    assert not bool(fooled(model, early, y).any())
    assert torch.equal(early, plain) and not torch.equal(early, x)


def test_early_stop_returns_every_example_fooled_when_all_fall():
    model, (x, _) = Counting(), batch(64)
    with torch.no_grad():
        y = model(x).argmax(1)
    x_adv = PGD(eps=1.0, step=0.5, steps=10, early_stop=True)(model, x, y)
    assert x_adv.shape == x.shape and bool(fooled(model, x_adv, y).all())
