"""One-shot scores, SynFlow and Gem-Miner on tiny models."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from doublewin.core.specs import GemMinerSpec, MaskScope
from doublewin.tickets.gem_miner import freeze_schedule, gem_miner_mask
from doublewin.tickets.mask import Mask
from doublewin.tickets.pruning import magnitude_scores, prune_to_sparsity
from doublewin.tickets.scores import grasp_scores, random_scores, snip_scores
from doublewin.tickets.synflow import linearise, synflow_mask


def chain(seed: int = 0, *, bn: bool = True) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    widths = [3, 16, 16, 32]
    for i in range(3):
        layers.append(nn.Conv2d(widths[i], widths[i + 1], 3, padding=1, bias=False))
        if bn:
            layers.append(nn.BatchNorm2d(widths[i + 1]))
        layers.append(nn.ReLU())
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 5)]
    net = nn.Sequential(*layers)
    if bn:  # "pre-trained" BatchNorm: non-trivial statistics, negative gains included
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                with torch.no_grad():
                    m.weight.uniform_(-1.5, 1.5)
                    m.bias.uniform_(-0.5, 0.5)
    return net.eval()


def loader(n: int = 32, batch: int = 16, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 8, 8, generator=gen)
    y = torch.randint(0, 5, (n,), generator=gen)
    return [(x[i : i + batch], y[i : i + batch]) for i in range(0, n, batch)]


def test_random_masks_are_seeded_global_uniform_and_nested():
    net = chain()
    dense = Mask.dense(net)
    a50 = prune_to_sparsity(random_scores(dense, 1), dense, 0.5)
    a80 = prune_to_sparsity(random_scores(dense, 1), dense, 0.8)
    assert a50.equals(prune_to_sparsity(random_scores(dense, 1), dense, 0.5))
    assert not a50.equals(prune_to_sparsity(random_scores(dense, 2), dense, 0.5))
    assert all(bool((a80[n] <= a50[n]).all()) for n in dense)  # nested
    for row in a50.per_layer():  # uniform: every layer near the global rate
        assert abs(row.sparsity - 0.5) < 0.2


def test_snip_scores_are_gradient_times_weight_of_the_pretrained_model():
    net = chain()
    before = copy.deepcopy(net.state_dict())
    batches = loader()
    scores = snip_scores(net, Mask.dense(net), batches, score_batches=2, device=torch.device("cpu"))
    ref = chain()
    ref.eval()
    grads = [torch.zeros_like(p) for p in ref.parameters()]
    for x, y in batches:
        ref.zero_grad()
        F.cross_entropy(ref(x), y).backward()
        for g, p in zip(grads, ref.parameters(), strict=True):
            g.add_(p.grad)
    expected = (grads[0] * ref[0].weight).abs()
    torch.testing.assert_close(scores["0.weight"], expected)
    for key, value in net.state_dict().items():  # nothing re-initialized or changed
        assert torch.equal(value, before[key]), key


def test_snip_uses_exactly_score_batches_batches():
    net = chain()
    one = snip_scores(net, Mask.dense(net), loader(), score_batches=1, device=torch.device("cpu"))
    two = snip_scores(net, Mask.dense(net), loader(), score_batches=2, device=torch.device("cpu"))
    assert not torch.allclose(one["0.weight"], two["0.weight"])


def test_grasp_returns_w_times_hessian_gradient_product_with_temperature():
    """Against the Hessian by brute force, over the conv and linear weights together (the
    parameter set GraSP's gᵀ∇L couples), whatever the mask covers (here: the conv only)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 2, 3, bias=False), nn.Flatten(), nn.Linear(2 * 36, 3))
    x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])
    mask = Mask.dense(net)
    scores = grasp_scores(
        net, mask, [(x, y)], score_batches=1, device=torch.device("cpu"), temperature=200.0
    )
    w0, w2 = net[0].weight.detach().clone(), net[2].weight.detach().clone()
    sizes = (w0.numel(), w2.numel())

    def loss_of(flat: torch.Tensor) -> torch.Tensor:
        conv, linear = flat.split(sizes)
        out = F.linear(F.conv2d(x, conv.view_as(w0)).flatten(1), linear.view_as(w2), net[2].bias)
        return F.cross_entropy(out / 200.0, y)

    flat = torch.cat([w0.flatten(), w2.flatten()])
    flat_var = flat.clone().requires_grad_()
    g = torch.autograd.grad(loss_of(flat_var), flat_var)[0]
    hessian = torch.autograd.functional.hessian(loss_of, flat)
    hg = (hessian @ g)[: sizes[0]].reshape(w0.shape)
    torch.testing.assert_close(scores["0.weight"], w0 * hg, rtol=1e-4, atol=1e-12)


