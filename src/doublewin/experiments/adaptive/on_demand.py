"""``--seeds auto``: seeds on demand under the group-sequential verdict (docs/verdict.md).

Every (ticket, regime) cell of the grid first runs the plan's ``min`` seeds, with the dense
baselines of its setting. Then, wave by wave, only the cells whose verdict is still open get
the next look's seeds (``step`` more), and their dense baselines get the same seeds where they
do not have them yet, up to ``max``. A cell is open while one of its regime's counted
comparisons is inconclusive and its ticket is not decided: a ticket that is double-win, or not
double-win (one failing comparison decides it), adds no more seeds anywhere.

The no-pre-training control is no ticket's baseline: its dense runs take all ``max`` seeds in
the first wave. A fixed number of seeds keeps the Welch intervals of "does pre-training help"
what they say (no optional stopping), and the control is the reference of every pre-training,
so its spread over seeds counts in each of those comparisons.

The verdict at every look is the sequential one (``VerdictConfig.seeds``), so stopping a cell
as soon as it is decided keeps the error rate the plan was calibrated for. Every decision is a
function of finished results, so a run stopped mid-wave and started again takes the same
decisions, reuses every finished seed and computes only the rest.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from doublewin.analysis.verdict import (
    SeedPlan,
    TicketKey,
    TicketVerdict,
    VerdictConfig,
    verdicts,
)
from doublewin.core.results import Setting, is_dense, transfer_place
from doublewin.experiments.plan.grid import Job

Cell = tuple[TicketKey, str]  # a ticket under one transfer regime
DenseCell = tuple[Setting, str]


@dataclass(frozen=True)
class OnDemandOutcome:
    """What the seeds on demand spent: transfer runs against a fixed ``max`` (and ``min``)
    seeds everywhere, waves, and the seeds each (ticket, regime) cell took."""

    transfer_runs: int
    fixed_max_runs: int
    fixed_min_runs: int
    waves: int
    seeds_taken: dict[Cell, int]


@dataclass
class TransferCells:
    """The grid's transfer jobs by cell and seed (seeds in the order they are added)."""

    tickets: dict[Cell, dict[int, Job]]
    dense: dict[DenseCell, dict[int, Job]]
    seeds: tuple[int, ...]

    @classmethod
    def of(cls, jobs: Iterable[Job]) -> TransferCells:
        tickets: dict[Cell, dict[int, Job]] = defaultdict(dict)
        dense: dict[DenseCell, dict[int, Job]] = defaultdict(dict)
        seeds: set[int] = set()
        for job in jobs:
            if job.stage != "transfer":
                continue
            seed = int(job.labels["seed"])
            seeds.add(seed)
            regime, setting, ladder, sparsity = transfer_place(job.labels)
            if ladder is None:
                dense[(setting, regime)][seed] = job
            else:
                tickets[(TicketKey(*ladder, sparsity), regime)][seed] = job
        return cls(dict(tickets), dict(dense), tuple(sorted(seeds)))

    def seed_jobs(self, cell: Cell, upto: int) -> list[Job]:
        """The ticket's jobs and its dense baseline's for the first ``upto`` seeds of ``cell``."""
        key, regime = cell
        wanted = self.seeds[:upto]
        own = self.tickets.get(cell, {})
        baseline = self.dense.get(((key.pretraining, key.dataset, key.fraction), regime), {})
        return [own[s] for s in wanted if s in own] + [baseline[s] for s in wanted if s in baseline]


def open_regimes(verdict: TicketVerdict | None, regimes: Sequence[str]) -> list[str]:
    """The regimes of a ticket whose comparisons still need seeds: none once the ticket is
    decided; else each regime with an inconclusive or not yet compared counted comparison."""
    if verdict is None:
        return list(regimes)
    if verdict.double_win is not None:
        return []
    found = {(c.regime, c.metric): c.outcome for c in verdict.comparisons}
    return [
        r
        for r in regimes
        if any(
            found.get(pair) in (None, "inconclusive") for pair in verdict.counted if pair[0] == r
        )
    ]


