"""Masks at their edges, by hand: a bare layer's parameter name, the names an exclude error
suggests, the JSON report, the content hash against its documented formula, the fit errors,
and bit unpacking of a scalar and of plain integer lists."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from torch import nn

from doublewin.core.errors import UserError
from doublewin.core.specs import MaskScope
from doublewin.tickets.mask import Mask, pack_bits, prunable_parameters, unpack_bits


def test_a_bare_conv_prunes_its_weight_by_its_own_name():
    assert list(prunable_parameters(nn.Conv2d(1, 2, 3))) == ["weight"]


def test_an_exclude_matching_nothing_suggests_the_first_four_layer_names():
    net = nn.Sequential(*[nn.Conv2d(1, 1, 1) for _ in range(5)])
    with pytest.raises(UserError) as err:
        prunable_parameters(net, MaskScope(exclude=("nope",)))
    assert str(err.value) == (
        "scope.exclude: 'nope' matches no prunable layer; use module names such as "
        "0.weight, 1.weight, 2.weight, 3.weight (glob patterns like 'layer4.*' work)"
    )


def test_the_report_counts_every_layer():
    mask = Mask({"a": torch.tensor([[True, False], [False, False]]), "b": torch.ones(3).bool()})
    assert mask.report() == {
        "total": 7,
        "kept": 4,
        "pruned": 3,
        "sparsity": 3 / 7,
        "layers": [
            {"name": "a", "shape": [2, 2], "total": 4, "kept": 1, "pruned": 3, "sparsity": 0.75},
            {"name": "b", "shape": [3], "total": 3, "kept": 3, "pruned": 0, "sparsity": 0.0},
        ],
    }


def test_the_content_hash_is_its_documented_formula():
    # 16 hex digits of SHA-256 over "name:d0,d1;" and the packed bits, names sorted.
    mask = Mask({"z": torch.tensor([True, False, True]), "a": torch.eye(2, dtype=torch.bool)})
    digest = hashlib.sha256()
    digest.update(b"a:2,2;" + bytes([0b10010000]))
    digest.update(b"z:3;" + bytes([0b10100000]))
    assert mask.content_hash() == digest.hexdigest()[:16]
    reshaped = Mask({"z": torch.tensor([True, False, True]), "a": torch.eye(2).bool().view(4)})
    assert reshaped.content_hash() != mask.content_hash()  # same bits, another shape


def test_a_mask_that_does_not_fit_names_the_parameter_and_the_shapes():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 1))
    with pytest.raises(UserError) as err:
        Mask({"x.weight": torch.ones(1, dtype=torch.bool)}).check_fits(net, what="ticket")
    assert str(err.value) == (
        "ticket does not fit this model: it has no parameter 'x.weight' (model parameters look "
        "like 0.weight, 0.bias, 1.weight); use a ticket drawn for this architecture"
    )
    with pytest.raises(UserError) as err:
        Mask({"1.weight": torch.ones(2, 2, 3, 3, dtype=torch.bool)}).check_fits(net)
    assert str(err.value) == (
        "mask does not fit this model: 1.weight is (2, 2, 3, 3) in the ticket but "
        "(2, 2, 1, 1) in the model; use a ticket drawn for this architecture"
    )


def test_bits_unpack_to_booleans_for_a_scalar_and_for_integer_lists():
    scalar = unpack_bits(pack_bits(torch.tensor(True)), ())
    assert scalar.shape == () and scalar.dtype == torch.bool and bool(scalar)
    from_json = unpack_bits([0b10110000], (2, 2))  # e.g. read back from a JSON list
    assert from_json.dtype == torch.bool
    assert from_json.tolist() == [[True, False], [True, True]]
    assert np.asarray([0b10110000]).dtype != np.uint8  # the list really needed the cast