def test_synflow_keeps_every_layer_alive_where_global_magnitude_empties_one():
    net = chain(bn=True)
    with torch.no_grad():
        net[3].weight.mul_(1e-3)  # a layer with small weights (e.g. a rescaled BN-folded conv)
    dense = Mask.dense(net)
    sparsity = 0.5  # 3,672 of 7,344 weights: more than the 2,304 of the small layer
    magnitude = prune_to_sparsity(
        magnitude_scores(dict(net.named_parameters()), dense), dense, sparsity
    )
    assert {r.name: r.kept for r in magnitude.per_layer()}["3.weight"] == 0
    before = copy.deepcopy(net.state_dict())
    synflow = synflow_mask(net, dense, sparsity, input_shape=(3, 8, 8), iterations=20)
    assert all(r.kept > 0 for r in synflow.per_layer())
    assert synflow.num_pruned == 3672  # half of 432 + 2,304 + 4,608 conv weights
    for key, value in net.state_dict().items():  # scoring never touches the caller's model
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize("bn", ["fold", "identity"])
def test_linearised_network_is_positive_with_pretrained_batchnorm(bn):
    net = linearise(copy.deepcopy(chain()).double(), bn)
    x = torch.ones(1, 3, 8, 8, dtype=torch.float64)
    feats = net[:-3](x)
    assert bool((feats >= 0).all()) and float(feats.detach().sum()) > 0
    bn_layer = net[1]
    if bn == "fold":  # the pre-trained gain |γ|/σ, no shift
        expected = chain()[1].weight.abs() / torch.sqrt(chain()[1].running_var + bn_layer.eps)
        out = bn_layer(torch.ones(1, 16, 1, 1, dtype=torch.float64)).flatten()
        torch.testing.assert_close(out, expected.double().detach())
    else:
        out = bn_layer(torch.full((1, 16, 1, 1), 2.0, dtype=torch.float64)).flatten()
        torch.testing.assert_close(out, torch.full((16,), 2.0, dtype=torch.float64))


def test_synflow_with_identity_bn_differs_from_folded_bn():
    net = chain()
    dense = Mask.dense(net)
    fold = synflow_mask(net, dense, 0.8, input_shape=(3, 8, 8), iterations=10, bn="fold")
    ident = synflow_mask(net, dense, 0.8, input_shape=(3, 8, 8), iterations=10, bn="identity")
    assert not fold.equals(ident)


def test_freeze_schedule_ends_exactly_at_the_target():
    steps = freeze_schedule(10_000, 0.9, 5)
    assert steps[-1] == 0.9 and all(a < b for a, b in zip(steps, steps[1:], strict=False))
    assert steps[0] == pytest.approx(1 - 0.1**0.2)


