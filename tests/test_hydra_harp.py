"""HYDRA, HARP and the layer-wise magnitude baseline: the claims of docs/tickets.md on tiny
models (each test runs in seconds)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from doublewin.attacks import trades_examples
from doublewin.core.errors import UserError
from doublewin.core.progress import NULL_PROGRESS
from doublewin.core.specs import AttackSpec, TicketSpec
from doublewin.core.ticket_parts import HarpSpec, HydraSpec
from doublewin.tickets.allocation import apportion, kept_total, strategy_counts, uniform_counts
from doublewin.tickets.harp import harp_mask
from doublewin.tickets.hydra import WeightBudget, hydra_mask, initial_scores, weight_units
from doublewin.tickets.mask import Mask
from doublewin.tickets.score_masks import ScoredModel, layerwise_magnitude_mask, top_count
from doublewin.tickets.score_search import gamma_of, penalty
from test_tickets_methods import chain, loader

CPU = torch.device("cpu")


def fast(cls, **fields):
    attack = AttackSpec(steps=2, bn_mode="eval")
    return cls(**{"epochs": 2, "attack": attack, **fields})


def test_hydra_scores_start_as_layerwise_magnitude_pruning_exactly():
    net = chain()
    # Neighbouring float32 weights at a layer's cut, and exact ties: what a float32 product
    # √(6/fan_in)·W/max|W| could merge (and a stable sort would then break by position).
    with torch.no_grad():
        w = net[0].weight.view(-1)
        w[:] = torch.linspace(0.01, 0.02, w.numel())
        w[7] = torch.nextafter(w[8], torch.tensor(0.0))
        w[20] = w[21]
    dense = Mask.dense(net)
    params = dict(net.named_parameters())
    for sparsity in (0.3, 0.8, 0.95):
        counts = uniform_counts(dense, sparsity)
        scores = initial_scores(params, dense, "weights", seed=0)
        wrapped = ScoredModel(net, weight_units(dense), scores, counts=list(counts.values()))
        mined = Mask(dict(zip(dense, wrapped.keeps(), strict=True)))
        assert mined.equals(layerwise_magnitude_mask(params, dense, counts))
        assert mined.num_pruned == round(sparsity * dense.num_total)


def test_float32_scores_would_tie_neighbouring_weights():
    """Why scores are float64: the authors' √(6/fan_in)·W/max|W| in float32 makes two
    neighbouring weights equal, and the top-k of such scores is not magnitude pruning."""
    a = torch.tensor([0.5442386865615845])
    w = torch.cat([a, torch.nextafter(a, torch.tensor(2.0)), torch.tensor([1.0660152435302734])])
    w = w.view(3, 1)  # fan in 1; the larger of the neighbours sits second
    float32 = math.sqrt(6 / 1) * w / w.abs().max()
    assert float32[0] == float32[1]
    magnitude = top_count(w.abs(), 2)
    assert not torch.equal(top_count(float32.abs(), 2), magnitude)
    ours = initial_scores({"w": w}, Mask({"w": torch.ones(3, 1, dtype=torch.bool)}), "weights", 0)
    assert torch.equal(top_count(ours[0].abs(), 2), magnitude)


def test_the_straight_through_gradient_matches_a_finite_difference_on_a_toy_layer():
    torch.manual_seed(0)
    layer = nn.Sequential(nn.Conv2d(2, 3, 3, bias=False))
    x, target = torch.randn(4, 2, 5, 5), torch.randn(4, 3, 3, 3)
    dense = Mask.dense(layer)
    weight = layer[0].weight.detach()
    scores = [torch.randn(weight.shape, dtype=torch.float64)]
    logits = torch.tensor([0.3], dtype=torch.float64)
    wrapped = ScoredModel(layer, weight_units(dense), scores, rate_logits=logits, floor=0.2)
    F.mse_loss(wrapped(x), target, reduction="sum").backward()
    hard = wrapped.keeps()[0].double()

    def loss_at(m: torch.Tensor) -> float:
        out = F.conv2d(x.double(), weight.double() * m)
        return float(F.mse_loss(out, target.double(), reduction="sum"))

    h = 1e-6
    grad_m = torch.zeros_like(hard)
    for i in range(hard.numel()):
        e = torch.zeros_like(hard).view(-1)
        e[i] = h
        e = e.view(hard.shape)
        grad_m.view(-1)[i] = (loss_at(hard + e) - loss_at(hard - e)) / (2 * h)
    # ∂L/∂s = sign(s)·∂L/∂m, the top-k passed straight through to |s|.
    expected = torch.sign(scores[0]) * grad_m
    assert torch.allclose(wrapped.scores[0].grad, expected, rtol=1e-4, atol=1e-6)
    # ∂L/∂k = Σ ∂L/∂m for the unit's rate k = floor + (1 − floor)·σ(logit).
    slope = 0.8 * torch.sigmoid(logits) * (1 - torch.sigmoid(logits))
    ones = torch.ones_like(hard)
    rate_fd = (loss_at(hard + h * ones) - loss_at(hard - h * ones)) / (2 * h)
    assert float(wrapped.rate_logits.grad) == pytest.approx(float(slope) * rate_fd, rel=1e-4)


@pytest.mark.parametrize("method", ["hydra", "harp", "lwm"])
@pytest.mark.parametrize("sparsity", [0.5, 0.8926])
def test_each_method_ends_exactly_at_its_rung(method, sparsity):
    net = chain()
    dense = Mask.dense(net)
    if method == "lwm":
        params = dict(net.named_parameters())
        mask = layerwise_magnitude_mask(params, dense, uniform_counts(dense, sparsity))
    elif method == "hydra":
        mask = hydra_mask(net, dense, sparsity, loader(), spec=fast(HydraSpec), device=CPU).mask
    else:
        spec = fast(HarpSpec, gamma=5.0)
        mask = harp_mask(net, dense, sparsity, loader(), spec=spec, device=CPU).mask
    assert mask.num_pruned == round(sparsity * dense.num_total)


@pytest.mark.parametrize("rate_init", ["uniform", "erk", "lamp"])
def test_harp_rates_meet_the_budget_to_the_weight(rate_init):
    net = chain()
    dense = Mask.dense(net)
    # A penalty too weak to hold the budget during the search: the end still meets it.
    spec = fast(HarpSpec, loss="std", gamma=0.0, lr=1.0, rate_init=rate_init)
    result = harp_mask(net, dense, 0.7, loader(), spec=spec, device=CPU)
    assert result.mask.num_kept == kept_total(dense, 0.7)
    sizes = {n: m.numel() for n, m in dense.items()}
    kept = sum(result.ticket_rates[n] * sizes[n] for n in sizes)
    assert round(kept) == kept_total(dense, 0.7)
    assert result.learned_rates != result.ticket_rates


def test_harp_penalty_is_zero_under_the_budget_and_grows_over_it():
    dense = Mask.dense(chain())
    budget = WeightBudget(dense, 0.8, CPU)
    n = len(dense)
    under = torch.full((n,), budget.target * 0.9, dtype=torch.float64)
    at = torch.full((n,), budget.target, dtype=torch.float64)
    over = torch.full((n,), budget.target * 1.5, dtype=torch.float64)
    assert float(penalty(budget, under)) == 0.0
    assert float(penalty(budget, at)) == pytest.approx(0.0, abs=1e-12)
    assert float(penalty(budget, over)) == pytest.approx(0.5)
    spec = HarpSpec(gamma=0.01)
    assert [gamma_of(spec, e, None) for e in range(3)] == pytest.approx([0.01, 0.02, 0.03])
    assert gamma_of(spec, 7, 0.02) == 0.02  # frozen once met
    assert gamma_of(HydraSpec(), 3, None) == 0.0


def test_layer_strategies_keep_the_budget_and_differ():
    net = chain()
    dense = Mask.dense(net)
    params = dict(net.named_parameters())
    seen = []
    for name in ("uniform", "erk", "lamp"):
        counts = strategy_counts(name, params, dense, 0.9)
        assert sum(counts.values()) == kept_total(dense, 0.9)
        seen.append(tuple(counts.values()))
    assert len(set(seen)) == 3
    assert apportion([1.0, 1.0, 10.0], [1, 1, 1], [5, 5, 100], 30) == [3, 2, 25]


class StopAfter:
    """A progress whose tasks stop the run (as Ctrl-C would) after ``epochs`` epochs."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def task(self, *_args, **_kwargs):
        outer = self

        class Task:
            done = 0

            def advance(self, n: int = 1, **_kw) -> None:
                self.done += n
                if self.done >= outer.epochs:
                    raise KeyboardInterrupt

            def close(self) -> None:
                pass

        return Task()

    def note(self, *_args) -> None:
        pass


