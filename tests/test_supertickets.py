"""SuperTickets: the supernet family, the MAC-weighted γ-L1, shrinking, progressive pruning with
regrowth, the two-in-one search and search-then-prune, resume, and the export of a SuperTicket.

The searches run the real code on 10% of `digits` (108 images) for a few one-epoch phases."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from doublewin.core.build import load_spec
from doublewin.core.errors import UserError
from doublewin.core.specs import MaskScope
from doublewin.models import WeightsMeta, build_model, load_model, save_weights
from doublewin.models.supernet import SuperNet, cell_sizes, path_key
from doublewin.models.supernets import build_supernet, gates, searchable_cells
from doublewin.tickets import find_tickets, load_ticket
from doublewin.tickets.export import export_ticket
from doublewin.tickets.mask import Mask
from doublewin.tickets.network_export import masked_supernet
from doublewin.tickets.progressive import prune_globally, step_sparsity
from doublewin.tickets.shrink import (
    SearchMasks,
    channel_macs,
    mac_penalties,
    rho_at,
    shrink,
)

THRESHOLD = 1e-3
SEARCH = {
    "data": {"name": "digits", "fraction": 0.1, "resolution": 8},
    "train": {"epochs": 1, "batch_size": 32, "lr": 0.2, "schedule": "cosine"},
    # ρ and the threshold large enough that 16 steps shrink the network (paths and a whole
    # cell go) and the last prune regrows weights.
    "supertickets": {
        "epochs": 4,
        "rho": 0.3,
        "rho_warmup_epochs": 1,
        "shrink_interval": 1,
        "shrink_min_macs": 0,
        "prune_interval": 1,
        "prune_step": 0.2,
        "shrink_threshold": 0.3,
    },
}


def _theta(folder: Path) -> Path:
    torch.manual_seed(0)
    path = folder / "theta.safetensors"
    save_weights(path, build_model("supernet8", 10), WeightsMeta("supernet8", 10, input_size=8))
    return path


def _spec(method: str, sparsities: list[float], **changes):
    fields = copy.deepcopy(SEARCH)
    for key, value in changes.items():
        fields["supertickets"][key] = value
    return load_spec("tickets", {"method": method, "sparsities": sparsities, **fields})


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """SuperTickets at 30% and 60% and search-then-prune matching them, from one θp."""
    folder = tmp_path_factory.mktemp("supertickets")
    theta = _theta(folder)
    find_tickets(_spec("supertickets", [0.3, 0.6]), theta, workdir=folder / "st")
    stp = load_spec(
        "tickets",
        {
            "method": "search-then-prune",
            "sparsities": [0.3, 0.6],
            "macs_of": str(folder / "st"),
            **SEARCH,
        },
    )
    find_tickets(stp, theta, workdir=folder / "stp")
    return {"theta": theta, "st": folder / "st", "stp": folder / "stp", "root": folder}


def test_the_supernet_and_a_shrunk_network_are_built_from_their_description():
    model = build_model("supernet8", 10)
    description = model.describe()
    assert [c["kernels"] for c in description["cells"]] == [[3, 5]] * 4
    twin = build_supernet(json.loads(json.dumps(description)))
    twin.load_state_dict(model.state_dict())  # strictly: same names, same shapes
    description["cells"][1]["kernels"], description["cells"][1]["channels"] = [5], [7]
    small = build_supernet(description)
    assert set(small.state_dict()) < set(model.state_dict())
    assert small.cells[1].paths[path_key(5)].gate.num_features == 7
    assert [c["kernels"] for c in build_model("supernet_cifar", 10).describe()["cells"]][0] == [
        3,
        5,
        7,
    ]


@pytest.mark.parametrize("arch", ["supernet8", "supernet_cifar"])
def test_the_mac_penalty_matches_the_flop_counter_per_path(arch):
    model = build_model(arch, 10).eval()
    description = model.describe()
    per_channel = channel_macs(model)
    counted, widths = {}, {}
    for (name, cell), (size_in, _) in zip(
        searchable_cells(model), cell_sizes(description), strict=True
    ):
        for k in cell.kernels():
            path = cell.paths[path_key(k)]
            counter = FlopCounterMode(display=False)
            with counter, torch.no_grad():
                path(torch.rand(1, cell.cin, size_in, size_in))
            counted[(name, k)] = counter.get_total_flops() / 2
            widths[(name, k)] = path.gate.num_features
            assert per_channel[(name, k)] * widths[(name, k)] == counted[(name, k)]
    mean = sum(counted.values()) / sum(widths.values())
    for p, penalty in mac_penalties(model).items():
        assert penalty == pytest.approx(counted[p] / widths[p] / mean, rel=1e-12)
    assert len(set(round(v, 9) for v in mac_penalties(model).values())) > 1


def test_rho_is_zero_then_linear_then_constant():
    spec = _spec(
        "supertickets", [0.5], rho=2.0, rho_free_epochs=1, rho_warmup_epochs=3
    ).supertickets
    assert rho_at(spec, 9, 10) == 0.0
    assert rho_at(spec, 20, 10) == pytest.approx(1.0)
    assert rho_at(spec, 25, 10) == pytest.approx(1.5)
    assert rho_at(spec, 30, 10) == 2.0
    whole_epochs = _spec("supertickets", [0.5], rho=2.0, rho_warmup_epochs=2, rho_stepwise=False)
    assert rho_at(whole_epochs.supertickets, 15, 10) == pytest.approx(1.0)


def _with_gammas(seed: int = 0) -> SuperNet:
    """supernet8 in eval mode with random BatchNorm statistics and β (so every removed channel
    has a constant to fold), and chosen γ at and around the threshold."""
    torch.manual_seed(seed)
    model = build_model("supernet8", 10)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.bias.normal_(0, 0.5)
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def test_shrinking_removes_exactly_the_channels_at_or_under_the_threshold():
    model = _with_gammas()
    bns = gates(model)
    first, last = ("cells.0", 3), ("cells.3", 5)
    with torch.no_grad():
        bns[first].weight[:4] = torch.tensor([0.0, THRESHOLD, -THRESHOLD, 1.001 * THRESHOLD])
        bns[last].weight.zero_()  # the whole path goes
    expected = {p: (bn.weight.abs() > THRESHOLD).nonzero().squeeze(1) for p, bn in bns.items()}
    state = SearchMasks(
        Mask.dense(model), {}, {p: torch.arange(bn.num_features) for p, bn in bns.items()}
    )
    channels, paths = shrink(model, THRESHOLD, state, reuse_mask=False)
    assert (channels, paths) == (3 + 96, 1)
    assert 5 not in model.cells[3].kernels()
    for p, kept in expected.items():
        if p == last:
            assert p not in state.origin
            continue
        assert torch.equal(state.origin[p], kept)
        assert gates(model)[p].num_features == kept.numel()
    assert state.origin[first][:1].tolist() == [3]  # 1.001 × threshold stays
    assert set(state.mask) == set(Mask.dense(model))


def test_shrinking_changes_no_logit():
    model = _with_gammas(1)
    bns = gates(model)
    with torch.no_grad():
        for bn in bns.values():
            bn.weight[torch.rand(bn.num_features) < 0.4] = 0.0
        bns[("cells.2", 3)].weight.zero_()
        bns[("cells.1", 3)].weight.zero_()  # the whole cell goes
        bns[("cells.1", 5)].weight.zero_()
    original = copy.deepcopy(model)
    x = torch.rand(32, 3, 8, 8)
    with torch.no_grad():
        before = model(x)
    shrink(model, THRESHOLD, SearchMasks(Mask.dense(model), {}, {}), reuse_mask=False)
    with torch.no_grad():
        after = model(x)
    assert len(model.cells[2].paths) == 1 and len(model.cells[1].paths) == 0
    assert (after - before).abs().max() <= 1e-5 * before.abs().max()
    # The folded constants matter: the same network with the cells' old running means differs.
    unfolded = copy.deepcopy(model)
    for new, old in zip(unfolded.cells, original.cells, strict=True):
        new.bn.running_mean.copy_(old.bn.running_mean)
    with torch.no_grad():
        assert (unfolded(x) - before).abs().max() > 1e-2


def _pruned_state(model: SuperNet, sparsity: float) -> SearchMasks:
    state = SearchMasks(Mask.dense(model), {}, {})
    prune_globally(model, state, sparsity, scope=MaskScope(), regrowth=True)
    return state


@pytest.mark.parametrize("regrowth", [True, False])
def test_a_pruned_weight_regrows_unless_the_ablation_forbids_it(regrowth):
    model = build_model("supernet8", 10)
    state = _pruned_state(model, 0.3)
    name = "cells.1.paths.k5.expand.conv.weight"
    params = dict(model.named_parameters())
    pruned = (~state.mask[name]).nonzero()[0]
    old_value = state.dormant[name][tuple(pruned)].item()
    with torch.no_grad():  # training shrinks every kept weight below the pruned ones
        for n, keep in state.mask.items():
            params[n][keep] *= 1e-3
    before = state.mask.clone()
    regrown = prune_globally(model, state, 0.4, scope=MaskScope(), regrowth=regrowth)
    new = state.mask
    if regrowth:
        assert regrown > 0 and bool(new[name][tuple(pruned)])
        assert params[name][tuple(pruned)].item() == old_value  # back with its old value
    else:
        assert regrown == 0
        assert all(bool((new[n] <= before[n]).all()) for n in new)  # only ever removes
        assert not bool(new[name][tuple(pruned)])
    assert new.num_pruned == round(0.4 * new.num_total)


def test_the_ablation_needs_the_masks_kept_through_shrinking():
    with pytest.raises(UserError, match="reuse_mask: true"):
        _spec("supertickets", [0.5], regrowth=False)
    with pytest.raises(UserError, match="pattern"):
        load_spec("tickets", {"method": "supertickets", "pattern": "channel"})


def test_the_prune_schedule_steps_by_ten_percent_up_to_the_target():
    assert [step_sparsity(k, 0.1, 0.35) for k in (1, 2, 3, 4, 5)] == [0.1, 0.2, 0.3, 0.35, 0.35]


def test_the_final_sparsity_equals_each_rungs_target_to_the_parameter(drawn):
    for method in ("st", "stp"):
        for target in (0.3, 0.6):
            ticket = load_ticket(drawn[method] / f"ticket-{target:.6f}.safetensors")
            assert ticket.info.total - ticket.info.kept == round(target * ticket.info.total)
            network, meta = load_model(drawn[method] / ticket.info.extra["network"])
            ticket.fit(network, weights_hash=meta.content_hash, arch=meta.arch)
            assert ticket.info.weights_hash == meta.content_hash
            assert ticket.info.total == Mask.dense(network).num_total
            assert ticket.info.extra["kept_macs"] < ticket.info.extra["macs"]


def test_the_search_shrinks_and_regrows_unless_the_ablation_forbids_it(drawn, tmp_path):
    events = load_ticket(drawn["st"] / "ticket-0.600000.safetensors").info.extra["events"]
    assert sum(e.get("shrunk_channels", 0) for e in events) > 0
    assert sum(e.get("removed_paths", 0) for e in events) > 0
    assert [e.get("prune") for e in events] == [0.2, 0.4, 0.6, 0.6]
    assert events[-1]["final"]
    assert sum(e["regrown"] for e in events) > 0
    ablation = _spec("supertickets", [0.6], regrowth=False, reuse_mask=True)
    find_tickets(ablation, drawn["theta"], workdir=tmp_path / "ablation")
    ticket = load_ticket(tmp_path / "ablation" / "ticket-0.600000.safetensors")
    assert [e["regrown"] for e in ticket.info.extra["events"]] == [0, 0, 0, 0]
    # Without regrowth the rung is reached, or passed where shrinking took kept weights.
    assert ticket.info.total - ticket.info.kept >= round(0.6 * ticket.info.total)
    network, _ = load_model(drawn["st"] / "network-0.600000.safetensors")
    assert network.describe()["cells"] != build_model("supernet8", 10).describe()["cells"]


def test_search_then_prune_matches_the_supertickets_macs(drawn):
    for target in (0.3, 0.6):
        st = load_ticket(drawn["st"] / f"ticket-{target:.6f}.safetensors").info.extra
        stp = load_ticket(drawn["stp"] / f"ticket-{target:.6f}.safetensors").info.extra
        assert stp["macs_budget"] == st["macs"]
        assert stp["macs"] <= st["macs"]
        assert all("prune" not in e for e in stp["events"])  # the search alone


def test_a_search_then_prune_export_matches_its_masked_supernet(drawn, tmp_path):
    for target in (0.3, 0.6):
        name = f"{target:.6f}.safetensors"
        stp = drawn["stp"]
        result = export_ticket(stp / f"network-{name}", stp / f"ticket-{name}", tmp_path / name)
        assert result.max_logit_difference <= 1e-5 * max(1.0, result.largest_logit)


def test_the_exported_network_matches_the_masked_supernet(drawn, tmp_path):
    ticket_path = drawn["st"] / "ticket-0.600000.safetensors"
    network_path = drawn["st"] / "network-0.600000.safetensors"
    out = tmp_path / "export"
    result = export_ticket(network_path, ticket_path, out)
    assert result.pattern == "supertickets"
    assert result.max_logit_difference <= 1e-5 * max(1.0, result.largest_logit)
    assert result.exported.params < result.dense.params
    assert result.exported.flops < result.dense.flops
    # model.py loads the network without doublewin, and it is the masked supernet's function.
    spec = importlib.util.spec_from_file_location("exported_model", out / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from safetensors.torch import load_file

    net = module.SuperNet(json.loads((out / "architecture.json").read_text()))
    net.load_state_dict(load_file(str(out / "weights.safetensors")))
    network, meta = load_model(network_path)
    reference = masked_supernet(
        network, load_ticket(ticket_path).mask, load_ticket(ticket_path), meta
    )
    x = torch.rand(16, 3, 8, 8)
    with torch.no_grad():
        assert (net.eval()(x) - reference(x)).abs().max() <= 1e-5 * reference(x).abs().max()
    # The masked supernet is the supernet's shape holding no more weights than the ticket keeps.
    covered = Mask.dense(reference)
    params = dict(reference.named_parameters())
    nonzero = sum(int(params[n].count_nonzero()) for n in covered)
    ticket = load_ticket(ticket_path).info
    assert covered.num_total > ticket.total and 0 < nonzero <= ticket.kept


def test_resume_mid_search_gives_the_same_ticket(drawn, tmp_path, monkeypatch):
    from doublewin.tickets import search

    saved = search._save
    calls = []

    def killed_after_two(folder, model, state):
        calls.append(state.epoch)
        if len(calls) == 2:
            raise KeyboardInterrupt  # after the second phase trained, before it was saved
        saved(folder, model, state)

    spec = _spec("supertickets", [0.3, 0.6])
    monkeypatch.setattr(search, "_save", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        find_tickets(spec, drawn["theta"], workdir=tmp_path / "st")
    monkeypatch.setattr(search, "_save", saved)
    find_tickets(spec, drawn["theta"], workdir=tmp_path / "st")
    for target in (0.3, 0.6):
        name = f"{target:.6f}.safetensors"
        first = load_ticket(drawn["st"] / f"ticket-{name}").info
        again = load_ticket(tmp_path / "st" / f"ticket-{name}").info
        assert again.mask_hash == first.mask_hash
        assert again.weights_hash == first.weights_hash  # the network, byte for byte


def test_a_supernet_method_refuses_another_architecture(tmp_path):
    path = tmp_path / "resnet.safetensors"
    save_weights(path, build_model("resnet8", 10), WeightsMeta("resnet8", 10, input_size=8))
    with pytest.raises(UserError, match="supernet"):
        find_tickets(_spec("supertickets", [0.5]), path, workdir=tmp_path / "t")


def test_search_then_prune_needs_supertickets_to_match(drawn, tmp_path):
    spec = load_spec("tickets", {"method": "search-then-prune", "sparsities": [0.5], **SEARCH})
    with pytest.raises(UserError, match="macs_of"):
        find_tickets(spec, drawn["theta"], workdir=tmp_path / "t")
    with pytest.raises(UserError, match="no SuperTicket at sparsity 0.5"):
        find_tickets(spec, drawn["theta"], workdir=tmp_path / "u", reference=drawn["st"])


def test_a_superticket_transfers_as_its_network_under_its_mask(drawn, tmp_path):
    from doublewin.stages import Inputs, run_stage

    ticket = drawn["st"] / "ticket-0.600000.safetensors"
    spec = load_spec(
        "transfer",
        {
            "data": {"name": "digits", "fraction": 0.1, "resolution": 8, "test_limit": 64},
            "train": {"epochs": 1, "batch_size": 32, "lr": 0.05},
        },
    )
    network = drawn["st"] / "network-0.600000.safetensors"
    metrics = run_stage(
        "transfer",
        spec,
        Inputs(weights=network, ticket=ticket),
        tmp_path,
        device=torch.device("cpu"),
    )
    info = load_ticket(ticket).info
    assert metrics["sparsity"] == round(info.sparsity, 6)
    assert (metrics["macs"], metrics["kept_macs"]) == (info.extra["macs"], info.extra["kept_macs"])
    assert "warnings" not in metrics  # the ticket was drawn from exactly this network
    with pytest.raises(UserError, match="pass the network beside it"):
        run_stage(
            "transfer",
            spec,
            Inputs(weights=drawn["theta"], ticket=ticket),
            tmp_path / "x",
            device=torch.device("cpu"),
        )


def test_the_budget_cut_removes_the_lowest_gammas_until_the_macs_fit():
    from doublewin.models.supernet import network_macs
    from doublewin.tickets.supertickets import slimming_threshold

    model = _with_gammas(2)
    with torch.no_grad():
        for bn in gates(model).values():
            bn.weight.uniform_(0.1, 1.0)
    per_channel = channel_macs(model)
    full = network_macs(model.describe())
    budget = int(0.6 * full)
    threshold = slimming_threshold(model, per_channel, budget)
    gammas = torch.cat([bn.weight.abs() for bn in gates(model).values()])
    costs = torch.cat(
        [torch.full((bn.num_features,), per_channel[p]) for p, bn in gates(model).items()]
    )
    assert full - float(costs[gammas <= threshold].sum()) <= budget  # fits
    assert full - float(costs[gammas < threshold].sum()) > budget  # one channel fewer does not
    assert slimming_threshold(model, per_channel, full) is None


def test_search_then_prune_cut_to_a_smaller_budget_still_exports_exactly(drawn, tmp_path):
    import dataclasses

    from doublewin.tickets import Ticket, save_ticket

    source = load_ticket(drawn["st"] / "ticket-0.300000.safetensors")
    budget = source.info.extra["macs"] // 2
    reference = tmp_path / "reference"
    reference.mkdir()
    info = dataclasses.replace(source.info, extra={**source.info.extra, "macs": budget})
    save_ticket(reference / "ticket-0.300000.safetensors", Ticket(source.mask, info))
    spec = load_spec(
        "tickets",
        {"method": "search-then-prune", "sparsities": [0.3], "macs_of": str(reference), **SEARCH},
    )
    find_tickets(spec, drawn["theta"], workdir=tmp_path / "stp")
    name = "0.300000.safetensors"
    ticket = load_ticket(tmp_path / "stp" / f"ticket-{name}").info
    assert ticket.extra["macs"] <= budget and ticket.extra["macs_budget"] == budget
    assert ticket.total - ticket.kept == round(0.3 * ticket.total)
    result = export_ticket(
        tmp_path / "stp" / f"network-{name}",
        tmp_path / "stp" / f"ticket-{name}",
        tmp_path / "export",
    )
    assert result.max_logit_difference <= 1e-5 * max(1.0, result.largest_logit)


def test_a_search_with_adversarial_training_inside_and_a_retraining(drawn, tmp_path):
    fields = copy.deepcopy(SEARCH)
    fields["supertickets"].update(epochs=2, retrain_epochs=1)
    fields["train"].update(regime="at", attack={"eps": 16 / 255, "step": 8 / 255, "steps": 1})
    spec = load_spec("tickets", {"method": "supertickets", "sparsities": [0.3], **fields})
    find_tickets(spec, drawn["theta"], workdir=tmp_path / "at")
    ticket = load_ticket(tmp_path / "at" / "ticket-0.300000.safetensors").info
    assert ticket.spec["train"]["regime"] == "at"
    assert ticket.total - ticket.kept == round(0.3 * ticket.total)
    network, meta = load_model(tmp_path / "at" / "network-0.300000.safetensors")
    assert meta.regime == "at" and meta.source == "supertickets"
    # The retraining kept the mask: the network's pruned weights are still exactly zero.
    mask = load_ticket(tmp_path / "at" / "ticket-0.300000.safetensors").mask
    params = dict(network.named_parameters())
    assert all(bool((params[n][~keep] == 0).all()) for n, keep in mask.items())
