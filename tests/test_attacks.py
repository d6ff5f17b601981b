"""Attacks: threat-model constraints, no parameter gradients, modes restored, restarts."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from doublewin.attacks import PGD, autoattack, fgsm_rs
from doublewin.core.errors import UserError
from doublewin.core.specs import AttackSpec


def net() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, 5),
    )
    model.eval()
    return model


def batch(n: int = 32):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 3, 8, 8, generator=g), torch.randint(0, 5, (n,), generator=g)


def test_linf_pgd_stays_in_the_eps_ball_and_in_pixel_range():
    x, y = batch()
    x_adv = PGD(eps=8 / 255, step=2 / 255, steps=7)(net(), x, y)
    assert (x_adv - x).abs().max() <= 8 / 255 + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv - x).abs().max() > 7 / 255  # it did move to the boundary


def test_l2_pgd_stays_in_the_l2_ball_and_in_pixel_range():
    x, y = batch()
    x_adv = PGD(eps=0.5, step=0.2, steps=7, norm="l2")(net(), x, y)
    norms = (x_adv - x).flatten(1).norm(dim=1)
    assert norms.max() <= 0.5 + 1e-5 and norms.max() > 0.45
    assert x_adv.min() >= 0 and x_adv.max() <= 1


def test_pgd_raises_the_loss_over_a_random_point_of_the_ball():
    model, (x, y) = net(), batch(64)
    loss = nn.CrossEntropyLoss()
    torch.manual_seed(0)
    random = (x + torch.empty_like(x).uniform_(-8 / 255, 8 / 255)).clamp(0, 1)
    adv = PGD(eps=8 / 255, step=2 / 255, steps=10)(model, x, y)
    with torch.no_grad():
        assert loss(model(adv), y) > loss(model(random), y)


def test_attacks_compute_no_parameter_gradients():
    model, (x, y) = net(), batch()
    PGD(eps=8 / 255, step=2 / 255, steps=3)(model, x, y)
    assert all(p.grad is None for p in model.parameters())
    for p in model.parameters():
        p.grad = torch.full_like(p, 7.0)
    PGD(eps=0.5, step=0.1, steps=3, norm="l2")(model, x, y)
    assert all(torch.all(p.grad == 7.0) for p in model.parameters())


@pytest.mark.parametrize("bn_mode", ["train", "eval", None])
def test_attacks_leave_every_module_in_the_mode_it_had(bn_mode):
    model, (x, y) = net(), batch()
    model.train()
    model[1].eval()  # a frozen BatchNorm inside a training model
    PGD(eps=8 / 255, step=2 / 255, steps=2, bn_mode=bn_mode)(model, x, y)
    assert [m.training for m in model.modules()] == [True, True, False, True, True, True, True]


def test_eval_mode_attack_does_not_touch_batchnorm_statistics_and_train_mode_does():
    model, (x, y) = net(), batch()
    model.train()
    before = model[1].running_mean.clone()
    PGD(eps=8 / 255, step=2 / 255, steps=2, bn_mode="eval")(model, x, y)
    assert torch.equal(model[1].running_mean, before)
    PGD(eps=8 / 255, step=2 / 255, steps=2, bn_mode="train")(model, x, y)
    assert not torch.equal(model[1].running_mean, before)


def test_zero_eps_returns_the_clean_input():
    x, y = batch()
    assert torch.equal(PGD(eps=0.0, step=0.0, steps=3)(net(), x, y), x)


def test_restarts_only_add_fooled_examples_to_the_first_restart():
    model, (x, y) = net(), batch(128)
    torch.manual_seed(3)
    one = PGD(eps=2 / 255, step=1 / 255, steps=2)(model, x, y)
    torch.manual_seed(3)
    many = PGD(eps=2 / 255, step=1 / 255, steps=2, restarts=4)(model, x, y)
    with torch.no_grad():
        fooled_one = model(one).argmax(1) != y
        fooled_many = model(many).argmax(1) != y
    assert torch.all(fooled_many[fooled_one])
    assert torch.equal(many[fooled_one], one[fooled_one])


def test_fgsm_rs_takes_one_step_of_alpha_eps_then_projects():
    spec = AttackSpec(eps=8 / 255)
    attack = fgsm_rs(spec, alpha=1.25)
    assert (attack.steps, attack.step, attack.random_start) == (1, pytest.approx(10 / 255), True)
    x, y = batch()
    x_adv = attack(net(), x, y)
    assert (x_adv - x).abs().max() <= 8 / 255 + 1e-6


def test_pgd_from_spec_carries_every_spec_field_and_eval_override():
    spec = AttackSpec(
        norm="l2",
        eps=0.5,
        step=0.1,
        steps=7,
        random_start=False,
        restarts=3,
        bn_mode="train",
        loss="margin",
        early_stop=True,
    )
    attack = PGD.from_spec(spec)
    assert (
        attack.norm,
        attack.eps,
        attack.step,
        attack.steps,
        attack.random_start,
        attack.restarts,
        attack.bn_mode,
        attack.loss,
        attack.early_stop,
    ) == ("l2", 0.5, 0.1, 7, False, 3, "train", "margin", True)
    assert PGD.from_spec(spec, bn_mode="eval").bn_mode == "eval"


def test_autoattack_without_torchattacks_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchattacks", None)
    x, y = batch(4)
    with pytest.raises(UserError, match="pip install torchattacks"):
        autoattack(net(), x, y, eps=8 / 255, num_classes=5)


def test_autoattack_examples_respect_the_threat_model_and_restore_the_mode():
    model, (x, y) = net(), batch(8)
    model.train()
    x_adv = autoattack(model, x, y, eps=8 / 255, num_classes=5)
    assert (x_adv - x).abs().max() <= 8 / 255 + 1e-5
    assert model.training


def test_margin_loss_works_when_a_batch_lacks_the_last_class():
    """The margin masks the true class among all the model's classes, not among the labels
    the batch happens to hold."""
    model, (x, _) = net(), batch(16)
    attack = PGD(eps=4 / 255, step=1 / 255, steps=3, loss="margin", random_start=False)
    zeros = torch.zeros(16, dtype=torch.long)  # class 0 only, of 5
    with_last = zeros.clone()
    with_last[-1] = 4
    # Each example's iterates depend on its own label only (eval mode, no random start).
    alone, among = attack(model, x, zeros), attack(model, x, with_last)
    assert torch.allclose(alone[:-1], among[:-1]) and not torch.equal(alone[:-1], x[:-1])