@pytest.mark.parametrize("method", ["hydra", "harp"])
def test_a_search_resumed_mid_way_gives_the_same_ticket(tmp_path, method):
    net = chain()
    dense = Mask.dense(net)
    draw = hydra_mask if method == "hydra" else harp_mask
    spec = fast(HydraSpec if method == "hydra" else HarpSpec, epochs=3, loss="trades")
    whole = draw(net, dense, 0.8, loader(), spec=spec, device=CPU, seed=1)
    checkpoint = tmp_path / "search.pt"
    with pytest.raises(KeyboardInterrupt):
        draw(
            net,
            dense,
            0.8,
            loader(),
            spec=spec,
            device=CPU,
            seed=1,
            checkpoint=checkpoint,
            progress=StopAfter(1),
        )
    assert checkpoint.is_file()
    resumed = draw(
        net,
        dense,
        0.8,
        loader(),
        spec=spec,
        device=CPU,
        seed=1,
        checkpoint=checkpoint,
        progress=NULL_PROGRESS,
    )
    assert resumed.mask.equals(whole.mask)
    assert resumed.history == whole.history
    other = fast(HydraSpec if method == "hydra" else HarpSpec, epochs=3, lr=0.5)
    with pytest.raises(UserError, match="another score search"):
        draw(net, dense, 0.8, loader(), spec=other, device=CPU, seed=1, checkpoint=checkpoint)


