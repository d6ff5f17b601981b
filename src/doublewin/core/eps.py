"""One ε per stage: the training attack's ε also sets the stage's other attacks.

``--eps 4/255`` (or ``train.attack.eps`` in a spec YAML) means one threat model for the whole
stage: training, validation and the RA a weights file records. An attack whose own ``eps`` is
written out keeps it.
"""

from __future__ import annotations

from typing import Any

from doublewin.core.typed import apply_override, lookup

# Where the training attack's ε goes, per stage, unless the target sets its own.
EPS_FOLLOWERS = {
    "pretrain": ("train.val_attack", "eval_attack"),
    "tickets": ("train.val_attack",),
    "transfer": ("train.val_attack", "eval_attack"),
    "landscape": ("transfer.train.val_attack", "transfer.eval_attack"),
}
# A tickets stage's score search crafts its examples with an attack of its own (HYDRA, HARP):
# it follows too, for the method that uses it only (other methods' hashes stay as they were).
METHOD_EPS_FOLLOWERS = {"hydra": "hydra.attack", "harp": "harp.attack"}


def one_eps(stage: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a stage's spec fields, changed in place) with the training attack's ε copied
    to the stage's attacks in `EPS_FOLLOWERS` that do not set their own."""
    prefix = "transfer." if stage == "landscape" else ""
    source = lookup(data, f"{prefix}train.attack.eps")
    if source is None:
        return data
    targets = list(EPS_FOLLOWERS.get(stage, ()))
    if stage == "tickets" and data.get("method") in METHOD_EPS_FOLLOWERS:
        targets.append(METHOD_EPS_FOLLOWERS[str(data["method"])])
    for target in targets:
        if lookup(data, f"{target}.eps") is None:
            apply_override(data, f"{target}.eps", source)
    return data