# 7,344 conv weights: 0.8 · 7,344 = 5,875.2 and 0.737856 · 7,344 = 5,418.8 pruned, rounded.
@pytest.mark.parametrize(
    ("epochs", "period", "sparsity", "pruned"), [(3, 1, 0.8, 5875), (3, 2, 0.737856, 5419)]
)
def test_gem_miner_lands_exactly_on_the_target_sparsity(epochs, period, sparsity, pruned):
    net = chain()
    before = copy.deepcopy(net.state_dict())
    dense = Mask.dense(net)
    result = gem_miner_mask(
        net,
        dense,
        sparsity,
        loader(),
        device=torch.device("cpu"),
        spec=GemMinerSpec(epochs=epochs, period=period, lr=0.1),
        seed=0,
    )
    assert dense.num_total == 7344 and result.mask.num_pruned == pruned
    assert result.steps == epochs * 2 and result.epochs == epochs
    for key, value in net.state_dict().items():  # weights and BN statistics untouched
        assert torch.equal(value, before[key]), key


def test_gem_miner_is_seeded():
    net = chain()
    dense = Mask.dense(net)
    spec = GemMinerSpec(epochs=2)
    a = gem_miner_mask(net, dense, 0.5, loader(), spec=spec, device=torch.device("cpu"), seed=3)
    b = gem_miner_mask(net, dense, 0.5, loader(), spec=spec, device=torch.device("cpu"), seed=3)
    assert a.mask.equals(b.mask)