def test_the_search_trains_scores_and_leaves_the_model_and_rng_as_found():
    net = chain()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    dense = Mask.dense(net)
    params = dict(net.named_parameters())
    start = layerwise_magnitude_mask(params, dense, uniform_counts(dense, 0.8))
    state = torch.get_rng_state()
    mined = hydra_mask(net, dense, 0.8, loader(), spec=fast(HydraSpec, lr=5.0), device=CPU)
    assert torch.equal(torch.get_rng_state(), state)
    assert not mined.mask.equals(start)  # the scores moved the mask
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_trades_examples_are_torchattacks_tpgd():
    torchattacks = pytest.importorskip("torchattacks")
    net = chain()
    x, _ = loader()[0]
    spec = AttackSpec(eps=8 / 255, step=2 / 255, steps=3, bn_mode="eval")
    torch.manual_seed(5)
    ours = trades_examples(net, x, spec)
    torch.manual_seed(5)
    theirs = torchattacks.TPGD(net, eps=8 / 255, alpha=2 / 255, steps=3)(x)
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert float((ours - x).abs().max()) <= 8 / 255 + 1e-6


def test_method_options_are_checked_before_anything_runs():
    with pytest.raises(UserError, match="L∞"):
        HydraSpec(attack=AttackSpec(norm="l2", eps=0.5, step=0.1))
    with pytest.raises(UserError, match="harp draws channel tickets"):
        TicketSpec(method="hydra", pattern="channel")
    with pytest.raises(UserError, match="rate_init"):
        TicketSpec(method="harp", pattern="channel", harp=HarpSpec(rate_init="erk"))
    assert TicketSpec(method="harp").channel_unit == "flops"
    assert TicketSpec(method="omp").channel_unit == "channels"
    assert HarpSpec(loss="mart").robust_beta == 5.0 and HydraSpec().robust_beta == 6.0


def test_top_count_keeps_ties_by_position():
    values = torch.tensor([1.0, 3.0, 3.0, 2.0, 3.0])
    assert top_count(values, 2).tolist() == [False, True, True, False, False]
