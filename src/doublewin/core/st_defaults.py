"""Standard transfer validates SA only, as the official ST script does.

The official ``main_std_eval.py`` validates test SA every epoch and reports the best-SA
checkpoint; it runs no attack while training. doublewin's ST transfer does the same unless the
spec says ``train.val_ra: true``: the best-SA checkpoint is selected on validation SA, and test
SA and RA are both measured once, at that checkpoint. Validation RA (PGD on the validation
split every epoch) is what AT transfer keeps, as the official AT script does.

The rule is written into the spec (``val_ra: false``) rather than into ``TrainSpec``'s default,
so a spec that relied on the earlier default (validation RA under ST) keeps its hash and its
meaning, and an ST spec made under this rule gets a hash of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from doublewin.core.typed import apply_override, lookup

# Where the training spec of a transfer sits, per stage.
TRANSFER_TRAIN = {"transfer": "train", "landscape": "transfer.train"}


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