def seeds_on_demand(
    jobs: Sequence[Job],
    run: Callable[[list[Job]], list[dict[str, Any]]],
    config: VerdictConfig,
    controls: Iterable[str] = (),
) -> OnDemandOutcome:
    """Run the grid's upstream jobs and the transfer seeds the verdict asks for.

    ``run(jobs)`` runs the given jobs (and what they depend on) and returns the results rows
    of every finished transfer so far; ``config.seeds`` is the plan; ``controls`` names the
    no-pre-training controls, whose dense runs take every seed up to ``max`` at once."""
    plan: SeedPlan = config.seeds or SeedPlan()
    cells = TransferCells.of(jobs)
    upstream = [j for j in jobs if j.stage not in ("transfer", "landscape")]
    reached = {cell: min(plan.min, len(cells.seeds)) for cell in cells.tickets}
    batch = upstream + [j for cell, n in reached.items() for j in cells.seed_jobs(cell, n)]
    batch += first_dense_jobs(cells, plan, set(controls))
    done: set[str] = set()
    waves = 0
    while batch:
        fresh = list({j.id: j for j in batch if j.id not in done}.values())
        rows = run(fresh)
        done.update(j.id for j in fresh)
        waves += 1
        judged = {v.key: v for v in verdicts(rows, config)}
        batch = []
        for cell, n in list(reached.items()):
            key, regime = cell
            if regime not in open_regimes(judged.get(key), [regime]):
                continue
            upto = plan.next_look(n)
            if upto is None or upto > len(cells.seeds):
                continue
            reached[cell] = upto
            batch += cells.seed_jobs(cell, upto)
    transfers = [j for j in jobs if j.stage == "transfer"]
    spent = sum(1 for j in transfers if j.id in done)
    first = set(cells.seeds[: plan.min])
    return OnDemandOutcome(
        transfer_runs=spent,
        fixed_max_runs=len(transfers),
        fixed_min_runs=sum(1 for j in transfers if int(j.labels["seed"]) in first),
        waves=waves,
        seeds_taken=reached,
    )


def first_dense_jobs(cells: TransferCells, plan: SeedPlan, controls: set[str]) -> list[Job]:
    """The dense runs of the first wave: ``min`` seeds, and a control's ``max``."""
    out = []
    for (setting, _), dense in cells.dense.items():
        upto = plan.max if setting[0] in controls else plan.min
        out += [dense[s] for s in cells.seeds[:upto] if s in dense]
    return out


@dataclass(frozen=True)
class OnDemandCost:
    """The transfer runs of a plan with seeds on demand, for ``--dry-run``: ``first_look``
    runs every cell's ``min`` seeds, ``most`` is what ``max`` seeds everywhere could add on
    top, ``expected`` what the verdicts so far expect to add (the seeds-needed estimate of each
    open cell; None until the first look has results), over ``judged`` of ``cells`` cells."""

    first_look: int
    most: int
    expected: int | None
    judged: int
    cells: int


def on_demand_cost(
    jobs: Sequence[Job],
    rows: Sequence[dict[str, Any]],
    config: VerdictConfig,
    controls: Iterable[str] = (),
) -> OnDemandCost:
    """What seeds on demand would run, and expects to run from the finished ``rows``."""
    plan: SeedPlan = config.seeds or SeedPlan()
    cells = TransferCells.of(jobs)
    first = set(cells.seeds[: plan.min])
    transfers = [j for j in jobs if j.stage == "transfer"]
    dense_first = first_dense_jobs(cells, plan, set(controls))
    first_look = len(dense_first) + sum(
        1 for j in transfers if int(j.labels["seed"]) in first and not is_dense(j.labels)
    )
    judged = {v.key: v for v in verdicts(rows, config)} if rows else {}
    wanted: dict[str, Job] = {}
    seen = 0
    for cell in cells.tickets:
        key, regime = cell
        verdict = judged.get(key)
        compared = verdict is not None and any(
            c.regime == regime and c.seeds for c in verdict.comparisons
        )
        if not compared:
            continue
        seen += 1
        if not open_regimes(verdict, [regime]):
            continue
        needs = [
            c.seeds_needed or plan.max
            for c in verdict.comparisons  # type: ignore[union-attr]
            if c.regime == regime and c.outcome in (None, "inconclusive")
        ]
        upto = min(plan.max, max(needs, default=plan.max), len(cells.seeds))
        for job in cells.seed_jobs(cell, upto):
            if int(job.labels["seed"]) not in first:
                wanted[job.id] = job
    return OnDemandCost(
        first_look=first_look,
        most=len(transfers) - first_look,
        expected=len(wanted) if seen else None,
        judged=seen,
        cells=len(cells.tickets),
    )
