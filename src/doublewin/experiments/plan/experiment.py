"""An experiment file (YAML), parsed and checked: the pre-trainings, the ticket specs, the
transfer settings and the verdict (grid.py expands it into jobs).

The file names the pre-trainings to compare, the ways to find tickets, and the downstream
transfer settings; see configs/demo.yaml for a commented example and docs/experiments.md for
every key. Sections hold the fields of the stage specs (specs.py); a named entry under
``pretrain.runs`` is deep-merged over the section's common fields, so
``pretrain.runs.AT.train.regime: at`` overrides ``pretrain.train`` for that run only.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from doublewin.analysis.verdict import SeedPlan, VerdictConfig
from doublewin.core.build import build_spec, transfer_specs
from doublewin.core.errors import UserError
from doublewin.core.foreign import load_yaml
from doublewin.core.specs import (
    AttackSpec,
    DataSpec,
    PretrainSpec,
    TicketSpec,
    TrainSpec,
    TransferSpec,
)
from doublewin.core.ticket_parts import TRAINING_METHODS
from doublewin.core.typed import apply_override, from_dict, parse_overrides
from doublewin.data.registry import check_val_size
from doublewin.experiments.plan.fields import (
    anchor_rungs,
    check_landscape,
    deep_merge,
    fraction_list,
    int_list,
    name_list,
    parse_search,
    per_method,
    run_name,
    seed_list,
    ticket_fractions,
)
from doublewin.experiments.plan.landscapes import LandscapePlan, parse_analysis
from doublewin.experiments.plan.pretrainings import (
    Pretraining,
    arch_of,
    input_size_of,
    parse_pretrain,
)
from doublewin.tickets.ladder import imp_ladder
from doublewin.tickets.patterned import check_plan

TOP_LEVEL_KEYS = (
    "name",
    "arch",
    "seeds",
    "pretrain",
    "tickets",
    "transfer",
    "verdict",
    "description",
    "store",
    "analysis",
    "search",
)
# Top-level keys of this prefix hold YAML anchors shared by merge keys (<<: *common), as
# Compose files' extension fields do; the experiment reads nothing else of them.
SHARED = "x-"
TICKET_GRID_KEYS = (
    "methods",
    "imp_regimes",
    "transfer_rungs",
    "transfer_fractions",
    "patterns",
    "anchor_rungs",
)
TRANSFER_GRID_KEYS = (
    "datasets",
    "fractions",
    "regimes",
    "data",
    "eval_attack",
    "save_models",
    "autoattack",
)


@dataclass(frozen=True)
class Experiment:
    """A parsed experiment file."""

    name: str
    arch: str
    seeds: tuple[int, ...]
    pretrainings: tuple[Pretraining, ...]
    ticket_specs: tuple[tuple[str, TicketSpec], ...]  # (pretraining label, spec)
    # 1-based rungs transferred: every method's, or per method (None: every rung).
    transfer_rungs: tuple[int, ...] | Mapping[str, tuple[int, ...]] | None
    datasets: tuple[str, ...]
    fractions: tuple[float, ...]
    # "st"/"at" → the regime's transfer spec (core/build.py) that every transfer job of it
    # fills with its weights, ticket, dataset, fraction and seed.
    transfers: Mapping[str, TransferSpec]
    transfer_data: Mapping[str, Any]
    verdict: VerdictConfig
    raw: Mapping[str, Any]
    # A store shared by several experiments (e.g. the paper configs share their IMP tickets);
    # None = <run dir>/store.
    store: str | None = None
    # Per method, the data fractions its tickets go to (a method not named: every fraction).
    ticket_fractions: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    # Which transfers get a loss landscape (analysis.landscape); None = none.
    landscape: LandscapePlan | None = None
    # The adaptive search run by default (``search: extreme``), and per method the rungs it
    # judges under every regime (``tickets.anchor_rungs``).
    search: str | None = None
    anchor_rungs: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def regimes(self) -> dict[str, TrainSpec]:
        """ "st"/"at" → the regime's training spec."""
        return {regime: spec.train for regime, spec in self.transfers.items()}

    @property
    def eval_attack(self) -> AttackSpec:
        """The test attack, one for every regime (core/build.py, `transfer_specs`)."""
        return next(iter(self.transfers.values())).eval_attack

    @property
    def transfers_nothing(self) -> str | None:
        """Why the grid has no transfer (an empty datasets or fractions list: a tickets-only
        run, like the paper's IMP configs), else None."""
        for key, values in (("datasets", self.datasets), ("fractions", self.fractions)):
            if not values:
                return f"transfer.{key} is empty: this run draws tickets and transfers nothing"
        return None

    def rungs_of(self, method: str) -> tuple[int, ...] | None:
        """The 1-based rungs of ``method``'s ladders that are transferred (None: all)."""
        rungs = self.transfer_rungs
        return rungs.get(method) if isinstance(rungs, Mapping) else rungs

    def fractions_of(self, method: str) -> tuple[float, ...]:
        """The data fractions ``method``'s tickets are transferred at."""
        return self.ticket_fractions.get(method, self.fractions)

    @property
    def on_demand(self) -> bool:
        """Seeds are added on demand (``seeds: auto``): ``seeds`` are the candidates."""
        return self.verdict.seeds is not None

    @property
    def controls(self) -> tuple[str, ...]:
        """The labels of the no-pre-training controls."""
        return tuple(p.label for p in self.pretrainings if p.kind == "control")


