"""Typed specs: YAML loading, dotted overrides, errors that name the key, pinned hashes."""

from __future__ import annotations

import dataclasses

import pytest

from doublewin.core.build import load_spec
from doublewin.core.errors import UserError
from doublewin.core.hashing import canonical, canonical_string, spec_hash
from doublewin.core.specs import (
    AttackSpec,
    DataSpec,
    EvaluateSpec,
    PretrainSpec,
    TicketSpec,
    TrainSpec,
    TransferSpec,
)
from doublewin.core.typed import from_dict, replace_path
from doublewin.tickets import trunk_key


def test_yaml_file_with_dotted_overrides_builds_the_typed_spec(tmp_path):
    path = tmp_path / "transfer.yaml"
    path.write_text("data:\n  name: digits\n  fraction: 0.1\ntrain:\n  regime: at\n  epochs: 3\n")
    spec = load_spec("transfer", path, ["train.epochs=5", "train.attack.eps=4/255", "seed=2"])
    assert isinstance(spec, TransferSpec)
    # digits are upright glyphs: the fitting default turns augmentation off (core/defaults.py).
    assert spec.data == DataSpec(name="digits", fraction=0.1, augment="none")
    assert spec.train.regime == "at"
    assert spec.train.epochs == 5
    assert spec.train.attack.eps == pytest.approx(4 / 255)
    assert spec.seed == 2


def test_fraction_strings_are_accepted_for_float_fields():
    spec = from_dict(AttackSpec, {"eps": "8/255", "step": "2/255"})
    assert spec.eps == pytest.approx(8 / 255)
    assert spec.step == pytest.approx(2 / 255)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"train": {"epochz": 3}}, "train.epochz: unknown key"),
        ({"train": {"epochs": "many"}}, "train.epochs: expected a whole number"),
        ({"train": {"epochs": 0}}, "train.epochs: 0 is out of range"),
        ({"data": {"fraction": 1.5}}, "data.fraction: 1.5 is out of range"),
        ({"data": {"fraction": 0}}, "data.fraction: 0 is out of range"),
        ({"train": {"regime": "pgd"}}, "train.regime: 'pgd' is not one of std, fat, at"),
        ({"train": {"attack": {"eps": "eight"}}}, "train.attack.eps: 'eight' is not a number"),
        (
            {"train": {"attack": {"random_start": "yes"}}},
            "train.attack.random_start: expected true",
        ),
        ({"train": {"milestones": [50, -1]}}, "train.milestones[1]: -1 is out of range"),
    ],
)
def test_bad_values_are_errors_naming_the_key(data, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_spec("transfer", data)


def test_override_of_unknown_section_names_it():
    with pytest.raises(UserError, match="nosuch: unknown key"):
        load_spec("pretrain", {}, ["nosuch.value=1"])


def test_override_without_equals_sign_is_an_error():
    with pytest.raises(UserError, match="expected key=value"):
        load_spec("pretrain", {}, ["train.epochs"])


def test_missing_and_malformed_yaml_files_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        load_spec("pretrain", tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_spec("pretrain", bad)


def test_transfer_refuses_fast_adversarial_regime():
    with pytest.raises(UserError, match="use std \\(ST\\) or at \\(AT\\)"):
        load_spec("transfer", {"train": {"regime": "fat"}})


def test_canonical_form_leaves_out_fields_at_their_default():
    spec = TransferSpec(weights="abc", data=DataSpec(name="digits", fraction=0.1))
    assert canonical(spec) == {"weights": "abc", "data": {"fraction": 0.1}}
    # Nested defaults are relative to the enclosing field's default (PGD-20, eval-mode BN).
    assert canonical(EvaluateSpec()) == {}
    assert canonical(EvaluateSpec(attack=AttackSpec(steps=20, bn_mode="eval", eps=4 / 255))) == {
        "attack": {"eps": 4 / 255}
    }


def test_hash_is_independent_of_how_the_spec_was_written():
    a = load_spec("transfer", {"train": {"epochs": 5, "regime": "at"}, "seed": 1})
    b = load_spec("transfer", {"seed": 1}, ["train.regime=at", "train.epochs=5"])
    assert spec_hash("transfer", a) == spec_hash("transfer", b)
    assert spec_hash("transfer", a) != spec_hash("evaluate", a)


def test_a_new_field_with_a_neutral_default_keeps_old_hashes():
    @dataclasses.dataclass(frozen=True)
    class Old:
        lr: float = 0.1

    @dataclasses.dataclass(frozen=True)
    class New:
        lr: float = 0.1
        label_smoothing: float = 0.0

    assert canonical_string("s", Old(lr=0.2)) == canonical_string("s", New(lr=0.2))


# Pinned: changing any of these silently orphans every finished store entry of users' runs.
PINNED = {
    ("pretrain", PretrainSpec()): "6cbcc227df8cd3aa",
    ("pretrain", PretrainSpec(train=TrainSpec(regime="at", epochs=30))): "1a32381d61b3dcb8",
    ("tickets", TicketSpec(weights="0123456789abcdef")): "07f9f43c68824228",
    (
        "transfer",
        TransferSpec(weights="0123456789abcdef", data=DataSpec(fraction=0.1)),
    ): "9e5720315febca40",
    ("evaluate", EvaluateSpec(weights="0123456789abcdef")): "d2d044b67b8ef7e2",
}


@pytest.mark.parametrize(("key", "expected"), list(PINNED.items()), ids=[k[0] for k in PINNED])
def test_pinned_spec_hashes_hold(key, expected):
    stage, spec = key
    assert spec_hash(stage, spec) == expected


# Pinned like the stage hashes: an IMP trunk holds up to 540 epochs of rungs.
PINNED_TRUNK = "92921fbdfd802959"


def test_imp_trunk_is_named_by_the_canonical_hash_whatever_the_ladder_length():
    base = TicketSpec(weights="0123456789abcdef")
    assert trunk_key(base) == PINNED_TRUNK
    assert trunk_key(dataclasses.replace(base, rounds=19)) == PINNED_TRUNK
    assert trunk_key(dataclasses.replace(base, sparsities=(0.2, 0.36))) == PINNED_TRUNK
    assert trunk_key(dataclasses.replace(base, prune_rate=0.3)) != PINNED_TRUNK


def test_a_new_ticket_field_with_a_neutral_default_keeps_the_imp_trunk():
    @dataclasses.dataclass(frozen=True)
    class Extended(TicketSpec):
        new_option: float = 0.0

    assert trunk_key(Extended(weights="0123456789abcdef")) == PINNED_TRUNK
    assert trunk_key(Extended(weights="0123456789abcdef", new_option=1.0)) != PINNED_TRUNK


def test_replace_path_types_and_checks_the_new_value():
    spec = replace_path(TransferSpec(), "train.attack.eps", "4/255")
    assert spec.train.attack.eps == pytest.approx(4 / 255)
    with pytest.raises(UserError, match="train.attack.steps"):
        replace_path(spec, "train.attack.steps", 0)
