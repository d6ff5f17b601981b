"""Pre-training on the embedded source: the weights carry their source SA/RA, and robust
pre-training is robust."""

from __future__ import annotations

from pathlib import Path

import pytest

from doublewin.core import paths
from doublewin.core.build import load_spec
from doublewin.models import content_hash, load_weights
from doublewin.stages import Environment, Inputs, pretrain

EPS = "4/255"


def _spec(regime: str):
    return load_spec(
        "pretrain",
        {
            "arch": "resnet8",
            "data": {"name": "shapes", "resolution": 12, "fraction": 0.4, "val_size": 400},
            "train": {
                "regime": regime,
                "epochs": 4,
                "batch_size": 128,
                "lr": 0.1,
                "schedule": "cosine",
                "attack": {"eps": EPS, "step": "2/255", "steps": 2},
                "val_every": 4,
                "val_attack": {"eps": EPS, "step": "2/255", "steps": 2},
            },
            "eval_attack": {"eps": EPS, "step": "1/255", "steps": 10},
        },
    )


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pretrain")
    out = {}
    for regime in ("std", "fat", "at"):
        pretrain(_spec(regime), Inputs(), folder / regime, Environment())
        out[regime] = folder / regime / paths.WEIGHTS
    return out


@pytest.mark.slow
def test_weights_metadata_records_regime_eps_source_accuracy_and_hash(pretrained) -> None:
    state, meta = load_weights(pretrained["at"])
    assert (meta.arch, meta.regime, meta.dataset, meta.input_size) == (
        "resnet8",
        "at",
        "shapes",
        12,
    )
    assert meta.eps == pytest.approx(4 / 255) and meta.attack_steps == 2
    assert 0 <= meta.source_ra <= meta.source_sa <= 100
    assert meta.content_hash == content_hash(state)
    assert load_weights(pretrained["fat"])[1].attack_steps == 1


@pytest.mark.slow
def test_adversarial_pretraining_has_higher_source_ra_and_fat_lies_between(pretrained) -> None:
    ra = {r: load_weights(p)[1].source_ra for r, p in pretrained.items()}
    fat_meta = load_weights(pretrained["fat"])[1]
    assert ra["at"] >= ra["std"] + 3.0, ra
    if not fat_meta.extra.get("collapsed"):
        # Between STD and AT, with 3 points of slack: at this scale FAT and AT come close.
        assert ra["std"] - 3.0 <= ra["fat"] <= ra["at"] + 3.0, ra


def test_resuming_an_interrupted_pretraining_gives_the_same_weights(tmp_path: Path) -> None:
    spec = load_spec(
        "pretrain",
        {
            "data": {"name": "shapes", "resolution": 8, "fraction": 0.03, "val_size": 100},
            "train": {"epochs": 2, "batch_size": 64, "lr": 0.05, "val_attack": {"steps": 1}},
            "eval_attack": {"steps": 1},
        },
    )
    pretrain(spec, Inputs(), tmp_path / "whole", Environment())
    # An interrupted run leaves only its per-epoch checkpoint; a second call resumes it.
    import doublewin.train.engine as engine

    calls = {"n": 0}
    original = engine._train_epoch

    def stop_after_first(*args, **kwargs):
        if calls["n"] == 1:
            raise KeyboardInterrupt
        calls["n"] += 1
        return original(*args, **kwargs)

    engine._train_epoch = stop_after_first
    try:
        with pytest.raises(KeyboardInterrupt):
            pretrain(spec, Inputs(), tmp_path / "resumed", Environment())
    finally:
        engine._train_epoch = original
    assert not (tmp_path / "resumed" / paths.WEIGHTS).exists()
    pretrain(spec, Inputs(), tmp_path / "resumed", Environment())
    whole, resumed = (tmp_path / name / paths.WEIGHTS for name in ("whole", "resumed"))
    assert load_weights(resumed)[1].content_hash == load_weights(whole)[1].content_hash


def test_the_control_is_the_seeded_initialization_untrained_and_reads_no_data(tmp_path) -> None:
    import torch

    from doublewin.models import build_model

    # cifar10 has no files here: the control needs only the registry's class count.
    spec = load_spec(
        "pretrain", {"arch": "resnet8", "data": {"name": "cifar10"}, "kind": "control"}
    )
    metrics = pretrain(spec, Inputs(), tmp_path, Environment())
    state, meta = load_weights(tmp_path / paths.WEIGHTS)
    assert (meta.regime, meta.source, meta.num_classes, meta.source_sa) == (
        "control",
        "control",
        10,
        None,
    )
    torch.manual_seed(spec.seed)
    expected = build_model("resnet8", 10).state_dict()
    assert content_hash(state) == content_hash(expected) == metrics["content_hash"]
    assert not (tmp_path / paths.TRAIN_DIR).exists()