def load_experiment(
    source: str | Path | Mapping[str, Any], overrides: Iterable[str] = ()
) -> Experiment:
    """Parse an experiment file (or mapping) with ``key=value`` overrides applied first."""
    raw = copy.deepcopy(dict(source)) if isinstance(source, Mapping) else load_yaml(source)
    for key, value in parse_overrides(overrides):
        apply_override(raw, key, value)
    return parse_experiment(raw)


def parse_experiment(raw: Mapping[str, Any]) -> Experiment:
    """An experiment file's mapping, every section checked, as an `Experiment`."""
    unknown = sorted(
        (k for k in raw if k not in TOP_LEVEL_KEYS and not str(k).startswith(SHARED)), key=str
    )
    if unknown:
        raise UserError(
            f"{unknown[0]}: unknown key; known keys: {', '.join(TOP_LEVEL_KEYS)} (a section "
            f"that only holds YAML anchors to share, &name / <<: *name, is named {SHARED}…)"
        )
    name = run_name(raw.get("name", "experiment"))
    arch = raw.get("arch", PretrainSpec().arch)
    if not isinstance(arch, str):
        raise UserError(f"arch: expected an architecture name, got {arch!r}")
    verdict, seeds = _parse_seeds(raw)
    pretrainings = parse_pretrain(raw.get("pretrain") or {}, arch)
    ticket_specs, rungs = _parse_tickets(raw.get("tickets"), pretrainings)
    datasets, fractions, transfer_data, transfers = _parse_transfer(raw.get("transfer") or {})
    store = raw.get("store")
    if store is not None and not isinstance(store, str):
        raise UserError(f"store: expected a folder path, got {store!r}")
    experiment = Experiment(
        name,
        arch,
        seeds,
        pretrainings,
        ticket_specs,
        rungs,
        datasets,
        fractions,
        transfers,
        transfer_data,
        verdict,
        dict(raw),
        store,
        ticket_fractions=ticket_fractions(raw.get("tickets"), fractions),
        landscape=parse_analysis(raw.get("analysis")),
        search=parse_search(raw.get("search")),
        anchor_rungs=anchor_rungs(raw.get("tickets"), _methods(raw.get("tickets")), rungs),
    )
    check_landscape(experiment)
    return experiment


def _parse_seeds(raw: Mapping[str, Any]) -> tuple[VerdictConfig, tuple[int, ...]]:
    """The verdict section and the seeds: the listed ones, or with ``seeds: auto`` the
    candidates 0 … max − 1 of the verdict's seed plan."""
    verdict = VerdictConfig.from_mapping(raw.get("verdict"))
    if raw.get("seeds") == "auto":
        # Seeds on demand (adaptive/on_demand.py): the plan's seeds 0 … max − 1 are candidates.
        verdict = replace(verdict, seeds=verdict.seeds or SeedPlan())
        seeds = list(range(verdict.seeds.max))  # type: ignore[union-attr]
    else:
        if verdict.seeds is not None:
            raise UserError(
                "verdict.seeds: adds seeds on demand only with seeds: auto (or doublewin run "
                "--seeds auto); remove it to run the listed seeds"
            )
        given = raw.get("seeds", [0])
        if isinstance(given, int) and not isinstance(given, bool):
            raise UserError(
                f"seeds: {given} is one number; write seeds: [0, 1, 2] for three seeds, "
                f"seeds: [{given}] for the seed {given}, or seeds: auto"
            )
        seeds = seed_list(given, "seeds")
    if not seeds:
        raise UserError("seeds: give at least one seed, e.g. seeds: [0, 1], or seeds: auto")
    return verdict, tuple(seeds)


