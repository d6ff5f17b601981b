"""Channel tickets at a budget in channels, parameters or FLOPs: the cost model against the
exported network, and the allocations against their budget."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from doublewin.core.build import load_spec
from doublewin.core.specs import AttackSpec, MaskScope
from doublewin.core.ticket_parts import HarpSpec
from doublewin.models import WeightsMeta, build_model, save_weights
from doublewin.tickets import find_tickets, load_ticket
from doublewin.tickets.channel_budget import allocate, blocks_of, channel_cost
from doublewin.tickets.channel_search import harp_channel_mask
from doublewin.tickets.channels import channel_groups, channel_scores, prunable_groups
from doublewin.tickets.export import export_ticket
from doublewin.tickets.mask import Mask

SIZE = 8


@pytest.fixture(scope="module")
def resnet8():
    torch.manual_seed(0)
    model = build_model("resnet8", 10).eval()
    scope = Mask.dense(model, MaskScope())
    groups = prunable_groups(channel_groups(model, SIZE), scope)
    return model, scope, groups


def widths_of(groups, pruned):
    return [g.size - len(pruned[g.name]) for g in groups]


def test_the_cost_model_counts_what_the_dense_network_holds(resnet8):
    model, _, groups = resnet8
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.rand(1, 3, SIZE, SIZE))
    expected = {
        "params": sum(p.numel() for p in model.parameters()),
        "flops": counter.get_total_flops(),
        "channels": sum(g.size for g in groups),
    }
    for unit, value in expected.items():
        assert channel_cost(model, groups, SIZE, unit).dense == value


@pytest.mark.parametrize("unit", ["params", "flops"])
@pytest.mark.parametrize("ratio", ["global", "layer"])
def test_a_budgeted_channel_ticket_exports_to_what_its_cost_says(tmp_path, unit, ratio):
    torch.manual_seed(0)
    theta = tmp_path / "theta.safetensors"
    model = build_model("resnet8", 10)
    save_weights(theta, model, WeightsMeta(arch="resnet8", num_classes=10, input_size=SIZE))
    spec = load_spec(
        "tickets",
        {
            "weights": str(theta),
            "method": "omp",
            "pattern": "channel",
            "sparsities": [0.5],
            "channel_budget": unit,
            "channel_ratio": ratio,
            "channel_round": 4,
        },
    )
    (path,) = find_tickets(spec, theta, workdir=tmp_path / "t")
    extra = load_ticket(path).info.extra
    assert extra["channel_budget"] == unit and extra["budget_sparsity"] >= 0.5
    done = export_ticket(theta, path, tmp_path / "x", batch=torch.rand(2, 3, SIZE, SIZE))
    measured = {"params": done.exported.params, "flops": done.exported.flops}[unit]
    dense = {"params": done.dense.params, "flops": done.dense.flops}[unit]
    assert 1 - measured / dense == pytest.approx(extra["budget_sparsity"], abs=1e-6)
    architecture = json.loads((tmp_path / "x" / "architecture.json").read_text())
    assert all(
        conv[1] % 4 == 0 for stage in architecture["stages"] for b in stage for conv in b["convs"]
    )


@pytest.mark.parametrize("unit", ["channels", "params", "flops"])
@pytest.mark.parametrize("round_to", [1, 8])
def test_global_allocation_meets_the_budget_as_closely_as_whole_blocks_allow(
    resnet8, unit, round_to
):
    model, _, groups = resnet8
    cost = channel_cost(model, groups, SIZE, unit)
    scores = channel_scores(groups, dict(model.named_parameters()))
    for sparsity in (0.3, 0.6):
        pruned = allocate(cost, groups, scores, {}, sparsity, round_to=round_to)
        widths = widths_of(groups, pruned)
        limit = cost.budget(sparsity)
        assert cost.cost(widths) <= limit
        for i, g in enumerate(groups):  # no block left out would still fit
            assert g.size == widths[i] or widths[i] % round_to == 0
            if widths[i] < g.size:
                more = list(widths)
                more[i] += round_to if (g.size - widths[i]) >= round_to else g.size - widths[i]
                assert cost.cost(more) > limit


def test_uniform_allocation_keeps_nearly_one_fraction_and_fills_the_budget(resnet8):
    model, _, groups = resnet8
    cost = channel_cost(model, groups, SIZE, "params")
    scores = channel_scores(groups, dict(model.named_parameters()))
    for sparsity in (0.3, 0.5, 0.7):
        widths = widths_of(groups, allocate(cost, groups, scores, {}, sparsity, ratio="layer"))
        fractions = [w / g.size for g, w in zip(groups, widths, strict=True)]
        # One common fraction, each group at a whole channel under it, then a few channels
        # given back where they still fit.
        assert max(fractions) - min(fractions) <= 0.15
        assert cost.cost(widths) <= cost.budget(sparsity)
        for i, g in enumerate(groups):
            if widths[i] < g.size:
                assert cost.cost([w + (j == i) for j, w in enumerate(widths)]) > cost.budget(
                    sparsity
                )


def test_a_budget_no_group_can_hold_is_refused(resnet8):
    model, _, groups = resnet8
    cost = channel_cost(model, groups, SIZE, "flops")
    scores = channel_scores(groups, dict(model.named_parameters()))
    with pytest.raises(Exception, match="cannot be drawn"):
        allocate(cost, groups, scores, {}, 0.999, round_to=8)


def test_blocks_leave_widths_that_are_multiples():
    assert blocks_of(list(range(10)), 10, 4) == [[0, 1], [2, 3, 4, 5], [6, 7, 8, 9]]


def test_harp_channel_rates_meet_the_flop_budget_to_the_channel(resnet8):
    model, scope, groups = resnet8
    cost = channel_cost(model, groups, SIZE, "flops")
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(32, 3, SIZE, SIZE, generator=gen), torch.randint(0, 10, (32,), generator=gen)
    data = [(x[:16], y[:16]), (x[16:], y[16:])]
    spec = HarpSpec(epochs=2, loss="at", attack=AttackSpec(steps=1, bn_mode="eval"), gamma=0.0)
    result = harp_channel_mask(
        model, scope, groups, cost, 0.5, data, spec=spec, device=torch.device("cpu")
    )
    widths = [round(result.ticket_rates[g.name] * g.size) for g in groups]
    limit = cost.budget(0.5)
    assert cost.cost(widths) <= limit
    for i, g in enumerate(groups):
        if widths[i] < g.size:
            more = list(widths)
            more[i] += 1
            assert cost.cost(more) > limit
    kept = {g.name: g.size - len(p) for g, p in _pruned(result.mask, groups).items()}
    assert [kept[g.name] for g in groups] == widths


def _pruned(mask, groups):
    from doublewin.tickets.channels import pruned_positions

    positions = pruned_positions(mask, groups)
    return {g: positions[g.name] for g in groups}
