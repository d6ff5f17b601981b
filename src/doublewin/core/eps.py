"""One ε per stage, and the step an attack takes when it sets none.

``--eps 4/255`` (or ``train.attack.eps`` in a spec YAML) means one threat model for the whole
stage: training, validation and the RA a weights file records. An attack whose own ``eps`` is
written out keeps it.

The default step (docs/evaluation.md): ε/4 for an attack of 10 steps or more, and for fewer
steps the step that walks 2.5ε in all (2.5ε/steps), never above 1 (the whole pixel range). A
random start may sit anywhere in the ball, up to 2ε from the point the attack needs, so a walk
of 2.5ε reaches the boundary from anywhere and still moves along it; at ε = 8/255 this is the
paper's 2/255 for its PGD-10 training and PGD-20 test attacks. Attacks that write ``step`` keep
theirs. The step is written into a spec's fields before they are typed, so a spec at the
default ε (whose step is the dataclass default, 2/255) keeps its hash.
"""

from __future__ import annotations

from typing import Any

from doublewin.core.errors import UserError
from doublewin.core.numbers import PIXEL_UNITS, STEPS, read_number
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
# Every attack of a stage's spec (the landscape's own ``attack`` only when it is written).
ATTACKS = {
    "pretrain": ("train.attack", "train.val_attack", "eval_attack"),
    "tickets": ("train.attack", "train.val_attack", *METHOD_EPS_FOLLOWERS.values()),
    "transfer": ("train.attack", "train.val_attack", "eval_attack"),
    "evaluate": ("attack",),
    "landscape": (
        "transfer.train.attack",
        "transfer.train.val_attack",
        "transfer.eval_attack",
        "attack",
    ),
}
# The walk the default step makes possible: steps × step ≥ REACH × ε.
REACH = 2.5
# From this many steps on, the default step stays ε/4 (REACH / FULL_STEPS).
FULL_STEPS = 10


def default_step(eps: float, steps: int) -> float:
    """The PGD step (pixel units) of an attack at ``eps`` with ``steps`` steps that does not
    set its own (the module doc gives the reason)."""
    # ε/4 exactly from 10 steps on: at 8/255 it is bit for bit the 2/255 specs always had.
    return min(PIXEL_UNITS.high, eps / 4 * max(1.0, FULL_STEPS / steps))


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


def default_steps(
    stage: str, data: dict[str, Any], defaults: dict[str, tuple[float, int]]
) -> dict[str, Any]:
    """``data`` (changed in place) with `default_step` written into every attack of the stage
    that runs and sets no ``step``. ``defaults``: per attack path, the (ε, steps) it has when
    its fields do not set them. An attack that never runs (the training attack of std and fat
    training, a validation attack without validation RA, a control's) is left as it is: a
    step there would change the spec's hash and nothing else. A value that does not read as a
    number is left for the spec's own check to name."""
    for where in ATTACKS.get(stage, ()):
        fields = lookup(data, where)
        if not _runs(stage, data, where) or not isinstance(fields or {}, dict):
            continue
        fields = fields or {}
        if "step" in fields:
            continue
        eps, steps = defaults[where]
        try:
            eps = read_number(fields.get("eps", eps), name="eps", range=PIXEL_UNITS)
            steps = read_number(fields.get("steps", steps), name="steps", range=STEPS, whole=True)
        except UserError:
            continue
        apply_override(data, f"{where}.step", default_step(eps, steps))
    return data


def _runs(stage: str, data: dict[str, Any], where: str) -> bool:
    """Whether the attack at ``where`` runs in the stage ``data`` describes."""
    if stage == "pretrain" and data.get("kind") == "control":
        return False  # not trained, not measured
    if stage == "tickets" and where in METHOD_EPS_FOLLOWERS.values():
        return METHOD_EPS_FOLLOWERS.get(str(data.get("method"))) == where  # its method's only
    train = "transfer.train" if stage == "landscape" else "train"
    if where == f"{train}.attack":
        return lookup(data, f"{train}.regime") == "at"  # fat steps by fat_alpha × ε
    if where == f"{train}.val_attack":
        return lookup(data, f"{train}.val_ra") is not False
    if stage == "landscape" and where == "attack":
        return lookup(data, "attack") is not None  # None: the transfer's training attack
    return True