def _parse_transfer(
    transfer: Any,
) -> tuple[tuple[str, ...], tuple[float, ...], dict[str, Any], dict[str, TransferSpec]]:
    """The transfer section: (datasets, fractions, the data fields every transfer shares,
    "st"/"at" → the regime's transfer spec from the one spec builder)."""
    if not isinstance(transfer, Mapping):
        raise UserError("transfer: expected a mapping")
    datasets = tuple(name_list(transfer.get("datasets", ["digits"]), "transfer.datasets"))
    fractions = tuple(fraction_list(transfer.get("fractions", [1.0]), "transfer.fractions"))
    transfer_data = dict(transfer.get("data") or {})
    for key in ("name", "fraction"):
        if key in transfer_data:
            raise UserError(
                f"transfer.data.{key}: set it through transfer.datasets / transfer.fractions"
            )
    checked_data = from_dict(DataSpec, transfer_data, path="transfer.data")  # validate early
    for dataset in datasets:
        check_val_size(dataset, checked_data.val_size, "transfer.data.val_size")
    unknown = sorted(set(transfer) - set(TRANSFER_GRID_KEYS))
    if unknown:
        raise UserError(
            f"transfer.{unknown[0]}: unknown key; known keys: {', '.join(TRANSFER_GRID_KEYS)}"
        )
    if "eval_attack" in transfer:
        # Errors name the key the user wrote (the regimes' specs name theirs).
        from_dict(AttackSpec, transfer["eval_attack"], path="transfer.eval_attack")
    # Fields every transfer spec takes from the file once (defaults when absent).
    picked = {k: v for k, v in transfer.items() if k in ("save_models", "autoattack")}
    from_dict(TransferSpec, picked, path="transfer")
    transfers = transfer_specs(
        transfer.get("regimes", {"st": {}, "at": {}}), transfer.get("eval_attack"), picked
    )
    return datasets, fractions, transfer_data, transfers


def _methods(section: Any) -> list[str]:
    """The ticket methods of the tickets section (IMP by default)."""
    if not isinstance(section, Mapping):
        return ["imp"]
    return name_list(section.get("methods", ["imp"]), "tickets.methods")


def _parse_tickets(
    section: Any, pretrainings: tuple[Pretraining, ...]
) -> tuple[tuple[tuple[str, TicketSpec], ...], tuple[int, ...] | None]:
    if section is None:
        return (), None
    if not isinstance(section, Mapping):
        raise UserError("tickets: expected a mapping")
    methods = _methods(section)
    imp_regimes = name_list(section.get("imp_regimes", ["std"]), "tickets.imp_regimes")
    for i, regime in enumerate(imp_regimes):
        if regime not in ("std", "at"):
            raise UserError(f"tickets.imp_regimes[{i}]: {regime!r} is not one of std, at")
    rungs = per_method(section.get("transfer_rungs"), methods, "tickets.transfer_rungs", int_list)
    base = {k: v for k, v in section.items() if k not in TICKET_GRID_KEYS}
    for key in ("weights", "method"):
        if key in base:
            raise UserError(
                f"tickets.{key}: set by the grid; use tickets.methods and pretrain.runs"
            )
    if "patterns" in section and "pattern" in base:
        raise UserError("tickets.pattern: give either pattern or patterns, not both")
    patterns = name_list(section.get("patterns"), "tickets.patterns") or [
        base.get("pattern", "unstructured")
    ]
    out = []
    for p in pretrainings:
        if not p.tickets:
            continue
        for method, regime, pattern in (
            (m, r, x)
            for x in patterns
            for m in methods
            for r in (imp_regimes if m in TRAINING_METHODS else [None])
        ):
            merged = deep_merge(base, {"weights": p.ref, "method": method, "pattern": pattern})
            if regime is not None:
                merged = deep_merge(merged, {"train": {"regime": regime}})
            spec = build_spec("tickets", merged, path="tickets").own_options_only()
            check_plan(spec, arch_of(p), input_size_of(p))
            check_val_size(spec.data.name, spec.data.val_size, "tickets.data.val_size")
            if method != "imp" and not spec.sparsities and spec.pattern != "nm":
                # One-shot methods are drawn at the IMP ladder so methods meet at equal
                # sparsity.
                spec = replace(spec, sparsities=imp_ladder(spec.prune_rate, spec.rounds))
            out.append((p.label, spec))
    return tuple(out), rungs
