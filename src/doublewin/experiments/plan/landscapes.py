"""Which transfers of an experiment get a loss landscape (``analysis.landscape``), and their jobs.

The section selects tickets by method and IMP regime at the ladder rung nearest ``sparsity``
(the paper's Figure 6: IMP (ST) tickets at 73.79%), transfer regimes, fractions, seeds and
pre-trainings; every other key is a field of the landscape spec (core/specs.py
`LandscapeSpec`: plane, loss, grid, radius, images, snapshots, sharpness_radius,
hessian_iterations, attack). One landscape job per selected pre-training × dataset × fraction
× regime × seed, each training its transfer again with the trajectory recorded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from doublewin.core.build import build_spec
from doublewin.core.errors import UserError
from doublewin.core.numbers import UNIT_CLOSED_OPEN, read_number
from doublewin.core.results import REGIMES
from doublewin.core.specs import LandscapeSpec
from doublewin.core.typed import from_dict
from doublewin.experiments.plan.fields import fraction_list, name_list, seed_list

SELECT_KEYS = ("sparsity", "method", "imp_regime", "regimes", "fractions", "seeds", "pretrainings")
# The paper's Figure 6 ticket: IMP with ST inside, at 73.79% sparsity, AT-transferred.
FIGURE6_SPARSITY = 0.7379


@dataclass(frozen=True)
class LandscapePlan:
    """The parsed ``analysis.landscape`` section. ``fractions``/``seeds``/``pretrainings`` None:
    all of the experiment's. ``fields``: the landscape spec fields besides ``transfer``."""

    sparsity: float = FIGURE6_SPARSITY
    method: str = "imp"
    imp_regime: str = "std"
    regimes: tuple[str, ...] = ("at",)
    fractions: tuple[float, ...] | None = None
    seeds: tuple[int, ...] | None = None
    pretrainings: tuple[str, ...] | None = None
    fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def parse_analysis(section: Any) -> LandscapePlan | None:
    """``analysis: {landscape: {...}}`` → a plan (None when absent)."""
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise UserError("analysis: expected a mapping, e.g. analysis: {landscape: {grid: 15}}")
    unknown = sorted(set(section) - {"landscape"})
    if unknown:
        raise UserError(f"analysis.{unknown[0]}: unknown key; known keys: landscape")
    raw = section.get("landscape")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise UserError("analysis.landscape: expected a mapping of its fields")
    fields = {k: v for k, v in raw.items() if k not in SELECT_KEYS}
    if "transfer" in fields:
        raise UserError(
            "analysis.landscape.transfer: set by the grid from the transfer section; "
            "choose transfers with sparsity, method, regimes, fractions, seeds"
        )
    # Validate the spec fields now, with the user's key path in the message.
    from_dict(LandscapeSpec, fields, path="analysis.landscape")
    regimes = tuple(name_list(raw.get("regimes", ["at"]), "analysis.landscape.regimes"))
    for i, regime in enumerate(regimes):
        if regime not in REGIMES:
            raise UserError(f"analysis.landscape.regimes[{i}]: {regime!r} is not st or at")
    sparsity = read_number(
        raw.get("sparsity", FIGURE6_SPARSITY),
        name="analysis.landscape.sparsity",
        range=UNIT_CLOSED_OPEN,
        hint="; write e.g. 0.7379",
    )
    fractions = raw.get("fractions")
    return LandscapePlan(
        sparsity=float(sparsity),
        method=str(raw.get("method", "imp")),
        imp_regime=str(raw.get("imp_regime", "std")),
        regimes=regimes,
        fractions=None
        if fractions is None
        else tuple(fraction_list(fractions, "analysis.landscape.fractions")),
        seeds=None
        if raw.get("seeds") is None
        else tuple(seed_list(raw["seeds"], "analysis.landscape.seeds")),
        pretrainings=None
        if raw.get("pretrainings") is None
        else tuple(name_list(raw["pretrainings"], "analysis.landscape.pretrainings")),
        fields=fields,
    )


def nearest_rung(ladder: Sequence[float], target: float) -> int:
    """0-based index of the rung nearest ``target`` (the sparser one on a tie)."""
    return min(range(len(ladder)), key=lambda i: (abs(ladder[i] - target), -ladder[i]))


def landscape_spec(plan: LandscapePlan, transfer: Any) -> LandscapeSpec:
    """The landscape job of ``plan`` on one transfer job's spec."""
    spec = build_spec("landscape", plan.fields, path="analysis.landscape")
    return dataclasses.replace(spec, transfer=transfer)
