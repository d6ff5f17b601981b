"""Field readers shared by the experiment parser: lists, per-method grid keys, the run name,
the adaptive search and its anchor rungs, and the check that analysis.landscape asks only for
what the grid makes."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Protocol

from doublewin.core.errors import UserError
from doublewin.core.numbers import SEED, Range, read_number
from doublewin.core.specs import DataSpec
from doublewin.core.typed import distinct, from_dict


class Grid(Protocol):
    """What the landscape check reads of an experiment (experiments.experiment.Experiment)."""

    landscape: Any
    ticket_specs: Any
    regimes: Any
    fractions: Any
    seeds: Any
    pretrainings: Any


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``, recursing into mappings present in both."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def check_landscape(experiment: Grid) -> None:
    """Every choice of analysis.landscape is one the grid makes, so no landscape it asks for
    is silently missing."""
    plan = experiment.landscape
    if plan is None:
        return
    methods = {spec.method for _, spec in experiment.ticket_specs}
    imp_regimes = {spec.train.regime for _, spec in experiment.ticket_specs if spec.method == "imp"}
    checks = [
        ("regimes", plan.regimes, set(experiment.regimes)),
        ("fractions", plan.fractions or (), set(experiment.fractions)),
        ("seeds", plan.seeds or (), set(experiment.seeds)),
        ("pretrainings", plan.pretrainings or (), {p.label for p in experiment.pretrainings}),
        ("method", (plan.method,), methods),
    ]
    if plan.method == "imp":
        checks.append(("imp_regime", (plan.imp_regime,), imp_regimes))
    for key, asked, available in checks:
        missing = [str(v) for v in asked if v not in available]
        if missing:
            shown = ", ".join(sorted(map(str, available))) or "none"
            raise UserError(
                f"analysis.landscape.{key}: {', '.join(missing)} is not in the grid (it has "
                f"{shown}), so no landscape would be computed; choose from what it has"
            )


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def per_method(value: Any, methods: list[str], key: str, parse: Any) -> Any:
    """A grid key given for every method (a list) or per method (a mapping method → list; a
    method it does not name takes the default): None, a tuple, or a mapping of tuples."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return tuple(parse(value, key))
    unknown = [m for m in value if str(m) not in methods]
    if unknown:
        raise UserError(
            f"{key}.{unknown[0]}: not one of tickets.methods ({', '.join(methods)}); name a "
            "method the grid draws"
        )
    return {str(m): tuple(parse(v, f"{key}.{m}")) for m, v in value.items()}


def run_name(value: Any) -> str:
    """The experiment's name: one folder name under runs/ (text: no separator, no `..`, not
    empty)."""
    if value is not None and not isinstance(value, str):
        raise UserError(
            f"name: {value!r} is not text; the run goes to runs/<name>, so name it with "
            "letters, digits, '-' or '_' (quote a number: name: '2024')"
        )
    name = value.strip() if value is not None else ""
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise UserError(
            f"name: {value!r} is not a folder name; the run goes to runs/<name>, so name it "
            "with letters, digits, '-' or '_' (or pass --out DIR)"
        )
    return name


def int_list(value: Any, key: str, range: Range | None = None) -> list[int]:  # noqa: A002
    """Whole numbers, each in ``range``, none twice."""
    items = as_list(value)
    out = [read_number(v, name=f"{key}[{i}]", whole=True, range=range) for i, v in enumerate(items)]
    return distinct(out, key)


def seed_list(value: Any, key: str) -> list[int]:
    """Seeds: whole numbers of 32 bits (core/seeds.py), none twice."""
    return int_list(value, key, SEED)


def name_list(value: Any, key: str) -> list[str]:
    """Names (datasets, methods, regimes, labels): text, none twice."""
    out = []
    for i, item in enumerate(as_list(value)):
        if not isinstance(item, str):
            raise UserError(
                f"{key}[{i}]: {item!r} is not a name; names are text (quote it: '{item}')"
            )
        out.append(item)
    return distinct(out, key)


def ticket_fractions(section: Any, fractions: tuple[float, ...]) -> dict[str, tuple[float, ...]]:
    """``tickets.transfer_fractions``: per method, the data fractions its tickets go to, each
    one of ``transfer.fractions``."""
    value = section.get("transfer_fractions") if isinstance(section, Mapping) else None
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UserError(
            "tickets.transfer_fractions: map a method to its fractions, e.g. {random: [1.0]}"
        )
    methods = name_list(section.get("methods", ["imp"]), "tickets.methods")
    out = per_method(value, methods, "tickets.transfer_fractions", fraction_list)
    for method, chosen in out.items():
        missing = [f for f in chosen if f not in fractions]
        if missing:
            raise UserError(
                f"tickets.transfer_fractions.{method}: {missing[0]:g} is not one of "
                f"transfer.fractions ({', '.join(f'{f:g}' for f in fractions)})"
            )
    return out


def fraction_list(value: Any, key: str) -> list[float]:
    """Data fractions in (0, 1] (the DataSpec field's range), none twice."""
    return distinct(
        [
            from_dict(DataSpec, {"fraction": f}, path=f"{key}[{i}]").fraction
            for i, f in enumerate(as_list(value))
        ],
        key,
    )


# The adaptive searches an experiment can ask for (``search:``, or ``doublewin run --search``).
SEARCHES = ("extreme",)


def parse_search(value: Any) -> str | None:
    """``search``: the adaptive search the run uses by default (None: the fixed grid)."""
    if value is None or value in SEARCHES:
        return value
    raise UserError(
        f"search: {value!r} is not a search; write search: extreme (bisect each ladder for its "
        "extreme double-win sparsity) or leave it out for the fixed grid"
    )


def anchor_rungs(
    section: Any, methods: list[str], transfer_rungs: Any
) -> dict[str, tuple[int, ...]]:
    """``tickets.anchor_rungs``: per method, the 1-based rungs the extreme search judges under
    every regime whatever its standard-transfer verdict, so methods meet at equal sparsity
    with all four accuracies (IMP against random). Each must be a transferred rung."""
    value = section.get("anchor_rungs") if isinstance(section, Mapping) else None
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UserError("tickets.anchor_rungs: map a method to its rungs, e.g. {imp: [10]}")
    out = per_method(value, methods, "tickets.anchor_rungs", int_list)
    for method, rungs in out.items():
        chosen = (
            transfer_rungs.get(method) if isinstance(transfer_rungs, Mapping) else transfer_rungs
        )
        missing = [r for r in rungs if chosen is not None and r not in chosen]
        if missing:
            raise UserError(
                f"tickets.anchor_rungs.{method}: rung {missing[0]} is not transferred; add it "
                f"to tickets.transfer_rungs ({', '.join(map(str, chosen))})"
            )
    return out
