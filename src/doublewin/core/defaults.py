"""Defaults that fit the task, written into a spec where it does not set them.

- **Standard transfer validates SA only**, as the official ST script does (``main_std_eval.py``
  validates test SA every epoch, reports the best-SA checkpoint, runs no attack while
  training): ``train.val_ra: false`` under an ST transfer's training spec, so the best-SA
  checkpoint is selected on validation SA and test SA and RA are both measured once, at it.
  AT transfer keeps validation RA, as the official AT script does.
- **IMP and standard pre-training validate SA only**, as the official IMP script validates
  clean accuracy: ``train.val_ra: false`` in a tickets spec and in a pre-training with
  ``regime: std``. A FAT or AT pre-training keeps validation RA (it picks nothing with it, but
  the FAT guard and the source RA read it).
- **No flip or shift on glyphs**: the 8-pixel digit and letter sets (``digits``, ``chars``,
  ``strokes``) get ``data.augment: none``; a mirrored or shifted glyph is another glyph or none
  (docs/datasets.md measured 82–84% SA without augmentation, 19–38% with ``crop-flip``).
- **Validation sized to the data a run trains on**: a pre-training or a tickets stage that
  trains on a fraction of its dataset validates on the same fraction of the validation split
  (``data.val_fraction``), so 2% of the training images do not meet a full-size validation
  attack every epoch. Transfer keeps the official full validation split at every fraction.

Each rule is written into the spec rather than into a dataclass default, so a spec that relied
on an earlier default keeps its hash and its meaning, and a spec made under the rule gets a
hash of its own (its store entry is computed afresh).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from doublewin.core.errors import UserError
from doublewin.core.parsing import parse_number
from doublewin.core.typed import apply_override, lookup

# Where the training spec of a transfer sits, per stage.
TRANSFER_TRAIN = {"transfer": "train", "landscape": "transfer.train"}
# Where each stage's DataSpec sits, and the dataset a spec without a name reads.
DATA = {"pretrain": "data", "tickets": "data", "transfer": "data", "landscape": "transfer.data"}
DEFAULT_DATASET = {"pretrain": "shapes", "tickets": "shapes", "transfer": "digits"}
DEFAULT_DATASET["landscape"] = DEFAULT_DATASET["transfer"]
# 8-pixel glyph sets: a flip or a shift turns one symbol into another.
UPRIGHT_DATASETS = ("digits", "chars", "strokes")


def fitting_defaults(stage: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a stage's spec fields, changed in place) with every rule above applied where
    the fields do not set it."""
    st_validates_sa(stage, data)
    _sa_only_at_the_source(stage, data)
    where = DATA.get(stage)
    if where is not None:
        spec = lookup(data, where)
        fields = dict(spec) if isinstance(spec, Mapping) else {}
        fields = upright_data(str(fields.get("name", DEFAULT_DATASET[stage])), fields)
        if stage in ("pretrain", "tickets"):
            fields = sized_validation(fields)
        for key in ("augment", "val_fraction"):
            if key in fields and not (isinstance(spec, Mapping) and key in spec):
                apply_override(data, f"{where}.{key}", fields[key])
    return data


def st_validates_sa(stage: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a stage's spec fields, changed in place) with ``val_ra: false`` under the
    transfer's training spec when it trains ST (``regime: std``, also the default) and does
    not set ``val_ra`` itself."""
    where = TRANSFER_TRAIN.get(stage)
    if where is None:
        return data
    train = lookup(data, where)
    train = train if isinstance(train, Mapping) else {}
    if train.get("regime", "std") == "std" and "val_ra" not in train:
        apply_override(data, f"{where}.val_ra", False)
    return data


def _sa_only_at_the_source(stage: str, data: dict[str, Any]) -> None:
    if stage not in ("pretrain", "tickets"):
        return
    train = data.get("train")
    train = train if isinstance(train, Mapping) else {}
    if "val_ra" in train or data.get("kind") == "control":
        return
    if stage == "tickets" or train.get("regime", "std") == "std":
        apply_override(data, "train.val_ra", False)


def upright_data(name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """DataSpec ``fields`` of dataset ``name`` with ``augment: none`` for a glyph set that does
    not set ``augment``."""
    out = dict(fields)
    if name in UPRIGHT_DATASETS and "augment" not in out:
        out["augment"] = "none"
    return out


def sized_validation(fields: Mapping[str, Any]) -> dict[str, Any]:
    """DataSpec ``fields`` with ``val_fraction`` equal to ``fraction`` when the run trains on
    part of its dataset and the fields do not size the validation split themselves."""
    out = dict(fields)
    try:
        fraction = parse_number(out.get("fraction", 1.0), name="data.fraction")
    except UserError:
        return out  # the spec's own check names the bad value
    if fraction < 1.0 and "val_fraction" not in out and out.get("val_size") is None:
        out["val_fraction"] = float(fraction)
    return out
