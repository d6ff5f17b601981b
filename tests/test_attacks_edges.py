"""PGD's edges, each pinned by a hand-built case: argument checks, restarts (how many runs,
which restart an example keeps, the early stop), the loss taken in fp32 from bf16 logits,
inputs the loss does not depend on, the random start's bounds and draws, FGSM-RS's fields."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from doublewin.attacks import PGD, fgsm_rs
from doublewin.core.errors import UserError
from doublewin.core.specs import AttackSpec


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"eps": -0.1}, False),
        ({"step": -0.1}, False),
        ({"eps": 0.0, "step": 0.0}, True),
        ({"steps": 0}, False),
        ({"steps": 1}, True),
        ({"restarts": 0}, False),
        ({"restarts": 1}, True),
        ({"norm": "l1"}, False),
    ],
)
def test_pgd_refuses_exactly_the_arguments_out_of_range(fields, ok):
    args = {"eps": 0.1, "step": 0.01, "steps": 2, **fields}
    if ok:
        PGD(**args)
    else:
        with pytest.raises(UserError):
            PGD(**args)


class _Counting(nn.Module):
    """Logits bias + slope·Σx, counting its calls. With a large bias the prediction is the
    bias's class whatever x is; the tiny slopes give the attack a gradient."""

    def __init__(self, bias: list[float], slopes: list[float]) -> None:
        super().__init__()
        self.calls = 0
        self.bias = torch.tensor(bias, dtype=torch.float64)
        self.slopes = torch.tensor(slopes, dtype=torch.float64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.bias + self.slopes * x.flatten(1).sum(1, keepdim=True)


def _two_class() -> _Counting:
    """Class 0 wins every example: one labelled 1 is fooled from the start, one labelled 0
    never is."""
    return _Counting([5.0, 0.0], [1e-3, -1e-3])


def test_restarts_run_until_every_example_is_fooled_and_keep_each_ones_first_success():
    x = torch.full((4, 1, 2, 2), 0.5, dtype=torch.float64)
    y = torch.tensor([1, 0, 1, 0])  # examples 0 and 2 fooled at once, 1 and 3 never
    model = _two_class()
    attack = PGD(eps=0.1, step=0.02, steps=3, restarts=4)
    torch.manual_seed(0)
    out = attack(model, x, y)
    # Never all fooled: four runs of three steps, and one check before each later restart.
    assert model.calls == 4 * 3 + 3
    torch.manual_seed(0)
    first = PGD(eps=0.1, step=0.02, steps=3)(_two_class(), x, y)
    assert torch.equal(out[[0, 2]], first[[0, 2]])  # fooled: the first restart is kept
    assert not torch.equal(out[[1, 3]], first[[1, 3]])  # not fooled: the last restart
    everyone = torch.tensor([1, 1, 1, 1])
    model = _two_class()
    torch.manual_seed(0)
    out = attack(model, x, everyone)
    assert model.calls == 3 + 1  # all fooled after the first run: one check, then stop
    torch.manual_seed(0)
    assert torch.equal(out, PGD(eps=0.1, step=0.02, steps=3)(_two_class(), x, everyone))


def test_the_loss_is_taken_in_fp32_from_bf16_logits():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 4)).to(torch.bfloat16).eval()
    x = torch.rand(6, 1, 3, 4).to(torch.bfloat16)
    y = torch.randint(0, 4, (6,))
    eps, step = 0.25, 0.05
    ours = PGD(eps=eps, step=step, steps=1, norm="l2", random_start=False)(model, x, y)
    delta = torch.zeros_like(x, requires_grad=True)
    loss = F.cross_entropy(model(x + delta).float(), y, reduction="sum")
    (g,) = torch.autograd.grad(loss, delta)
    d = step * g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
    d = d * (eps / d.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1.0).view(-1, 1, 1, 1)
    assert torch.equal(ours, (x + d).clamp(0, 1))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_inputs_the_loss_ignores_do_not_move(norm):
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 3)).double().eval()
    with torch.no_grad():
        model[1].weight[:, 4:] = 0.0  # the last four pixels carry no gradient
    x = torch.full((5, 1, 2, 4), 0.5, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1])
    out = PGD(eps=0.1, step=0.03, steps=3, norm=norm, random_start=False)(model, x, y)
    moved = (out - x).flatten(1)
    assert torch.all(moved[:, 4:] == 0) and torch.all(torch.isfinite(out))
    assert bool((moved[:, :4] != 0).any())


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_the_random_start_stays_in_pixel_range_at_its_edges(norm):
    attack = PGD(eps=0.3, step=0.0, steps=1, norm=norm)
    torch.manual_seed(0)
    for value in (0.0, 1.0):
        x = torch.full((500, 1, 2, 2), value, dtype=torch.float64)
        start = x + attack._start(x)
        assert float(start.min()) >= 0.0 and float(start.max()) <= 1.0
        assert bool((start != value).any())


def test_the_l2_start_draws_a_gaussian_direction_and_a_uniform_radius_in_the_input_dtype():
    x = torch.full((7, 1, 3, 3), 0.5, dtype=torch.float64)
    torch.manual_seed(4)
    start = PGD(eps=0.2, step=0.0, steps=1, norm="l2")._start(x)
    torch.manual_seed(4)
    direction = torch.randn_like(x)
    radius = torch.rand(7, dtype=torch.float64)
    unit = direction / direction.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    expected = unit * (0.2 * radius).view(-1, 1, 1, 1)
    torch.testing.assert_close(start, expected, rtol=0, atol=1e-15)


def test_fgsm_rs_is_one_randomly_started_step_of_alpha_eps_whatever_the_spec_says():
    spec = AttackSpec(eps=8 / 255, step=2 / 255, steps=10, random_start=False, restarts=3)
    attack = fgsm_rs(spec)
    assert attack.step == pytest.approx(1.25 * 8 / 255)  # the default α of fast AT
    assert (attack.steps, attack.random_start, attack.restarts) == (1, True, 1)
    assert fgsm_rs(spec, alpha=2.0).step == pytest.approx(16 / 255)


def test_restarts_judge_each_example_by_its_own_prediction():
    # Brightness rises with the index, so the largest logit of the whole batch is the last
    # example's class 2: reading one argmax over the batch instead of one per example would
    # call everyone fooled after the first run.
    x = torch.linspace(0.1, 0.8, 4, dtype=torch.float64).view(4, 1, 1, 1).expand(4, 1, 2, 2)
    model = _Counting([0.0, 0.0, 5.0], [0.0, 1e-3, 1e-3])  # class 2 wins, more when brighter
    torch.manual_seed(0)
    PGD(eps=0.05, step=0.01, steps=2, restarts=3)(model, x.clone(), torch.tensor([0, 2, 0, 2]))
    assert model.calls == 3 * 2 + 2  # examples 1 and 3 are never fooled: every restart runs
