"""The grid of an experiment: every stage job, with the references that connect them.

References between stages are store entry ids, known before anything runs: a ticket job names
its pre-training as ``pretrain-<hash>`` (or ``weights-<content hash>`` for an imported file), a
transfer job names its ticket as ``tickets-<hash>@<sparsity>``. So the whole grid, and what of
it is already done, is known up front (``--dry-run``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from doublewin.core.defaults import upright_data
from doublewin.core.errors import UserError
from doublewin.core.hashing import spec_hash
from doublewin.core.results import DENSE, SPARSITY_DIGITS, method_key
from doublewin.core.specs import (
    DataSpec,
    TicketSpec,
    TransferSpec,
)
from doublewin.core.ticket_parts import NETWORK_METHODS, TRAINING_METHODS
from doublewin.core.typed import from_dict
from doublewin.experiments.plan.experiment import Experiment
from doublewin.experiments.plan.landscapes import landscape_spec, nearest_rung
from doublewin.experiments.plan.pretrainings import Pretraining
from doublewin.tickets.ladder import ticket_ladder


@dataclass(frozen=True)
class Job:
    """One stage run. ``id`` is its store entry name; ``labels`` go into results.csv."""

    stage: str
    spec: Any
    deps: tuple[str, ...] = ()
    labels: Mapping[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def id(self) -> str:
        # Cached: the runner and results.csv ask for it in loops over hundreds of jobs, and
        # each computation hashes the spec's canonical form (the main process's busiest work
        # in a profile of the demo, beside two busy workers).
        return f"{self.stage}-{spec_hash(self.stage, self.spec)}"


def expand(experiment: Experiment) -> list[Job]:
    """Every job of the full grid, upstream stages first: the pre-trainings, their tickets,
    then for each pre-training its dense baseline and every transferred rung × dataset ×
    fraction × regime × seed."""
    jobs = [
        Job("pretrain", p.spec, (), {"pretraining": p.label})
        for p in experiment.pretrainings
        if p.spec is not None
    ]
    ticket_jobs = _ticket_jobs(experiment)
    jobs += ticket_jobs
    for p in experiment.pretrainings:
        jobs += _transfer_jobs(experiment, p, _tickets_of(experiment, p, ticket_jobs))
    return jobs + landscape_jobs(experiment, ticket_jobs)


# A ticket to transfer: (its reference, its labels, the jobs it waits for).
TicketRef = tuple[str, dict[str, Any], tuple[str, ...]]


def _ticket_jobs(experiment: Experiment) -> list[Job]:
    """One tickets job per pre-training × ticket spec of the experiment."""
    by_label = {p.label: p for p in experiment.pretrainings}
    ticket_jobs: list[Job] = []
    for label, spec in experiment.ticket_specs:
        labels = {
            "pretraining": label,
            "method": spec.method,
            "imp_regime": spec.train.regime if spec.method in TRAINING_METHODS else "",
            "pattern": spec.pattern,
        }
        deps = _trained_dep(by_label[label])
        if spec.method == "search-then-prune":
            # It shrinks each rung to the MACs of the SuperTicket of the same pre-training,
            # regime and rung: that job's entry is its reference.
            spec = replace(spec, macs_of=_supertickets_of(ticket_jobs, labels, spec))
            deps += (spec.macs_of,)
        ticket_jobs.append(Job("tickets", spec, deps, labels))
    return ticket_jobs


def _tickets_of(experiment: Experiment, p: Pretraining, ticket_jobs: list[Job]) -> list[TicketRef]:
    """What ``p`` transfers: the dense baseline first, its ticket files, then the chosen
    rungs of every ladder drawn from it."""
    tickets: list[TicketRef] = [
        (
            "",
            {"method": DENSE, "imp_regime": "", "pattern": "", "sparsity": 0.0},
            _trained_dep(p),
        )
    ]
    tickets += _file_tickets(p)
    for job in ticket_jobs:
        if job.labels["pretraining"] != p.label:
            continue
        ladder = ticket_ladder(job.spec)
        # An N:M ladder transfers its N:M rung only (IMP's rungs before it are (M−k):M).
        chosen = (
            [len(ladder) - 1]
            if job.spec.pattern == "nm"
            else select_rungs(len(ladder), experiment.rungs_of(job.spec.method))
        )
        for index in chosen:
            labels = {
                "method": job.labels["method"],
                "imp_regime": job.labels["imp_regime"],
                "pattern": job.labels["pattern"],
                "sparsity": ladder[index],
                "rung": index + 1,
            }
            tickets.append((ticket_ref(job.id, ladder[index]), labels, (job.id,)))
    return tickets


def _transfer_jobs(experiment: Experiment, p: Pretraining, tickets: list[TicketRef]) -> list[Job]:
    """Every transfer of ``p``'s ``tickets``: dataset × fraction × regime × seed (a ticket's
    method may go to fewer fractions)."""
    # A SuperTicket transfers its own network; every other ticket masks θp.
    weights_of = {
        ref: network_ref(ref) if found["method"] in NETWORK_METHODS else p.ref
        for ref, found, _ in tickets
    }
    jobs = []
    for ticket, ticket_labels, deps in tickets:
        method = ticket_labels["method"]
        for dataset, fraction, regime, seed in _downstream(experiment):
            if method != DENSE and fraction not in experiment.fractions_of(method):
                continue
            spec = transfer_spec(
                experiment, weights_of[ticket], ticket, dataset, fraction, regime, seed
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


def landscape_jobs(experiment: Experiment, ticket_jobs: list[Job]) -> list[Job]:
    """The loss landscapes ``analysis.landscape`` asks for: per selected pre-training, its
    ticket of the chosen method at the rung nearest the plan's sparsity, transferred again
    with its trajectory for every selected dataset × fraction × regime × seed."""
    plan = experiment.landscape
    if plan is None:
        return []
    jobs = []
    refs = {p.label: p.ref for p in experiment.pretrainings}
    for job in ticket_jobs:
        label = job.labels["pretraining"]
        if job.labels["method"] != plan.method or (
            plan.method in TRAINING_METHODS and job.labels["imp_regime"] != plan.imp_regime
        ):
            continue
        if plan.pretrainings is not None and label not in plan.pretrainings:
            continue
        ladder = ticket_ladder(job.spec)
        rung = nearest_rung(ladder, plan.sparsity)
        for dataset, fraction, regime, seed in _downstream(experiment):
            if regime not in plan.regimes or (
                plan.fractions is not None and fraction not in plan.fractions
            ):
                continue
            if plan.seeds is not None and seed not in plan.seeds:
                continue
            if plan.seeds is None and experiment.on_demand and seed >= experiment.verdict.seeds.min:  # type: ignore[union-attr]
                continue  # seeds on demand: the landscapes of the seeds every cell runs
            ticket = ticket_ref(job.id, ladder[rung])
            transfer = transfer_spec(
                experiment,
                network_ref(ticket) if plan.method in NETWORK_METHODS else refs[label],
                ticket,
                dataset,
                fraction,
                regime,
                seed,
            )
            labels = {
                "pretraining": label,
                "method": plan.method,
                "imp_regime": job.labels["imp_regime"],
                "sparsity": ladder[rung],
                "rung": rung + 1,
                "dataset": dataset,
                "fraction": fraction,
                "regime": regime,
                "seed": seed,
            }
            jobs.append(Job("landscape", landscape_spec(plan, transfer), (job.id,), labels))
    return jobs


def plan_ladders(jobs: list[Job]) -> list[dict[str, Any]]:
    """Every ladder of the plan with all its rungs, transferred or not: per pre-training, method
    (``imp:channel`` for a pattern) and IMP regime, the sparsities in order. The report brackets
    each extreme with them (a rung never transferred is named as such, not skipped). An N:M
    ladder is its one transferred rung; ticket files are the rungs they have."""
    ladders: dict[tuple[str, str, str], set[float]] = {}
    for job in jobs:
        if job.stage == "tickets":
            ladder = ticket_ladder(job.spec)
            rungs = ladder[-1:] if job.spec.pattern == "nm" else ladder
            key = (job.labels["pretraining"], method_key(job.labels), job.labels["imp_regime"])
            ladders.setdefault(key, set()).update(rungs)
    for job in jobs:
        if job.stage == "transfer" and job.labels["method"] != DENSE:
            key = (job.labels["pretraining"], method_key(job.labels), job.labels["imp_regime"])
            ladders.setdefault(key, set()).add(job.labels["sparsity"])
    return [
        {"pretraining": p, "method": m, "imp_regime": r, "sparsities": sorted(rungs)}
        for (p, m, r), rungs in sorted(ladders.items())
    ]


def _file_tickets(p: Pretraining) -> list[tuple[str, dict[str, Any], tuple[str, ...]]]:
    """The ticket files of ``p`` as (mask reference, labels, dependencies): every file is
    transferred, its rung its place among its ladder's sparsities."""
    ladders: dict[tuple[str, str, str], list[float]] = {}
    for f in p.ticket_files:
        ladders.setdefault((f.method, f.imp_regime, f.pattern), []).append(f.sparsity)
    out = []
    for f in sorted(p.ticket_files, key=lambda f: (f.method, f.imp_regime, f.pattern, f.sparsity)):
        rung = sorted(set(ladders[(f.method, f.imp_regime, f.pattern)])).index(f.sparsity) + 1
        labels = {
            "method": f.method,
            "imp_regime": f.imp_regime,
            "pattern": f.pattern,
            "sparsity": f.sparsity,
            "rung": rung,
        }
        out.append((f.ref, labels, _trained_dep(p)))
    return out


