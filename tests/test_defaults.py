"""Defaults that fit (core/defaults.py): standard transfer, IMP and standard pre-training
validate SA only, as the official scripts do, unless ``train.val_ra: true`` says otherwise; AT
transfer keeps its validation RA; the glyph sets are not flipped or shifted; a source stage
that trains on part of its data validates on the same part. Each rule hashes apart from the
earlier default."""

from __future__ import annotations

import torch

from doublewin.core.build import load_spec
from doublewin.core.hashing import spec_hash
from doublewin.core.specs import PretrainSpec, TrainSpec, TransferSpec
from doublewin.experiments.plan.experiment import load_experiment


def test_an_st_transfer_spec_validates_sa_only_by_default():
    assert load_spec("transfer").train.val_ra is False
    assert load_spec("transfer", {"train": {"regime": "std"}}).train.val_ra is False


def test_at_transfer_and_an_explicit_val_ra_keep_validation_ra():
    assert load_spec("transfer", {"train": {"regime": "at"}}).train.val_ra is True
    spec = load_spec("transfer", {"train": {"regime": "std"}}, ["train.val_ra=true"])
    assert spec.train.val_ra is True


def test_the_rule_is_part_of_the_hash_so_earlier_st_entries_are_not_reused():
    # An ST spec from before the rule (validation RA, the TrainSpec default) keeps its hash;
    # the new default hashes differently, so its store entry is computed afresh.
    before = TransferSpec(train=TrainSpec(regime="std"))
    now = load_spec("transfer")
    assert spec_hash("transfer", now) != spec_hash("transfer", before)
    assert spec_hash("transfer", before) == spec_hash("transfer", TransferSpec())


def test_the_rule_reaches_a_landscapes_transfer():
    assert load_spec("landscape").transfer.train.val_ra is False
    assert load_spec("landscape", {"transfer": {"train": {"regime": "at"}}}).transfer.train.val_ra


def test_imp_and_standard_pretraining_validate_sa_only_robust_pretraining_keeps_ra():
    assert load_spec("tickets").train.val_ra is False
    assert load_spec("tickets", {"train": {"regime": "at"}}).train.val_ra is False
    assert load_spec("tickets", {}, ["train.val_ra=true"]).train.val_ra is True
    assert load_spec("pretrain").train.val_ra is False
    for regime in ("fat", "at"):
        assert load_spec("pretrain", {"train": {"regime": regime}}).train.val_ra is True
    assert PretrainSpec().train.val_ra is True  # the dataclass default itself is unchanged
    before = PretrainSpec()
    assert spec_hash("pretrain", load_spec("pretrain")) != spec_hash("pretrain", before)


def test_glyph_sets_are_not_flipped_or_shifted_unless_asked():
    for stage, where in (("pretrain", "data"), ("tickets", "data"), ("transfer", "data")):
        for name in ("digits", "chars", "strokes"):
            assert load_spec(stage, {where: {"name": name}}).data.augment == "none"
        assert load_spec(stage, {where: {"name": "shapes"}}).data.augment == "crop-flip"
        asked = load_spec(stage, {where: {"name": "digits", "augment": "crop-flip"}})
        assert asked.data.augment == "crop-flip"
    experiment = load_experiment(
        {"pretrain": {"data": {"name": "chars"}, "runs": {"STD": {}}},
         "transfer": {"datasets": ["strokes", "textures"], "regimes": {"st": {"epochs": 1}}}}
    )  # fmt: skip
    from doublewin.experiments.plan.grid import expand

    augment = {j.spec.data.name: j.spec.data.augment for j in expand(experiment) if j.stage == "transfer"}  # fmt: skip
    assert augment == {"strokes": "none", "textures": "crop-flip"}
    assert experiment.pretrainings[0].spec.data.augment == "none"


def test_a_source_stage_on_part_of_its_data_validates_on_the_same_part():
    spec = load_spec("pretrain", {"data": {"name": "shapes", "fraction": 0.02}})
    assert spec.data.val_fraction == 0.02
    assert load_spec("tickets", {"data": {"fraction": 0.1}}).data.val_fraction == 0.1
    assert load_spec("pretrain").data.val_fraction is None
    assert (
        load_spec("pretrain", {"data": {"fraction": 0.1, "val_size": 50}}).data.val_fraction is None
    )
    # Transfer keeps the official full validation split at every fraction.
    assert load_spec("transfer", {"data": {"fraction": 0.1}}).data.val_fraction is None


def test_an_experiments_st_regime_validates_sa_only_whatever_the_verdict_counts():
    raw = {
        "pretrain": {"data": {"name": "chars"}, "runs": {"STD": {"train": {"regime": "std"}}}},
        "transfer": {
            "regimes": {"st": {"epochs": 1}, "at": {"epochs": 1}},
        },
    }
    for st_metrics in (["sa", "ra"], ["sa"]):
        experiment = load_experiment({**raw, "verdict": {"st_metrics": st_metrics}})
        assert experiment.regimes["st"].val_ra is False
        assert experiment.regimes["at"].val_ra is True
    keep = load_experiment(raw, ["transfer.regimes.st.val_ra=true"])
    assert keep.regimes["st"].val_ra is True


def test_val_fraction_keeps_that_share_of_the_validation_split_in_every_class():
    import dataclasses

    from doublewin.data import prepare_data

    spec = load_spec("pretrain", {"data": {"name": "digits", "fraction": 0.1}}).data
    _, val, _, info = prepare_data(spec, resolution_default=8, batch_size=32)
    _, full, _, _ = prepare_data(dataclasses.replace(spec, val_fraction=None), resolution_default=8, batch_size=32)  # fmt: skip
    assert full.num_samples == info.splits["val"]
    assert abs(val.num_samples - 0.1 * full.num_samples) <= info.num_classes
    labels = torch.cat([y for _, y in val])
    assert len(labels.unique()) == info.num_classes
