"""Architectures, normalization inside the model, head swap, weights files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from doublewin.core.errors import UserError
from doublewin.models import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    WeightsMeta,
    arch_info,
    build_model,
    content_hash,
    head_module,
    head_name,
    list_architectures,
    load_model,
    load_weights,
    replace_head,
    save_weights,
)


@pytest.mark.parametrize("arch", [a.name for a in list_architectures()])
def test_every_architecture_forwards_pixels_at_its_input_size_with_its_published_head(
    arch: str,
) -> None:
    size = min(arch_info(arch).input_size, 64)
    model = build_model(arch, 7).eval()
    out = model(torch.rand(2, 3, size, size))
    # The head keeps its published name: fc, or RobustBench's PreAct ResNet's linear.
    expected = "linear" if arch == "preact_resnet18" else "fc"
    assert out.shape == (2, 7) and head_name(model) == expected
    assert isinstance(head_module(model), torch.nn.Linear)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_imagenet_resnets_have_torchvision_state_dict_names(arch: str) -> None:
    ours = build_model(arch, 1000).state_dict()
    theirs = getattr(torchvision.models, arch)().state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)


def test_resnet50_has_the_papers_parameter_and_conv_counts() -> None:
    model = build_model("resnet50", 1000)
    assert sum(p.numel() for p in model.parameters()) == 25_557_032
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == 53


def test_normalization_is_inside_the_model() -> None:
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(num_classes=5).eval()
    ours = build_model("resnet18", 5).eval()
    ours.load_state_dict(reference.state_dict())
    x = torch.rand(2, 3, 64, 64)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    expected = reference((x - mean) / std)
    assert (ours(x) - expected).abs().max() <= 1e-5 * expected.abs().max()


def test_replace_head_changes_only_fc() -> None:
    model = build_model("resnet8", 10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    replace_head(model, 3, seed=1)
    after = model.state_dict()
    assert after["fc.weight"].shape == (3, before["fc.weight"].shape[1])
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("fc."))


def test_weights_round_trip_bit_exact_with_metadata(tmp_path: Path) -> None:
    model = build_model("resnet8", 10, mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6))
    meta = WeightsMeta(
        arch="resnet8",
        num_classes=10,
        mean=(0.1, 0.2, 0.3),
        std=(0.4, 0.5, 0.6),
        input_size=16,
        dataset="shapes",
        regime="at",
        eps=4 / 255,
        attack_steps=2,
        source_sa=50.0,
        source_ra=20.0,
    )
    digest = save_weights(tmp_path / "w.safetensors", model, meta)
    state, loaded = load_weights(tmp_path / "w.safetensors")
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert loaded.content_hash == digest and loaded.eps == meta.eps and loaded.regime == "at"
    rebuilt, _ = load_model(tmp_path / "w.safetensors")
    assert rebuilt.mean.flatten().tolist() == pytest.approx([0.1, 0.2, 0.3])


def test_content_hash_follows_values_not_dict_order() -> None:
    state = build_model("resnet8", 10).state_dict()
    reordered = dict(reversed(list(state.items())))
    assert content_hash(state) == content_hash(reordered)
    changed = {k: v.clone() for k, v in state.items()}
    changed["conv1.weight"][0, 0, 0, 0] += 1e-3
    assert content_hash(changed) != content_hash(state)


def test_missing_and_foreign_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        load_weights(tmp_path / "nope.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(UserError, match="safetensors"):
        load_weights(junk)


def test_listed_parameter_counts_match_the_built_models() -> None:
    for arch in ("resnet8", "resnet8x2", "resnet20"):
        built = build_model(arch, 10)
        assert arch_info(arch).num_params == sum(p.numel() for p in built.parameters())
    # ResNet-50 with a 10-class head: 25,557,032 − 2048·990 − 990.
    assert arch_info("resnet50").num_params == 25_557_032 - 2048 * 990 - 990


def test_the_wide_resnet8_has_twice_the_channels_of_every_layer_and_its_depth() -> None:
    narrow, wide = build_model("resnet8", 10), build_model("resnet8x2", 10)
    convs = [
        (m.in_channels, m.out_channels) for m in narrow.modules() if isinstance(m, torch.nn.Conv2d)
    ]
    doubled = [
        (m.in_channels, m.out_channels) for m in wide.modules() if isinstance(m, torch.nn.Conv2d)
    ]
    # the stem reads 3 colour channels in both; every other width doubles
    assert doubled == [(3 if i == 3 else 2 * i, 2 * o) for i, o in convs]
    assert wide.fc.in_features == 2 * narrow.fc.in_features


def test_unknown_architecture_names_the_known_ones() -> None:
    with pytest.raises(UserError, match="resnet8"):
        build_model("resnet9000", 10)


def test_a_safetensors_file_without_doublewin_metadata_points_to_import_weights(
    tmp_path: Path,
) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "plain.safetensors"
    save_file(build_model("resnet8", 10).state_dict(), str(path))
    with pytest.raises(UserError, match="import-weights"):
        load_weights(path)
