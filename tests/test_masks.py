"""Masks and global magnitude pruning: parameter sets, counting, equality with torch's
global_unstructured(L1Unstructured), and the IMP ladder."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.utils.prune as torch_prune
from torch import nn

from doublewin.core.errors import UserError
from doublewin.core.specs import MaskScope
from doublewin.tickets.ladder import imp_ladder
from doublewin.tickets.mask import Mask, pack_bits, prunable_parameters, unpack_bits
from doublewin.tickets.pruning import (
    magnitude_scores,
    prune_fraction_of_remaining,
    prune_to_sparsity,
    target_pruned_count,
)


def small_net(seed: int = 0, width: int = 16) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.Conv2d(2 * width, 2 * width, 3, padding=1, bias=False),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, 10),
    )


def test_default_scope_is_every_conv_weight_including_the_first_and_nothing_else():
    net = small_net()
    assert list(prunable_parameters(net)) == ["0.weight", "3.weight", "6.weight"]
    with_linear = prunable_parameters(net, MaskScope(include_linear=True))
    assert list(with_linear) == ["0.weight", "3.weight", "6.weight", "11.weight"]


def test_exclude_takes_module_names_and_globs_and_rejects_patterns_matching_nothing():
    net = small_net()
    assert list(prunable_parameters(net, MaskScope(exclude=("0",)))) == ["3.weight", "6.weight"]
    assert list(prunable_parameters(net, MaskScope(exclude=("[36].weight",)))) == ["0.weight"]
    with pytest.raises(UserError, match="'conv9' matches no prunable layer"):
        prunable_parameters(net, MaskScope(exclude=("conv9",)))


def test_sparsity_counts_and_per_layer_report_are_exact():
    net = small_net()
    mask = Mask.dense(net)
    mask["0.weight"].view(-1)[:100] = False
    mask["3.weight"].view(-1)[:7] = False
    assert mask.num_total == 16 * 3 * 9 + 32 * 16 * 9 + 32 * 32 * 9
    assert mask.num_pruned == 107
    assert mask.sparsity == pytest.approx(107 / mask.num_total)
    rows = {r.name: r for r in mask.per_layer()}
    assert rows["0.weight"].pruned == 100 and rows["0.weight"].sparsity == pytest.approx(100 / 432)
    assert rows["6.weight"].sparsity == 0.0


def test_apply_to_zeroes_exactly_the_pruned_weights_and_leaves_the_rest():
    net = small_net()
    before = copy.deepcopy(net.state_dict())
    mask = prune_to_sparsity(
        magnitude_scores(dict(net.named_parameters()), Mask.dense(net)), Mask.dense(net), 0.5
    )
    mask.apply_to(net)
    for name, m in mask.items():
        w = net.state_dict()[name]
        assert torch.equal(w[~m], torch.zeros_like(w[~m]))
        assert torch.equal(w[m], before[name][m])
    assert torch.equal(net.state_dict()["3.bias"], before["3.bias"])


def test_apply_to_a_model_of_other_shapes_is_a_user_error():
    mask = Mask.dense(small_net(width=16))
    with pytest.raises(UserError, match="does not fit this model: 0.weight is"):
        mask.apply_to(small_net(width=8))


def test_bit_packing_round_trips_any_shape():
    gen = torch.Generator().manual_seed(1)
    for shape in [(3,), (7, 5), (64, 3, 7, 7), (1, 1, 1, 1)]:
        m = torch.rand(shape, generator=gen) > 0.3
        packed = pack_bits(m)
        assert packed.dtype.name == "uint8" and packed.size == (m.numel() + 7) // 8
        assert torch.equal(unpack_bits(packed, shape), m)


def test_content_hash_depends_on_values_and_not_on_device_or_order():
    net = small_net()
    a = Mask.dense(net)
    b = Mask((n, m.clone()) for n, m in reversed(list(a.items())))
    assert a.content_hash() == b.content_hash()
    b["3.weight"].view(-1)[5] = False
    assert a.content_hash() != b.content_hash()


def _with_ties(net: nn.Module) -> nn.Module:
    # Quantize so many weights share a magnitude: tie-breaking must match torch's too.
    with torch.no_grad():
        for p in prunable_parameters(net).values():
            p.copy_(torch.round(p * 20) / 20)
    return net


@pytest.mark.parametrize("include_linear", [False, True])
def test_global_magnitude_pruning_equals_torch_global_unstructured_over_iterative_rounds(
    include_linear,
):
    """Three rounds of 20% of the REMAINING weights, with 'training' between rounds (the
    weights change) and many tied magnitudes: identical masks to torch.nn.utils.prune."""
    ours_net = _with_ties(small_net(seed=3))
    ref_net = copy.deepcopy(ours_net)
    scope = MaskScope(include_linear=include_linear)
    names = list(prunable_parameters(ours_net, scope))
    modules = dict(ref_net.named_modules())
    targets = [(modules[n.rpartition(".")[0]], "weight") for n in names]
    mask = Mask.dense(ours_net, scope)
    gen = torch.Generator().manual_seed(7)
    for _ in range(3):
        torch_prune.global_unstructured(
            targets, pruning_method=torch_prune.L1Unstructured, amount=0.2
        )
        mask = prune_fraction_of_remaining(
            magnitude_scores(dict(ours_net.named_parameters()), mask), mask, 0.2
        )
        for name, (module, _) in zip(names, targets, strict=True):
            assert torch.equal(mask[name], module.weight_mask.bool()), name
        # "Training": the same change to both copies' underlying weights.
        with torch.no_grad():
            for name, (module, _) in zip(names, targets, strict=True):
                delta = torch.round(torch.randn(module.weight_orig.shape, generator=gen) * 4) / 40
                module.weight_orig.add_(delta)
                dict(ours_net.named_parameters())[name].add_(delta)
        ref_net(torch.rand(2, 3, 8, 8))  # torch recomputes weight = weight_orig * mask here
    assert mask.num_pruned == sum(int((m.weight_mask == 0).sum()) for m, _ in targets)


def test_one_shot_to_a_sparsity_equals_torch_with_that_amount():
    net = _with_ties(small_net(seed=5))
    ref = copy.deepcopy(net)
    modules = dict(ref.named_modules())
    names = list(prunable_parameters(net))
    targets = [(modules[n.rpartition(".")[0]], "weight") for n in names]
    torch_prune.global_unstructured(
        targets, pruning_method=torch_prune.L1Unstructured, amount=0.737856
    )
    dense = Mask.dense(net)
    ours = prune_to_sparsity(magnitude_scores(dict(net.named_parameters()), dense), dense, 0.737856)
    for name, (module, _) in zip(names, targets, strict=True):
        assert torch.equal(ours[name], module.weight_mask.bool())


# The paper's ladder rungs (percent) and the IMP round that reaches each.
PAPER_RUNGS = {6: 73.79, 7: 79.03, 8: 83.22, 10: 89.26, 11: 91.41, 15: 96.48}
RESNET50_CONV_WEIGHTS = 23_454_912  # 53 convs of torchvision's ResNet-50


def ladder_counts(total: int, prune_rate: float, rounds: int) -> list[int]:
    """Reference: pruned weights after each round when ``round(rate × remaining)`` go."""
    remaining, out = total, []
    for _ in range(rounds):
        remaining -= round(prune_rate * remaining)
        out.append(total - remaining)
    return out


def test_imp_ladder_reaches_the_paper_sparsities_on_resnet50_by_exact_counting():
    import torchvision

    with torch.device("meta"):
        resnet50 = torchvision.models.resnet50()
    params = prunable_parameters(resnet50)
    total = sum(p.numel() for p in params.values())
    assert len(params) == 53 and total == RESNET50_CONV_WEIGHTS
    counts = ladder_counts(total, 0.2, 15)
    for k, percent in PAPER_RUNGS.items():
        assert round(100 * counts[k - 1] / total, 2) == percent
        assert round(100 * imp_ladder(0.2, 15)[k - 1], 2) == percent


def test_iterative_pruning_prunes_exactly_the_ladder_counts_on_a_model_resolving_0_01_percent():
    net = small_net(seed=2, width=48)  # 63,936 conv weights: one weight is 0.0016%
    mask = Mask.dense(net)
    total = mask.num_total
    expected = ladder_counts(total, 0.2, 15)
    gen = torch.Generator().manual_seed(0)
    for k in range(1, 16):
        scores = {n: torch.rand(m.shape, generator=gen) for n, m in mask.items()}
        mask = prune_fraction_of_remaining(scores, mask, 0.2)
        assert mask.num_pruned == expected[k - 1]
        if k in PAPER_RUNGS:
            assert round(100 * mask.sparsity, 2) == PAPER_RUNGS[k]


@pytest.mark.slow
def test_iterative_pruning_on_the_real_resnet50_parameter_set_hits_the_paper_rungs():
    import torchvision

    net = torchvision.models.resnet50()
    mask = Mask.dense(net)
    scores = magnitude_scores(dict(net.named_parameters()), mask)
    for k in range(1, 16):
        mask = prune_fraction_of_remaining(scores, mask, 0.2)
        if k in PAPER_RUNGS:
            assert round(100 * mask.sparsity, 2) == PAPER_RUNGS[k]


def test_pruning_to_a_lower_sparsity_than_the_mask_has_is_a_user_error():
    net = small_net()
    dense = Mask.dense(net)
    scores = magnitude_scores(dict(net.named_parameters()), dense)
    half = prune_to_sparsity(scores, dense, 0.5)
    with pytest.raises(UserError, match="already sparser"):
        prune_to_sparsity(scores, half, 0.2)


def test_ladder_counts_and_rungs_by_hand():
    # 1,000 weights, a fifth of the remaining per round: 200 → 800 left, 160 → 640,
    # 128 → 512, round(102.4) = 102 → 410, 82 → 328.
    assert ladder_counts(1000, 0.2, 5) == [200, 360, 488, 590, 672]
    # 1 − 0.8^k to 6 digits: 0.2, 0.36, 0.488, 0.5904, 0.67232, 0.737856.
    assert imp_ladder(0.2, 6) == (0.2, 0.36, 0.488, 0.5904, 0.67232, 0.737856)
    assert imp_ladder(0.5, 4) == (0.5, 0.75, 0.875, 0.9375)
    # A count is Python's round(): 5,418.8 → 5,419; 1.4 → 1; 2.5 → 2 (half to even, where
    # int() and rounding half up part ways: 2 and 3); 1.5 → 2 (int() would give 1).
    assert target_pruned_count(7344, 0.737856) == 5419
    assert target_pruned_count(7, 0.2) == 1
    assert target_pruned_count(5, 0.5) == 2
    assert target_pruned_count(3, 0.5) == 2
    mask = Mask({"w": torch.ones(1000, dtype=torch.bool)})
    scores = {"w": torch.arange(1000, dtype=torch.float32)}
    for pruned in (200, 360, 488, 590, 672):
        mask = prune_fraction_of_remaining(scores, mask, 0.2)
        assert mask.num_pruned == pruned
        assert not bool(mask["w"][:pruned].any()) and bool(mask["w"][pruned:].all())


def test_imp_rounds_are_the_rounds_to_the_largest_requested_rung():
    from doublewin.core.specs import TicketSpec
    from doublewin.tickets.ladder import imp_rounds, ticket_ladder

    assert imp_rounds(TicketSpec(rounds=3)) == 3
    # 0.36 is rung 2 and 0.737856 rung 6 of 1 − 0.8^k; the largest decides.
    spec = TicketSpec(prune_rate=0.2, sparsities=(0.737856, 0.36))
    assert imp_rounds(spec) == 6 and ticket_ladder(spec) == (0.36, 0.737856)
    assert imp_rounds(TicketSpec(prune_rate=0.5, sparsities=(0.875,))) == 3
    assert ticket_ladder(TicketSpec(prune_rate=0.5, rounds=2)) == (0.5, 0.75)
    with pytest.raises(UserError, match=r"0\.7 is not a rung of the IMP ladder 1 − 0\.8\^k"):
        imp_rounds(TicketSpec(prune_rate=0.2, sparsities=(0.36, 0.7)))