def _trained_dep(p: Pretraining) -> tuple[str, ...]:
    """A pre-training trained here is a job to wait for; an imported file is not."""
    return (p.ref,) if p.spec is not None else ()


def _downstream(experiment: Experiment) -> list[tuple[str, float, str, int]]:
    """(dataset, fraction, regime, seed) of every transfer, in the grid's order."""
    return [
        (dataset, fraction, regime, seed)
        for dataset in experiment.datasets
        for fraction in experiment.fractions
        for regime in experiment.regimes
        for seed in experiment.seeds
    ]


def transfer_spec(
    experiment: Experiment,
    weights: str,
    ticket: str,
    dataset: str,
    fraction: float,
    regime: str,
    seed: int,
) -> TransferSpec:
    """The transfer job of ``regime``'s spec (built once, core/build.py) on one ticket,
    dataset, fraction and seed."""
    # No flip or shift on the glyph sets unless the file says so (core/defaults.py).
    fields = upright_data(
        dataset, {**experiment.transfer_data, "name": dataset, "fraction": fraction}
    )
    return replace(
        experiment.transfers[regime],
        weights=weights,
        ticket=ticket,
        data=from_dict(DataSpec, fields),
        seed=seed,
    )


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
    """``tickets-<hash>@0.488000``: the ticket at one rung of a tickets job."""
    return f"{tickets_id}@{sparsity:.{SPARSITY_DIGITS}f}"


NETWORK_PREFIX = "network:"


def network_ref(ticket: str) -> str:
    """``network:tickets-<hash>@0.488000``: the network a SuperTicket at that rung brings (its
    transfer's weights)."""
    return f"{NETWORK_PREFIX}{ticket}"


def _supertickets_of(jobs: list[Job], labels: Mapping[str, Any], spec: TicketSpec) -> str:
    """The entry of the SuperTickets job of the same pre-training, regime and pattern whose
    ladder holds ``spec``'s rungs."""
    for job in jobs:
        same = all(job.labels[k] == labels[k] for k in ("pretraining", "imp_regime", "pattern"))
        rungs = set(ticket_ladder(spec)) <= set(ticket_ladder(job.spec))
        if same and job.labels["method"] == "supertickets" and rungs:
            return job.id
    raise UserError(
        f"tickets.methods: search-then-prune shrinks each rung to the MACs of the SuperTicket "
        f"at that rung; list supertickets before it (pre-training {labels['pretraining']})"
    )