def _teacher_task(net: nn.Module, n: int = 256, batch: int = 32, seed: int = 1):
    """Inputs labelled by the dense network itself: the dense weights solve the task, so a
    mask that keeps the weights that matter keeps a low loss, a random one does not."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 8, 8, generator=gen)
    with torch.no_grad():
        y = net.eval()(x).argmax(1)
    return [(x[i : i + batch], y[i : i + batch]) for i in range(0, n, batch)]


def test_gem_miner_under_its_defaults_finds_a_mask_better_than_every_random_one():
    """Mining the scores with the real defaults gives a mask whose task loss is below that of
    every one of eight random masks of the same sparsity: the search learns which weights
    matter (with the old defaults, lr 0.1 and 10 epochs, scores barely moved)."""
    net = chain(bn=False)
    batches = _teacher_task(net)
    dense = Mask.dense(net)
    result = gem_miner_mask(
        net, dense, 0.8, batches, spec=GemMinerSpec(), device=torch.device("cpu"), seed=0
    )

    def loss_with(mask: Mask) -> float:
        model = mask.apply_to(copy.deepcopy(net)).eval()
        with torch.no_grad():
            return sum(float(F.cross_entropy(model(x), y)) for x, y in batches)

    random_losses = [
        loss_with(prune_to_sparsity(random_scores(dense, seed), dense, 0.8)) for seed in range(8)
    ]
    assert result.mask.sparsity == pytest.approx(0.8, abs=1e-3)
    assert loss_with(result.mask) < min(random_losses)


def test_gem_miner_scores_come_from_their_own_stream():
    """The same seed gives Gem-Miner and the random method unrelated draws: the mined ticket's
    overlap with the same-seed random ticket is near chance (with one shared generator it
    was 94–99%)."""
    net = chain(bn=False)
    dense = Mask.dense(net)
    spec = GemMinerSpec(epochs=2, lr=1e-6)  # scores stay where they started
    mined = gem_miner_mask(
        net, dense, 0.8, loader(), spec=spec, device=torch.device("cpu"), seed=4
    ).mask
    random = prune_to_sparsity(random_scores(dense, 4), dense, 0.8)
    kept = mined.num_kept
    both = sum(int((mined[n] & random[n]).sum()) for n in dense)
    assert abs(both / kept - 0.2) < 0.05  # chance is the density, 20%


def test_gem_miner_leaves_the_global_rng_and_the_model_as_found():
    net = chain()
    net.train()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    gem_miner_mask(
        net,
        Mask.dense(net),
        0.5,
        loader(),
        spec=GemMinerSpec(epochs=2),
        device=torch.device("cpu"),
        seed=0,
    )
    assert torch.equal(torch.rand(3), expected)
    assert net.training


def test_gem_miner_final_gem_is_the_flag_set_and_scores_above_half():
    net = chain(bn=False)
    dense = Mask.dense(net)
    kwargs = dict(device=torch.device("cpu"), seed=0)
    flags = gem_miner_mask(net, dense, 0.5, loader(), spec=GemMinerSpec(epochs=3), **kwargs)
    gem = gem_miner_mask(
        net, dense, 0.5, loader(), spec=GemMinerSpec(epochs=3, final="gem"), **kwargs
    )
    assert flags.mask.num_pruned == 3672
    assert all(bool((gem.mask[n] <= flags.mask[n]).all()) for n in dense)  # gem ⊆ flags
    assert gem.mask.sparsity == pytest.approx(flags.gem_sparsity)
    assert gem.mask.sparsity >= flags.mask.sparsity
    assert flags.freeze_epochs == (1, 2)  # every epoch but the last: one trailing epoch


def test_gem_miner_needs_an_epoch_after_its_last_freeze():
    from doublewin.core.errors import UserError

    with pytest.raises(UserError, match="epochs > period"):
        GemMinerSpec(epochs=5, period=5)


def test_ties_at_the_cut_never_empty_a_layer_the_target_does_not_demand():
    # Every score equal (the old strict test: ones init, nothing learned). Broken by position
    # (torch.topk), ties can empty a whole small tensor; spread, every tensor stays alive.
    scores = {"a": torch.ones(10), "b": torch.ones(1000), "c": torch.ones(10)}
    dense = Mask({n: torch.ones_like(t, dtype=torch.bool) for n, t in scores.items()})
    by_position = prune_to_sparsity(scores, dense, 0.9)
    spread = prune_to_sparsity(scores, dense, 0.9, ties=torch.Generator().manual_seed(0))
    assert spread.num_pruned == by_position.num_pruned
    assert all(int(spread[n].sum()) >= 1 for n in spread)
    # Layers are thinned in proportion: each keeps about 10% of its weights.
    assert abs(int(spread["b"].sum()) - 100) <= 2
    # Only when the target demands it (all but one weight pruned) do layers lose everything.
    almost = prune_lowest_count(scores, dense, dense.num_total - 1)
    assert almost.num_kept == 1


def prune_lowest_count(scores, mask, count):
    from doublewin.tickets.pruning import prune_lowest

    return prune_lowest(scores, mask, count, ties=torch.Generator().manual_seed(0))


def test_ties_break_only_among_tied_scores():
    scores = {"a": torch.tensor([0.1, 0.5, 0.5, 0.9]), "b": torch.tensor([0.5, 0.5, 0.2, 0.8])}
    dense = Mask({n: torch.ones_like(t, dtype=torch.bool) for n, t in scores.items()})
    pruned = prune_lowest_count(scores, dense, 4)  # 0.1, 0.2 and two of the four 0.5s
    assert not pruned["a"][0] and not pruned["b"][2]
    assert pruned["a"][3] and pruned["b"][3]
    assert int(pruned["a"][1:3].sum()) == 1 and int(pruned["b"][:2].sum()) == 1  # one per layer


def test_scorers_leave_the_mode_and_the_global_rng_as_found():
    from doublewin.attacks import PGD

    net = chain()
    dense = Mask.dense(net)
    attack = PGD(eps=8 / 255, step=2 / 255, steps=2)
    for score in (snip_scores, grasp_scores):
        for mode in (True, False):
            net.train(mode)
            torch.manual_seed(7)
            expected = torch.rand(2)
            torch.manual_seed(7)
            score(net, dense, loader(), score_batches=1, device=torch.device("cpu"), attack=attack)
            assert torch.equal(torch.rand(2), expected), score.__name__
            assert net.training is mode, score.__name__


def test_grasp_takes_its_hessian_gradient_product_over_conv_and_linear_weights():
    """With a mask over the convolutions only, GraSP's scores equal those computed with the
    linear layer in the mask too (Synaptic-Flow's parameter set): the product gᵀ∇L couples every
    weight, so it must not depend on which weights the mask covers."""
    net = chain()
    conv_only = Mask.dense(net)
    with_linear = Mask.dense(net, MaskScope(include_linear=True))
    kwargs = dict(score_batches=2, device=torch.device("cpu"))
    a = grasp_scores(net, conv_only, loader(), **kwargs)
    b = grasp_scores(net, with_linear, loader(), **kwargs)
    assert set(a) == set(conv_only) and set(b) == set(with_linear)
    for n in conv_only:
        assert torch.allclose(a[n], b[n])


def _two_layer_flow_net() -> nn.Module:
    """A bias-free two-layer 1×1-conv network, 2 → 2 → 2 channels: SynFlow's scores have a
    closed form. With an all-ones input, s(W1[k,j]) = |W1[k,j]| · Σ_o |W2[o,k]| and
    s(W2[o,k]) = |W2[o,k]| · Σ_j |W1[k,j]|."""
    net = nn.Sequential(nn.Conv2d(2, 2, 1, bias=False), nn.Conv2d(2, 2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 4.0]]).view(2, 2, 1, 1))
        net[1].weight.copy_(torch.tensor([[1.0, 5.0], [-2.5, 0.6]]).view(2, 2, 1, 1))
    return net


# By hand: Σ_o|W2[o,k]| = 3.5 (k=0), 5.6 (k=1); Σ_j|W1[k,j]| = 3 (k=0), 7 (k=1), so
# s(W1) = [[3.5, 7], [16.8, 22.4]] and s(W2) = [[3, 35], [7.5, 4.2]]: no two scores tie.
# SynFlow keeps the layer-0 weight of magnitude 1 only as long as its path carries flow.


def test_synflow_one_round_prunes_the_lowest_closed_form_scores():
    net = _two_layer_flow_net()
    mask = synflow_mask(net, Mask.dense(net), 0.5, input_shape=(2, 1, 1), iterations=1)
    # The four lowest: 3 (W2[0,0]), 3.5 (W1[0,0]), 4.2 (W2[1,1]), 7 (W1[0,1]).
    assert mask["0.weight"].view(2, 2).tolist() == [[False, False], [True, True]]
    assert mask["1.weight"].view(2, 2).tolist() == [[False, True], [True, False]]


def test_synflow_rescores_the_masked_network_on_its_exponential_schedule():
    # Target 3/8 in two rounds: round 1 prunes round(8 · (1 − 0.625^½)) = round(1.68) = 2
    # weights (W2[0,0] at 3 and W1[0,0] at 3.5). Rescored on the masked network,
    # Σ_o|W2[o,0]| drops to 2.5 and Σ_j|W1[0,j]| to 2: s(W1[0,1]) = 5, s(W2[1,0]) = 5,
    # s(W2[1,1]) = 4.2 is still the lowest, so round 2 prunes it.
    net = _two_layer_flow_net()
    mask = synflow_mask(net, Mask.dense(net), 0.375, input_shape=(2, 1, 1), iterations=2)
    assert mask["0.weight"].view(2, 2).tolist() == [[False, True], [True, True]]
    assert mask["1.weight"].view(2, 2).tolist() == [[False, True], [True, False]]
    # Four rounds to 3/4 prune 2, 4, 5, 6 weights in all (8 · (1 − 0.25^(i/4)), rounded).
    # Round 2 takes 4.2 and one of the two 5s; whichever goes, the other weight of that path
    # then carries no flow (score 0) and goes in round 3; round 4 weighs the last path's
    # W1[1,0] = 3 · 5 = 15 against W1[1,1] = 20 and W2[0,1] = 35. Left: input 1 → k = 1 → 0.
    deep = synflow_mask(net, Mask.dense(net), 0.75, input_shape=(2, 1, 1), iterations=4)
    assert deep["0.weight"].view(2, 2).tolist() == [[False, False], [False, True]]
    assert deep["1.weight"].view(2, 2).tolist() == [[False, True], [False, False]]
