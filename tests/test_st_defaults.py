"""Standard transfer validates SA only, as the official ST script does, unless
``train.val_ra: true`` says otherwise; AT transfer keeps its validation RA."""

from __future__ import annotations

from doublewin.core.hashing import spec_hash
from doublewin.core.specs import PretrainSpec, TrainSpec, TransferSpec, load_spec
from doublewin.experiments.experiment import load_experiment


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


def test_the_rule_reaches_a_landscapes_transfer_and_spares_other_stages():
    assert load_spec("landscape").transfer.train.val_ra is False
    assert load_spec("landscape", {"transfer": {"train": {"regime": "at"}}}).transfer.train.val_ra
    assert load_spec("pretrain").train.val_ra is True
    assert load_spec("tickets").train.val_ra is True
    assert PretrainSpec().train.val_ra is True


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
