"""One ε per stage: the training attack's ε also sets the stage's other attacks.

``--eps 4/255`` (or ``train.attack.eps`` in a spec YAML) means one threat model for the whole
stage: training, validation and the RA a weights file records. An attack whose own ``eps`` is
written out keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from doublewin.core.typed import apply_override

# Where the training attack's ε goes, per stage, unless the target sets its own.
EPS_FOLLOWERS = {
    "pretrain": ("train.val_attack", "eval_attack"),
    "tickets": ("train.val_attack",),
    "transfer": ("train.val_attack", "eval_attack"),
    "landscape": ("transfer.train.val_attack", "transfer.eval_attack"),
}


def one_eps(stage: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a stage's spec fields, changed in place) with the training attack's ε copied
    to the stage's attacks in `EPS_FOLLOWERS` that do not set their own."""
    prefix = "transfer." if stage == "landscape" else ""
    source = _get(data, f"{prefix}train.attack.eps")
    if source is None:
        return data
    for target in EPS_FOLLOWERS.get(stage, ()):
        if _get(data, f"{target}.eps") is None:
            apply_override(data, f"{target}.eps", source)
    return data


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node
