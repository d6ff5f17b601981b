"""Every stage spec is built here, from the command line, an experiment file or Python alike.

`build_spec` turns a stage's plain fields into its typed spec, deciding on the way what the
fields leave open: the training ε copied to the stage's other attacks and the default step of
every attack that runs (eps.py), the defaults that fit the task (defaults.py), the eval-attack
defaults (the spec classes', specs.py). `transfer_specs` does it for the regimes of an
experiment's transfer section (core/results.py names the regimes, `TRANSFER_REGIMES`).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from doublewin.core.defaults import fitting_defaults, st_validates_sa
from doublewin.core.eps import ATTACKS, default_steps, one_eps
from doublewin.core.errors import UserError
from doublewin.core.foreign import load_yaml
from doublewin.core.numbers import PIXEL_UNITS, read_number
from doublewin.core.results import TRANSFER_REGIMES
from doublewin.core.specs import STAGES, AttackSpec, TrainSpec, TransferSpec
from doublewin.core.typed import apply_override, from_dict, lookup, parse_overrides


def transfer_regime(name: Any, where: str) -> str:
    """The training regime of transfer regime ``name``; ``where`` names the value given (an
    option with it, a key) in the error."""
    if name not in TRANSFER_REGIMES:
        raise UserError(f"{where}: use st (standard) or at (adversarial)")
    return TRANSFER_REGIMES[name]


def build_spec(stage: str, fields: Mapping[str, Any], path: str = "") -> Any:
    """The typed spec of ``stage`` from its plain ``fields`` (left unchanged): ε followers,
    default steps and fitting defaults written in where the fields are silent, then typed and
    checked (errors name ``path``.key)."""
    if stage not in STAGES:
        raise UserError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    data = copy.deepcopy(dict(fields))
    fitting_defaults(stage, one_eps(stage, data))
    default_steps(stage, data, _attack_defaults(stage))
    return from_dict(STAGES[stage], data, path=path)


def load_spec(
    stage: str, source: str | Path | Mapping[str, Any] | None = None, overrides: Iterable[str] = ()
) -> Any:
    """The typed spec of ``stage`` from a YAML file or mapping, then ``key=value`` overrides."""
    if stage not in STAGES:
        raise UserError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    if source is None:
        data: dict[str, Any] = {}
    elif isinstance(source, Mapping):
        data = copy.deepcopy(dict(source))
    else:
        data = load_yaml(source, what=f"a {stage} spec YAML (--config)")
    for key, value in parse_overrides(overrides):
        apply_override(data, key, value)
    return build_spec(stage, data)


def transfer_specs(
    regimes: Any, eval_attack: Any = None, common: Mapping[str, Any] | None = None
) -> dict[str, TransferSpec]:
    """The transfer spec of each regime of an experiment's ``transfer`` section (``regimes``:
    st/at → training fields; ``eval_attack``: the test attack's fields; ``common``: other
    transfer fields). The ε the regimes train at is the test attack's, and the validation ε
    of a regime that trains without one, unless those attacks set their own; regimes that
    train at different ε need ``eval_attack.eps``."""
    if not isinstance(regimes, Mapping) or not regimes:
        raise UserError("transfer.regimes: expected a mapping with st and/or at")
    if eval_attack is not None and not isinstance(eval_attack, Mapping):
        raise UserError("transfer.eval_attack: expected a mapping of attack fields")
    trains = {}
    for regime, given in regimes.items():
        where = f"transfer.regimes.{regime}"
        name = transfer_regime(regime, where)
        if given is not None and not isinstance(given, Mapping):
            raise UserError(f"{where}: expected a mapping of training fields")
        train = {**copy.deepcopy(dict(given or {})), "regime": name}
        from_dict(TrainSpec, train, path=where)  # errors name the key the user wrote
        trains[regime] = st_validates_sa("transfer", {"train": train})["train"]
    test = copy.deepcopy(dict(eval_attack or {}))
    eps = None if "eps" in test else _training_eps(trains)
    if eps is not None:
        test["eps"] = eps
        for train in trains.values():
            # A regime without a training attack of its own validates at the same ε.
            unset = lookup(train, "attack.eps") is None and lookup(train, "val_attack.eps") is None
            if unset and train["regime"] == "std" and train.get("val_ra") is not False:
                apply_override(train, "val_attack.eps", eps)
    return {
        regime: build_spec("transfer", {**(common or {}), "train": train, "eval_attack": test})
        for regime, train in trains.items()
    }


def _training_eps(trains: Mapping[str, Mapping[str, Any]]) -> Any:
    """The ε the regimes train at, as written (None: no regime writes one). An AT regime that
    writes none trains at the default ε; regimes at different ε are refused."""
    given = {
        r: t["attack"]["eps"] for r, t in trains.items() if lookup(t, "attack.eps") is not None
    }
    if not given:
        return None
    values = {
        r: read_number(v, name=f"transfer.regimes.{r}.attack.eps", range=PIXEL_UNITS)
        for r, v in given.items()
    }
    for regime, train in trains.items():
        if regime not in values and train["regime"] == "at":
            values[regime] = AttackSpec().eps
    if len(set(values.values())) > 1:
        shown = " and ".join(f"{r} at ε {_pixels(v)}" for r, v in sorted(values.items()))
        raise UserError(
            f"transfer.regimes: {shown} train at different ε, and transfer.eval_attack.eps "
            "does not say which ε the test RA of both is measured at; set "
            "transfer.eval_attack.eps (e.g. transfer.eval_attack.eps: "
            f"{_pixels(min(values.values()))})"
        )
    return next(iter(given.values()))


def _pixels(eps: float) -> str:
    """``8/255`` for an ε on the 8-bit grid, else the number."""
    levels = eps * 255
    return f"{round(levels)}/255" if abs(levels - round(levels)) < 1e-9 else f"{eps:g}"


@functools.cache
def _attack_defaults(stage: str) -> dict[str, tuple[float, int]]:
    """Per attack of ``stage`` (eps.ATTACKS), the (ε, steps) it has where its fields are
    silent: the spec class's own default attack there."""
    spec = STAGES[stage]()
    out = {}
    for where in ATTACKS.get(stage, ()):
        attack: Any = spec
        for part in where.split("."):
            attack = getattr(attack, part)
        attack = attack if attack is not None else AttackSpec()
        out[where] = (attack.eps, attack.steps)
    return out
