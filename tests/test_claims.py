"""Documented claims pinned with independent expected values: IMP's official order prunes θp
itself first and every later round starts from θp's exact values, and the importers refuse a
single missing, unexpected or mis-shaped key."""

from __future__ import annotations

import importlib

import pytest
import torch

from doublewin.core import paths
from doublewin.core.build import load_spec
from doublewin.core.errors import UserError
from doublewin.models import build_model
from doublewin.models.importers import import_checkpoint
from doublewin.stages import Inputs, run_stage
from doublewin.tickets import find_tickets, load_ticket


def test_imp_official_order_prunes_theta_p_first_and_rewinds_every_round_to_it(
    tmp_path, monkeypatch
):
    spec = load_spec("pretrain", {"arch": "resnet8", "data": {"name": "digits"}, "kind": "control"})
    run_stage("pretrain", spec, Inputs(), tmp_path / "theta", device=torch.device("cpu"))
    weights = tmp_path / "theta" / paths.WEIGHTS
    theta_p = build_model("resnet8", 10)
    from doublewin.models import load_model

    theta_p, _ = load_model(weights)
    theta = {k: v.detach().clone() for k, v in theta_p.state_dict().items()}
    imp = importlib.import_module("doublewin.tickets.imp")
    calls = []
    original = imp.train

    def spy(model, train_spec, *args, mask=None, **kwargs):
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        calls.append((state, {k: v.clone() for k, v in mask.items()}))
        return original(model, train_spec, *args, mask=mask, **kwargs)

    monkeypatch.setattr(imp, "train", spy)
    tickets = load_spec(
        "tickets",
        {
            "weights": str(weights), "method": "imp", "prune_rate": 0.5, "rounds": 3,
            "order": "official", "rewind_to": "pretrained",
            "data": {"name": "digits", "fraction": 0.1, "augment": "none", "val_size": 50},
            "train": {"epochs": 1, "batch_size": 64, "val_every": 1,
                      "val_attack": {"steps": 1}},
        },
    )  # fmt: skip
    rungs = [load_ticket(p).mask for p in find_tickets(tickets, weights, workdir=tmp_path / "t")]
    # Rung 1 is θp's own global magnitude cut, computed here by hand: the largest half of the
    # |w| over every conv weight (no training before it).
    convs = {k: v for k, v in theta.items() if k.endswith(".weight") and v.dim() == 4}
    flat = torch.cat([v.abs().flatten() for v in convs.values()])
    keep = round(flat.numel() * 0.5)
    threshold = torch.topk(flat, keep).values.min()
    for name, w in convs.items():
        assert torch.equal(rungs[0][name], w.abs() >= threshold), name
    assert sum(int(m.sum()) for m in rungs[0].values()) == keep
    # Rounds 2 and 3 train; each starts from θp exactly (every tensor, pruned ones zeroed by
    # the engine), under the previous rung's mask.
    assert len(calls) == 2
    for k, (state, mask) in enumerate(calls, start=2):
        for name, value in theta.items():
            assert torch.equal(state[name], value), (k, name)
        for name, kept in rungs[k - 2].items():
            assert torch.equal(mask[name].bool(), kept.bool()), (k, name)
    assert [round(m.sparsity, 6) for m in rungs] == [0.5, 0.75, 0.875]


@pytest.fixture
def torchvision_file(tmp_path):
    torch.manual_seed(0)
    state = build_model("resnet18", 1000).state_dict()
    return tmp_path, {k: v.clone() for k, v in state.items()}


@pytest.mark.parametrize("change", ["missing", "unexpected", "shape"])
def test_an_importer_refuses_a_single_missing_unexpected_or_misshaped_key(torchvision_file, change):
    folder, state = torchvision_file
    name = "layer2.0.conv1.weight"
    if change == "missing":
        del state[name]
        expected = f"missing 1 keys (e.g. {name})"
    elif change == "unexpected":
        state["layer9.weight"] = torch.zeros(3)
        expected = "unexpected 1 keys (e.g. layer9.weight)"
    else:
        state[name] = torch.zeros(1, 1, 1, 1)
        expected = f"1 shape mismatches (e.g. {name}"
    path = folder / "c.pth"
    torch.save(state, path)
    with pytest.raises(UserError) as error:
        import_checkpoint(path, format="torchvision", arch="resnet18")
    assert expected in str(error.value)
