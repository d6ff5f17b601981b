"""A ticket of a finished run, by name: ``<pre-training>/<method>/<sparsity>``.

The method is the results table's (``imp``, ``omp``, ``imp:channel`` for another pattern),
with ``@std`` or ``@at`` for the training inside IMP when the run has both; the sparsity is a
fraction or a percentage of a ladder rung (``0.4``, ``40%``). A ticket transferred to several
downstream settings also needs the setting: ``DATASET/FRACTION`` (``digits/0.5``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doublewin.analysis.verdict import TicketKey
from doublewin.core import paths
from doublewin.core.errors import UserError
from doublewin.core.parsing import parse_number
from doublewin.core.results import DENSE, ladder_of, method_key, sparsity_of
from doublewin.experiments.plan.experiment import Experiment, Pretraining
from doublewin.experiments.plan.grid import Job
from doublewin.experiments.run.folder import context_for, make_plan
from doublewin.experiments.run.job import RunContext, ticket_file, weights_file
from doublewin.experiments.run.results import collect_rows
from doublewin.experiments.store.store import Store

# Half the last digit of a percentage written to one decimal (78.4% for 1 − 0.6³).
SPARSITY_MATCH = 5e-4


@dataclass(frozen=True)
class NamedTicket:
    """A run's ticket at one downstream setting: its files, its transfer jobs and the dense
    model's by (regime, seed), and every finished row of the run (what the verdict reads)."""

    name: str
    experiment: Experiment
    store: Store
    pretraining: Pretraining
    key: TicketKey
    weights: Path  # θp
    ticket: Path
    transfers: Mapping[tuple[str, int], Job]
    dense: Mapping[tuple[str, int], Job]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def transfer_spec(self, regime: str) -> Any:
        """The ticket's transfer spec of ``regime`` (its lowest seed's)."""
        seeds = sorted(s for r, s in self.transfers if r == regime)
        if not seeds:
            raise UserError(f"{self.name}: the run has no {regime.upper()} transfer of it")
        return self.transfers[(regime, seeds[0])].spec


def find_ticket(run_dir: Path, name: str, downstream: str | None = None) -> NamedTicket:
    """The ticket ``name`` of the run in ``run_dir`` (see the module docstring)."""
    experiment_file = Path(run_dir) / paths.EXPERIMENT
    if not experiment_file.is_file():
        raise UserError(
            f"--run {run_dir}: not a run folder (no {paths.EXPERIMENT}); pass the folder "
            "doublewin run or doublewin demo wrote"
        )
    plan = make_plan(experiment_file, run_dir=run_dir)
    label, method, sparsity = _parse_name(name)
    ticket_jobs = [
        job for job in plan.jobs if job.stage == "transfer" and job.labels.get("method") != DENSE
    ]
    chosen = _matching(ticket_jobs, name, label, method, sparsity)
    setting = _setting(chosen, name, downstream)
    chosen = [j for j in chosen if (j.labels["dataset"], float(j.labels["fraction"])) == setting]
    dense = {
        (j.labels["regime"], int(j.labels["seed"])): j
        for j in plan.jobs
        if j.stage == "transfer"
        and j.labels.get("method") == DENSE
        and j.labels["pretraining"] == label
        and (j.labels["dataset"], float(j.labels["fraction"])) == setting
    }
    rows = collect_rows(plan.jobs, plan.store)
    first = chosen[0]
    context = context_for(plan)
    pretraining = next(p for p in plan.experiment.pretrainings if p.label == label)
    return NamedTicket(
        name=name,
        experiment=plan.experiment,
        store=plan.store,
        pretraining=pretraining,
        key=TicketKey(*ladder_of(first.labels), sparsity_of(first.labels)),
        weights=weights_file(first.spec.weights, context),
        ticket=_ticket_file(first.spec.ticket, context, name),
        transfers={(j.labels["regime"], int(j.labels["seed"])): j for j in chosen},
        dense=dense,
        rows=rows,
    )


def _ticket_file(ref: str, context: RunContext, name: str) -> Path:
    path = ticket_file(ref, context)
    if path is None:
        raise UserError(f"{name}: names the dense model, not a ticket")
    return path


def _parse_name(name: str) -> tuple[str, tuple[str, str | None], float]:
    parts = name.split("/")
    if len(parts) != 3 or not all(p.strip() for p in parts):
        raise UserError(
            f"--ticket {name}: write <pre-training>/<method>/<sparsity>, e.g. AT/imp/0.4 or "
            "AT/imp@std/40%"
        )
    label, method, text = (p.strip() for p in parts)
    percent = text.endswith("%")
    value = parse_number(text.rstrip("%"), name=f"--ticket {name}: the sparsity")
    sparsity = value / 100 if percent or value >= 1 else value
    key, _, imp_regime = method.partition("@")
    return label, (key, imp_regime or None), sparsity


def _matching(
    jobs: list[Job],
    name: str,
    label: str,
    method: tuple[str, str | None],
    sparsity: float,
) -> list[Job]:
    wanted, imp_regime = method
    chosen = [
        j
        for j in jobs
        if j.labels["pretraining"] == label
        and method_key(j.labels) == wanted
        and (imp_regime is None or j.labels.get("imp_regime") == imp_regime)
        and abs(sparsity_of(j.labels) - sparsity) <= SPARSITY_MATCH
    ]
    ladders = {(j.labels["imp_regime"], sparsity_of(j.labels)) for j in chosen}
    if not chosen:
        raise UserError(
            f"--ticket {name}: the run transfers no such ticket; it has "
            f"{_names(jobs) or 'no tickets'}"
        )
    if len(ladders) > 1:
        options = ", ".join(sorted(f"{label}/{wanted}@{r}/{s:g}" for r, s in ladders))
        raise UserError(f"--ticket {name}: names {len(ladders)} tickets; pass one of {options}")
    return chosen


def _names(jobs: list[Job]) -> str:
    names = sorted(
        {
            f"{j.labels['pretraining']}/{method_key(j.labels)}"
            + (f"@{j.labels['imp_regime']}" if j.labels.get("imp_regime") else "")
            + f"/{sparsity_of(j.labels):g}"
            for j in jobs
        }
    )
    shown = ", ".join(names[:8])
    return shown + (f" and {len(names) - 8} more" if len(names) > 8 else "")


def _setting(jobs: list[Job], name: str, downstream: str | None) -> tuple[str, float]:
    settings = sorted({(j.labels["dataset"], float(j.labels["fraction"])) for j in jobs})
    listed = ", ".join(f"{d}/{f:g}" for d, f in settings)
    if downstream is None:
        if len(settings) > 1:
            raise UserError(
                f"--ticket {name}: transferred to {len(settings)} settings ({listed}); pass "
                "--downstream DATASET/FRACTION"
            )
        return settings[0]
    dataset, _, fraction = downstream.partition("/")
    matches = [
        s
        for s in settings
        if s[0] == dataset
        and (not fraction or abs(s[1] - _fraction(fraction, downstream)) <= SPARSITY_MATCH)
    ]
    if len(matches) != 1:
        raise UserError(
            f"--downstream {downstream}: {name} was transferred to {listed}; pass one of them"
        )
    return matches[0]


def _fraction(text: str, downstream: str) -> float:
    value = parse_number(text.rstrip("%"), name=f"--downstream {downstream}: the fraction")
    return value / 100 if text.endswith("%") else value
