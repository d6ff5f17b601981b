"""Ticket files: lossless round trips (ours and the official format), size, fit checks."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from doublewin.core.errors import UserError
from doublewin.core.specs import MaskScope
from doublewin.tickets.files import load_ticket, save_ticket, ticket_bytes
from doublewin.tickets.mask import Mask, prunable_parameters
from doublewin.tickets.official import load_official, official_state, save_official
from doublewin.tickets.pruning import prune_to_sparsity
from doublewin.tickets.scores import random_scores
from doublewin.tickets.ticket import Ticket, TicketWeightsWarning, make_info


def net(width: int = 8) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, 4),
    )


def ticket_for(
    model: nn.Module, sparsity: float = 0.6, *, seed: int = 0, scope: MaskScope | None = None
) -> Ticket:
    dense = Mask.dense(model, scope)
    mask = prune_to_sparsity(random_scores(dense, seed), dense, sparsity)
    return Ticket(
        mask,
        make_info(
            mask,
            arch="tiny",
            method="random",
            weights_hash="a" * 16,
            target_sparsity=sparsity,
            scope=scope,
            spec={"method": "random", "seed": seed},
            extra={"rung": 3},
        ),
    )


def test_doublewin_ticket_round_trips_masks_and_provenance(tmp_path):
    ticket = ticket_for(net(), scope=MaskScope(include_linear=True))
    path = save_ticket(tmp_path / "t.safetensors", ticket)
    back = load_ticket(path)
    assert back.mask.equals(ticket.mask)
    assert list(back.mask) == list(ticket.mask)
    assert back.info == ticket.info
    assert back.info.target_sparsity == 0.6
    assert back.info.sparsity == pytest.approx(
        round(0.6 * ticket.mask.num_total) / ticket.mask.num_total
    )


def test_plain_packbits_encoding_reads_back_the_same(tmp_path):
    ticket = ticket_for(net())
    path = save_ticket(tmp_path / "t.safetensors", ticket, encoding="packbits")
    assert load_ticket(path).mask.equals(ticket.mask)


def test_resnet50_ticket_at_90_percent_is_at_most_an_eighth_of_one_byte_per_weight():
    import torchvision

    with torch.device("meta"):  # shapes only: no weights are initialized
        shapes = {n: p.shape for n, p in prunable_parameters(torchvision.models.resnet50()).items()}
    # A uniformly random 10% kept: the worst case for compression (no layer structure).
    gen = torch.Generator().manual_seed(0)
    mask = Mask({n: torch.rand(shape, generator=gen) < 0.1 for n, shape in shapes.items()})
    assert mask.sparsity == pytest.approx(0.9, abs=1e-3)
    ticket = Ticket(
        mask,
        make_info(
            mask, arch="resnet50", method="random", weights_hash="0" * 16, target_sparsity=0.9
        ),
    )
    file_size = len(ticket_bytes(ticket))
    one_byte_per_weight = mask.num_total  # 23,454,912 bytes, before any header
    assert file_size <= one_byte_per_weight / 8


def test_a_damaged_ticket_is_a_user_error(tmp_path):
    path = save_ticket(tmp_path / "t.safetensors", ticket_for(net()))
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # flip bits inside the last mask's compressed stream
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="damaged"):
        load_ticket(path)


def test_missing_file_and_weights_file_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        load_ticket(tmp_path / "absent.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, tmp_path / "weights.safetensors")
    with pytest.raises(UserError, match="not a doublewin ticket"):
        load_ticket(tmp_path / "weights.safetensors")


def _official_file(tmp_path, model: nn.Module, mask: Mask, *, nest: bool, prefix: str):
    """What torch.nn.utils.prune leaves in a state dict, as the official scripts save it."""
    import torch.nn.utils.prune as torch_prune

    modules = dict(model.named_modules())
    for name, m in mask.items():
        torch_prune.custom_from_mask(modules[name.rpartition(".")[0]], "weight", m.float())
    state = {prefix + k: v for k, v in model.state_dict().items()}
    path = tmp_path / "official.pth.tar"
    torch.save({"state_dict": state, "epoch": 3} if nest else state, path)
    return path


@pytest.mark.parametrize(("nest", "prefix"), [(False, ""), (True, "module.")])
def test_official_file_reads_as_its_masks(tmp_path, nest, prefix):
    model = net()
    ticket = ticket_for(model, 0.7)
    path = _official_file(tmp_path, model, ticket.mask, nest=nest, prefix=prefix)
    official = load_ticket(path)
    assert official.mask.equals(ticket.mask)
    assert official.info.format == "official"
    assert official.info.sparsity == pytest.approx(ticket.mask.sparsity)


def test_official_to_doublewin_to_official_is_exact(tmp_path):
    model = net()
    mask = ticket_for(model, 0.5).mask
    path = _official_file(tmp_path, model, mask, nest=False, prefix="")
    original = torch.load(path, weights_only=True)
    ticket = load_official(path, arch="")
    ours = save_ticket(tmp_path / "t.safetensors", ticket)
    again = official_state(load_ticket(ours), metadata=False)
    masks = {k: v for k, v in original.items() if k.endswith("_mask")}
    assert set(again) == set(masks)
    for key, value in masks.items():
        assert again[key].dtype == value.dtype and torch.equal(again[key], value), key


def test_doublewin_to_official_to_doublewin_is_exact(tmp_path):
    ticket = ticket_for(net(), scope=MaskScope(exclude=("0",)))
    path = save_official(tmp_path / "official.pt", ticket)
    back = load_ticket(path)
    assert back.mask.equals(ticket.mask)
    assert back.info.as_dict() | {"format": ""} == ticket.info.as_dict() | {"format": ""}
    # And the official reader's view: float 0/1 masks under <module>.weight_mask.
    state = torch.load(path, weights_only=True)
    assert state["3.weight_mask"].dtype == torch.float32
    assert set(state["3.weight_mask"].unique().tolist()) <= {0.0, 1.0}


def test_official_file_with_weights_holds_weight_orig_like_a_pruned_model(tmp_path):
    model = net()
    ticket = ticket_for(model)
    state = official_state(ticket, weights=model.state_dict(), metadata=False)
    pruned = net()
    import torch.nn.utils.prune as torch_prune

    for name in ticket.mask:
        torch_prune.identity(dict(pruned.named_modules())[name.rpartition(".")[0]], "weight")
    pruned.load_state_dict(state, strict=True)
    pruned(torch.rand(1, 3, 8, 8))  # the pruning hook recomputes weight = weight_orig * mask
    assert torch.equal(pruned[0].weight, model[0].weight * ticket.mask["0.weight"])


def test_official_file_without_masks_or_not_a_state_dict_is_a_user_error(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({"conv.weight": torch.zeros(2)}, path)
    with pytest.raises(UserError, match="no '<module>.weight_mask' entries"):
        load_ticket(path)
    path.write_bytes(b"not a torch file at all")
    with pytest.raises(UserError, match="not a doublewin ticket or a torch state dict of masks"):
        load_ticket(path)


def test_official_masks_with_values_other_than_0_and_1_are_refused(tmp_path):
    path = tmp_path / "bad.pt"
    torch.save({"conv.weight_mask": torch.full((2, 2), 0.5)}, path)
    with pytest.raises(UserError, match="values other than 0 and 1"):
        load_ticket(path)


def test_ticket_for_other_shapes_is_one_user_error():
    ticket = ticket_for(net(width=8))
    with pytest.raises(UserError, match="does not fit this model.*use a ticket drawn"):
        ticket.fit(net(width=16))


def test_ticket_for_another_architecture_is_a_user_error():
    ticket = ticket_for(net())
    with pytest.raises(UserError, match="drawn for tiny, the model is resnet8"):
        ticket.fit(net(), arch="resnet8")


def test_ticket_on_other_weights_warns_naming_both_hashes():
    ticket = ticket_for(net())
    with pytest.warns(TicketWeightsWarning, match=f"{'a' * 16}.*{'b' * 16}"):
        ticket.fit(net(), weights_hash="b" * 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ticket.fit(net(), weights_hash="a" * 16)  # its own weights: silent


def test_scope_choices_reach_the_file(tmp_path):
    model = net()
    scope = MaskScope(include_linear=True, exclude=("0",))
    ticket = ticket_for(model, scope=scope)
    assert list(ticket.mask) == list(prunable_parameters(model, scope))
    back = load_ticket(save_ticket(tmp_path / "t.safetensors", ticket))
    assert back.info.scope == scope
