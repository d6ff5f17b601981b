"""An experiment file (YAML) and its expansion into the grid of stage jobs.

The file names the pre-trainings to compare, the ways to find tickets, and the downstream
transfer settings; see configs/demo.yaml for a commented example and docs/experiments.md for
every key. Sections hold the fields of the stage specs (specs.py); a named entry under
``pretrain.runs`` is deep-merged over the section's common fields, so
``pretrain.runs.AT.train.regime: at`` overrides ``pretrain.train`` for that run only.

References between stages are store entry ids, known before anything runs: a ticket job names
its pre-training as ``pretrain-<hash>`` (or ``weights-<content hash>`` for an imported file), a
transfer job names its ticket as ``tickets-<hash>@<sparsity>``. So the whole grid, and what of
it is already done, is known up front (``--dry-run``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from doublewin.analysis.verdict import VerdictConfig
from doublewin.errors import UserError
from doublewin.experiments.hashing import spec_hash
from doublewin.experiments.specs import (
    AttackSpec,
    DataSpec,
    PretrainSpec,
    TicketSpec,
    TrainSpec,
    TransferSpec,
    load_yaml,
)
from doublewin.experiments.typed import apply_override, from_dict, parse_overrides

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
)
TICKET_GRID_KEYS = ("methods", "imp_regimes", "transfer_rungs")
TRANSFER_GRID_KEYS = ("datasets", "fractions", "regimes", "data", "eval_attack")
REGIME_NAMES = {"st": "std", "at": "at"}


@dataclass(frozen=True)
class Pretraining:
    """One pre-training of the comparison: trained here (``spec``) or imported (``path``)."""

    label: str
    spec: PretrainSpec | None = None
    path: Path | None = None
    weights_hash: str | None = None  # content hash of an imported file, when readable

    @property
    def ref(self) -> str:
        if self.spec is not None:
            return f"pretrain-{spec_hash('pretrain', self.spec)}"
        if self.weights_hash:
            return f"weights-{self.weights_hash}"
        return f"file-{self.path}"


@dataclass(frozen=True)
class Job:
    """One stage run. ``id`` is its store entry name; ``labels`` go into results.csv."""

    stage: str
    spec: Any
    deps: tuple[str, ...] = ()
    labels: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.stage}-{spec_hash(self.stage, self.spec)}"


@dataclass(frozen=True)
class Experiment:
    """A parsed experiment file."""

    name: str
    arch: str
    seeds: tuple[int, ...]
    pretrainings: tuple[Pretraining, ...]
    ticket_specs: tuple[tuple[str, TicketSpec], ...]  # (pretraining label, spec)
    transfer_rungs: tuple[int, ...] | None
    datasets: tuple[str, ...]
    fractions: tuple[float, ...]
    regimes: Mapping[str, TrainSpec]  # "st"/"at" -> training spec
    transfer_data: Mapping[str, Any]
    eval_attack: AttackSpec
    verdict: VerdictConfig
    raw: Mapping[str, Any]
    # A store shared by several experiments (e.g. the paper configs share their IMP tickets);
    # None = <run dir>/store.
    store: str | None = None


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``, recursing into mappings present in both."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_experiment(
    source: str | Path | Mapping[str, Any], overrides: Iterable[str] = ()
) -> Experiment:
    """Parse an experiment file (or mapping) with ``key=value`` overrides applied first."""
    raw = copy.deepcopy(dict(source)) if isinstance(source, Mapping) else load_yaml(source)
    for key, value in parse_overrides(overrides):
        apply_override(raw, key, value)
    return parse_experiment(raw)


def parse_experiment(raw: Mapping[str, Any]) -> Experiment:
    unknown = sorted(set(raw) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise UserError(f"{unknown[0]}: unknown key; known keys: {', '.join(TOP_LEVEL_KEYS)}")
    name = str(raw.get("name", "experiment"))
    arch = raw.get("arch", PretrainSpec().arch)
    if not isinstance(arch, str):
        raise UserError(f"arch: expected an architecture name, got {arch!r}")
    seeds = _int_list(raw.get("seeds", [0]), "seeds")
    if not seeds:
        raise UserError("seeds: give at least one seed, e.g. seeds: [0, 1]")

    pretrainings = _parse_pretrain(raw.get("pretrain") or {}, arch)
    ticket_specs, rungs = _parse_tickets(raw.get("tickets"), pretrainings)
    transfer = raw.get("transfer") or {}
    if not isinstance(transfer, Mapping):
        raise UserError("transfer: expected a mapping")
    datasets = tuple(str(d) for d in _as_list(transfer.get("datasets", ["digits"])))
    fractions = tuple(
        from_dict(DataSpec, {"fraction": f}, path=f"transfer.fractions[{i}]").fraction
        for i, f in enumerate(_as_list(transfer.get("fractions", [1.0])))
    )
    regimes_raw = transfer.get("regimes", {"st": {}, "at": {}})
    if not isinstance(regimes_raw, Mapping) or not regimes_raw:
        raise UserError("transfer.regimes: expected a mapping with st and/or at")
    regimes: dict[str, TrainSpec] = {}
    for regime, train_raw in regimes_raw.items():
        if regime not in REGIME_NAMES:
            raise UserError(f"transfer.regimes.{regime}: unknown regime; use st and at")
        merged = deep_merge(train_raw or {}, {"regime": REGIME_NAMES[regime]})
        regimes[regime] = from_dict(TrainSpec, merged, path=f"transfer.regimes.{regime}")
    transfer_data = dict(transfer.get("data") or {})
    for key in ("name", "fraction"):
        if key in transfer_data:
            raise UserError(
                f"transfer.data.{key}: set it through transfer.datasets / transfer.fractions"
            )
    from_dict(DataSpec, transfer_data, path="transfer.data")  # validate early
    eval_attack = from_dict(
        AttackSpec,
        deep_merge({"steps": 20, "bn_mode": "eval"}, transfer.get("eval_attack") or {}),
        path="transfer.eval_attack",
    )
    unknown = sorted(set(transfer) - set(TRANSFER_GRID_KEYS))
    if unknown:
        raise UserError(
            f"transfer.{unknown[0]}: unknown key; known keys: {', '.join(TRANSFER_GRID_KEYS)}"
        )
    verdict = from_dict(VerdictConfig, raw.get("verdict") or {}, path="verdict")
    store = raw.get("store")
    if store is not None and not isinstance(store, str):
        raise UserError(f"store: expected a folder path, got {store!r}")
    return Experiment(
        name,
        arch,
        tuple(seeds),
        pretrainings,
        ticket_specs,
        rungs,
        datasets,
        fractions,
        regimes,
        transfer_data,
        eval_attack,
        verdict,
        dict(raw),
        store,
    )


def expand(
    experiment: Experiment, ladders: Mapping[str, tuple[float, ...]] | None = None
) -> list[Job]:
    """Every job of the full grid, upstream stages first.

    ``ladders`` maps a tickets job id to the sparsities it produces; by default the ladder is
    computed from the spec (IMP: 1 − (1 − rate)^k; others: their ``sparsities``)."""
    jobs: list[Job] = []
    for p in experiment.pretrainings:
        if p.spec is not None:
            jobs.append(Job("pretrain", p.spec, (), {"pretraining": p.label}))
    ticket_jobs: list[tuple[str, Job]] = []
    by_label = {p.label: p for p in experiment.pretrainings}
    for label, spec in experiment.ticket_specs:
        p = by_label[label]
        deps = (p.ref,) if p.spec is not None else ()
        job = Job(
            "tickets",
            spec,
            deps,
            {
                "pretraining": label,
                "method": spec.method,
                "imp_regime": spec.train.regime if spec.method == "imp" else "",
            },
        )
        jobs.append(job)
        ticket_jobs.append((label, job))
    for p in experiment.pretrainings:
        candidates: list[tuple[str, Mapping[str, Any], tuple[str, ...]]] = [
            (
                "",
                {"method": "dense", "imp_regime": "", "sparsity": 0.0},
                (p.ref,) if p.spec is not None else (),
            )
        ]
        for label, job in ticket_jobs:
            if label != p.label:
                continue
            ladder = (ladders or {}).get(job.id) or ticket_ladder(job.spec)
            for index in select_rungs(len(ladder), experiment.transfer_rungs):
                sparsity = ladder[index]
                candidates.append(
                    (
                        ticket_ref(job.id, sparsity),
                        {
                            "method": job.labels["method"],
                            "imp_regime": job.labels["imp_regime"],
                            "sparsity": sparsity,
                            "rung": index + 1,
                        },
                        (job.id,),
                    )
                )
        for ticket, ticket_labels, deps in candidates:
            for dataset in experiment.datasets:
                for fraction in experiment.fractions:
                    for regime, train in experiment.regimes.items():
                        for seed in experiment.seeds:
                            spec = transfer_spec(
                                experiment, p.ref, ticket, dataset, fraction, train, seed
                            )
                            labels = {
                                "pretraining": p.label,
                                **ticket_labels,
                                "dataset": dataset,
                                "fraction": fraction,
                                "regime": regime,
                                "seed": seed,
                            }
                            jobs.append(Job("transfer", spec, deps, labels))
    return jobs


def transfer_spec(
    experiment: Experiment,
    weights: str,
    ticket: str,
    dataset: str,
    fraction: float,
    train: TrainSpec,
    seed: int,
) -> TransferSpec:
    data = from_dict(DataSpec, {**experiment.transfer_data, "name": dataset, "fraction": fraction})
    return TransferSpec(
        weights=weights,
        ticket=ticket,
        data=data,
        train=train,
        eval_attack=experiment.eval_attack,
        seed=seed,
    )


def ticket_ladder(spec: TicketSpec) -> tuple[float, ...]:
    """Target sparsities a tickets job produces (fractions, ascending)."""
    if spec.sparsities:
        return tuple(sorted(spec.sparsities))
    keep = 1.0 - spec.prune_rate
    return tuple(round(1.0 - keep**k, 6) for k in range(1, spec.rounds + 1))


def select_rungs(count: int, rungs: tuple[int, ...] | None) -> list[int]:
    """0-based indices of the ladder rungs to transfer (``rungs`` are 1-based)."""
    if rungs is None:
        return list(range(count))
    for r in rungs:
        if not 1 <= r <= count:
            raise UserError(
                f"tickets.transfer_rungs: rung {r} is not on the {count}-rung ladder; "
                f"use numbers from 1 to {count}"
            )
    return [r - 1 for r in rungs]


def ticket_ref(tickets_id: str, sparsity: float) -> str:
    return f"{tickets_id}@{sparsity:.6f}"


def _parse_pretrain(section: Any, arch: str) -> tuple[Pretraining, ...]:
    if not isinstance(section, Mapping):
        raise UserError("pretrain: expected a mapping with runs")
    runs = section.get("runs")
    if not isinstance(runs, Mapping) or not runs:
        raise UserError(
            "pretrain.runs: name at least one pre-training, e.g. "
            "runs: {STD: {train: {regime: std}}}"
        )
    base = {k: v for k, v in section.items() if k != "runs"}
    out = []
    for label, run in runs.items():
        run = run or {}
        if not isinstance(run, Mapping):
            raise UserError(f"pretrain.runs.{label}: expected a mapping")
        if "weights" in run:
            extra = sorted(set(run) - {"weights"})
            if extra:
                raise UserError(
                    f"pretrain.runs.{label}.{extra[0]}: an imported pre-training "
                    "takes only `weights: PATH`"
                )
            path = Path(str(run["weights"])).expanduser()
            out.append(Pretraining(str(label), path=path, weights_hash=_file_hash(path)))
            continue
        merged = deep_merge({"arch": arch, **base}, run)
        spec = from_dict(PretrainSpec, merged, path=f"pretrain.runs.{label}")
        out.append(Pretraining(str(label), spec=spec))
    return tuple(out)


def _parse_tickets(
    section: Any, pretrainings: tuple[Pretraining, ...]
) -> tuple[tuple[tuple[str, TicketSpec], ...], tuple[int, ...] | None]:
    if section is None:
        return (), None
    if not isinstance(section, Mapping):
        raise UserError("tickets: expected a mapping")
    methods = [str(m) for m in _as_list(section.get("methods", ["imp"]))]
    imp_regimes = [str(r) for r in _as_list(section.get("imp_regimes", ["std"]))]
    for i, regime in enumerate(imp_regimes):
        if regime not in ("std", "at"):
            raise UserError(f"tickets.imp_regimes[{i}]: {regime!r} is not one of std, at")
    rungs_raw = section.get("transfer_rungs")
    rungs = None if rungs_raw is None else tuple(_int_list(rungs_raw, "tickets.transfer_rungs"))
    base = {k: v for k, v in section.items() if k not in TICKET_GRID_KEYS}
    for key in ("weights", "method"):
        if key in base:
            raise UserError(
                f"tickets.{key}: set by the grid; use tickets.methods and pretrain.runs"
            )
    out = []
    for p in pretrainings:
        for method in methods:
            regimes = imp_regimes if method == "imp" else [None]
            for regime in regimes:
                merged = deep_merge(base, {"weights": p.ref, "method": method})
                if regime is not None:
                    merged = deep_merge(merged, {"train": {"regime": regime}})
                spec = from_dict(TicketSpec, merged, path="tickets")
                if method != "imp" and not spec.sparsities:
                    # One-shot methods are drawn at the IMP ladder so methods meet at equal
                    # sparsity.
                    spec = replace(spec, sparsities=ticket_ladder(replace(spec, method="imp")))
                out.append((p.label, spec))
    return tuple(out), rungs


def _file_hash(path: Path) -> str | None:
    """Content hash recorded in a doublewin weights file's metadata (None if unreadable)."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
    except Exception:
        return None
    value = meta.get("content_hash")
    return value.strip('"') if value else None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _int_list(value: Any, key: str) -> list[int]:
    out = []
    for i, item in enumerate(_as_list(value)):
        if isinstance(item, bool) or not isinstance(item, int):
            raise UserError(f"{key}[{i}]: expected a whole number, got {item!r}")
        out.append(item)
    return out
