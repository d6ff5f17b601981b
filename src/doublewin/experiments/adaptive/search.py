"""``--search extreme``: the extreme double-win sparsity of each ladder without the full grid.

A ladder is one pre-training × dataset × fraction × ticket method × IMP regime; its rungs are
the ticket sparsities. Double-win is expected to hold at low sparsity and to fail beyond some
rung, so the boundary is found by bisection over the rungs (the dense baseline counts as the
always-true rung below the first). Bisection ends with the boundary's two neighbours judged:
the last double-win rung and the first failing one. The boundary is then confirmed one rung
further up: the rung above the first failure must fail too. If it is double-win the ladder is
not monotone there, the note says so, and bisection goes on above it. The extreme reported is
the largest double-win rung evaluated — the definition the full grid uses.

A rung whose verdict is inconclusive (the seeds cannot tell matching from not matching) is
neither a winner nor a boundary: bisection tries the other rungs between the bounds, and the
note says about how many seeds would decide it at the observed spread.

A rung is judged regime by regime, standard transfer first: a ticket that does not match under
ST is not double-win whatever AT shows, so its AT runs are skipped (and so is the AT dense
baseline while no rung of its setting needs it). Ladders advance in waves: each wave gathers
the next step of every unfinished ladder and runs those jobs together, so ``--jobs N`` keeps N
workers busy.

A setting with no ladder (the no-pre-training control) is not searched: its dense baselines run
in full at wave 0, every regime at the seed plan's most seeds, as seeds on demand runs them.

Anchor rungs (``tickets.anchor_rungs``) are judged first, under every regime whatever their ST
verdict, so methods meet at equal sparsity with all four accuracies (IMP against random); their
verdicts are recorded like any other, so they bound the bisection that follows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from doublewin.analysis.verdict import SeedPlan, TicketVerdict, VerdictConfig, verdicts
from doublewin.core.results import REGIMES, LadderKey, Setting, regime_of, transfer_place
from doublewin.experiments.adaptive.on_demand import open_regimes
from doublewin.experiments.plan.grid import Job


@dataclass
class LadderSearch:
    """Search state of one ladder; rung indices are 0-based, -1 is the dense baseline."""

    key: LadderKey
    sparsities: tuple[float, ...]
    low: int = -1  # largest rung known double-win
    high: int = -1  # smallest rung above ``low`` known not double-win (len: none yet)
    results: dict[int, bool | None] = field(default_factory=dict)
    phase: str = "bisect"  # bisect → confirm → (bisect above a surprise winner →) done
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.high = len(self.sparsities)

    def next_rung(self) -> int | None:
        """The rung to evaluate next, or None when the search is done."""
        while True:
            if self.phase == "bisect":
                # Rungs already judged inside the bounds are inconclusive ones: skip them.
                open_rungs = [r for r in range(self.low + 1, self.high) if r not in self.results]
                if open_rungs:
                    middle = (self.low + self.high) // 2
                    return min(open_rungs, key=lambda r: (abs(r - middle), r))
                self.phase = "confirm"
            if self.phase == "confirm":
                above = self.high + 1
                if above not in self.results and above < len(self.sparsities):
                    return above
                if not self.results.get(above):
                    self._finish()
                    return None
                self.notes.append(
                    f"rung {self.sparsities[above]:.4f} is double-win above the failing rung "
                    f"{self.sparsities[self.high]:.4f}: the ladder is not monotone here"
                )
                self.low, self.high, self.phase = above, len(self.sparsities), "bisect"
                continue
            return None

    def record(self, rung: int, double_win: bool | None, why: str = "") -> None:
        """The rung's verdict: True double-win, False not, None inconclusive or missing
        (``why`` says which, for the notes)."""
        self.results[rung] = double_win
        if double_win is None:
            self.notes.append(
                f"rung {self.sparsities[rung]:.4f} "
                + (why or "has no verdict (a transfer run failed or is missing)")
                + ": neither a winner nor a boundary"
            )
        if self.phase == "bisect" and double_win is not None:
            if double_win:
                self.low = rung
            else:
                self.high = rung

    def _finish(self) -> None:
        self.phase = "done"
        extreme = self.extreme_rung
        losers = sorted(
            r
            for r, dw in self.results.items()
            if dw is False and extreme is not None and r < extreme
        )
        if losers:
            self.notes.append(
                "rungs below the extreme are not double-win ("
                + ", ".join(f"{self.sparsities[r]:.4f}" for r in losers)
                + "): the ladder is not monotone"
            )

    @property
    def extreme_rung(self) -> int | None:
        winners = [r for r, dw in self.results.items() if dw]
        return max(winners) if winners else None

    @property
    def extreme(self) -> float | None:
        rung = self.extreme_rung
        return None if rung is None else self.sparsities[rung]


@dataclass(frozen=True)
class SearchOutcome:
    ladders: tuple[LadderSearch, ...]
    transfer_runs: int  # transfer jobs the search needed (dense baselines included)
    full_grid_transfer_runs: int


def _why_undecided(verdict: TicketVerdict | None) -> str:
    if verdict is None or verdict.outcome != "inconclusive":
        return ""
    needed = verdict.seeds_needed
    more = (
        f"about {needed} seeds would decide it at the observed spread"
        if needed is not None
        else "more seeds are needed to decide it"
    )
    return f"is inconclusive ({more})"


def regime_order(regimes: set[str]) -> list[str]:
    """ST before AT (ST alone can decide "not double-win"), then anything else."""
    return [r for r in REGIMES if r in regimes] + sorted(regimes - set(REGIMES))


# A rung under evaluation: (position in the regime order reached so far, seeds asked for in
# that regime, whether every regime is judged: an anchor).
Look = tuple[int, int, bool]


class _Waves:
    """The search's side of the grid: its transfer jobs by setting or ladder, rung and regime,
    the seeds each look takes, and the jobs run so far (each once)."""

    def __init__(
        self,
        jobs: Sequence[Job],
        run: Callable[[list[Job]], list[dict[str, Any]]],
        plan: SeedPlan | None,
        anchors: Mapping[str, Sequence[int]],
    ):
        self.run, self.plan = run, plan
        self.upstream = [j for j in jobs if j.stage != "transfer"]
        self.transfers = [j for j in jobs if j.stage == "transfer"]
        # setting → regime → dense jobs; ladder → sparsity → regime → ticket jobs
        self.dense: dict[Setting, dict[str, list[Job]]] = defaultdict(lambda: defaultdict(list))
        self.rungs: dict[LadderKey, dict[float, dict[str, list[Job]]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(list))
        )
        self.anchored: dict[LadderKey, set[float]] = defaultdict(set)
        for job in self.transfers:
            regime, setting, key, sparsity = transfer_place(job.labels)
            if key is None:
                self.dense[setting][regime].append(job)
                continue
            self.rungs[key][sparsity][regime].append(job)
            if int(job.labels.get("rung") or 0) in anchors.get(job.labels["method"], ()):
                self.anchored[key].add(sparsity)
        self.order = regime_order({regime_of(j.labels) for j in self.transfers})
        # Seeds on demand (verdict.seeds): a rung's regime starts at the plan's first look and
        # takes more seeds while its comparisons are open; otherwise every seed at once.
        self.seeds = sorted({int(j.labels["seed"]) for j in self.transfers})
        self.start = min(plan.min, len(self.seeds)) if plan is not None else len(self.seeds)
        self.done_ids: set[str] = set()

    def first(self, batch: list[Job], n: int) -> list[Job]:
        kept = set(self.seeds[:n])
        return [j for j in batch if int(j.labels["seed"]) in kept]

    def submit(self, batch: list[Job]) -> list[dict[str, Any]]:
        # Ladders of one setting share its dense jobs: each job once.
        fresh = list({j.id: j for j in batch if j.id not in self.done_ids}.values())
        rows = self.run(fresh)
        self.done_ids.update(j.id for j in fresh)
        return rows

    def submit_first(self) -> None:
        """Wave 0: every upstream stage and the dense baselines of the first regime; a
        setting with no ladder to search (the no-pre-training control) runs its dense
        baselines in full, every regime at the plan's most seeds: it is the reference every
        pre-training is compared with."""
        first_dense = [
            j for by_regime in self.dense.values() for j in by_regime.get(self.order[0], [])
        ]
        searched = {key[:3] for key in self.rungs}
        alone = [
            j
            for setting, by_regime in self.dense.items()
            if setting not in searched
            for jobs_of_regime in by_regime.values()
            for j in jobs_of_regime
        ]
        plan, seeds = self.plan, self.seeds
        most = min(plan.max, len(seeds)) if plan is not None else len(seeds)
        self.submit(
            [*self.upstream, *self.first(first_dense, self.start), *self.first(alone, most)]
        )

    def look_jobs(self, key: LadderKey, sparsity: float, look: Look) -> list[Job]:
        """The jobs of one look at a rung: its regime's dense baselines and ticket runs."""
        step, n, _ = look
        regime = self.order[step]
        return self.first(self.dense[key[:3]].get(regime, []), n) + self.first(
            self.rungs[key][sparsity].get(regime, []), n
        )

    def next_look(self, verdict: TicketVerdict | None, look: Look) -> Look | None:
        """More seeds in this regime while it is open; else the next regime (an anchor's
        always, another rung's while undecided); None: the rung is judged."""
        step, n, every = look
        double_win = None if verdict is None else verdict.double_win
        more = self.plan.next_look(n) if self.plan is not None else None
        if (
            more is not None
            and more <= len(self.seeds)
            and open_regimes(verdict, [self.order[step]])
        ):
            return step, more, every
        if (double_win is None or every) and step + 1 < len(self.order):
            return step + 1, self.start, every
        return None


def search_extreme(
    jobs: Sequence[Job],
    run: Callable[[list[Job]], list[dict[str, Any]]],
    verdict_config: VerdictConfig,
    anchors: Mapping[str, Sequence[int]] | None = None,
) -> SearchOutcome:
    """Run only the jobs the adaptive search needs.

    ``jobs`` is the full grid (upstream stages included); ``run(jobs)`` runs the given jobs
    (and whatever they depend on among ``jobs``) and returns the results rows of every finished
    transfer job of the grid so far. ``anchors``: per ticket method, the 1-based ladder rungs
    judged under every regime whatever their standard-transfer verdict (so methods can be
    compared at equal sparsity); a ladder starts its bisection once its anchors are recorded.
    """
    waves = _Waves(jobs, run, verdict_config.seeds, anchors or {})
    searches = {
        key: LadderSearch(key, tuple(sorted(by_sparsity)))
        for key, by_sparsity in waves.rungs.items()
    }
    waves.submit_first()
    current: dict[tuple[LadderKey, int], Look] = {
        (key, searches[key].sparsities.index(s)): (0, waves.start, True)
        for key, sparsities in waves.anchored.items()
        for s in sorted(sparsities)
    }
    while True:
        busy = {key for key, _ in current}
        for key, search in searches.items():
            if key not in busy and (rung := search.next_rung()) is not None:
                current[(key, rung)] = (0, waves.start, False)
        if not current:
            break
        batch = [
            job
            for (key, rung), look in current.items()
            for job in waves.look_jobs(key, searches[key].sparsities[rung], look)
        ]
        rows = waves.submit(batch)
        judged = {(v.key.group, v.key.sparsity): v for v in verdicts(rows, verdict_config)}
        for (key, rung), look in list(current.items()):
            search = searches[key]
            verdict = judged.get((key, search.sparsities[rung]))
            after = waves.next_look(verdict, look)
            if after is not None:
                current[(key, rung)] = after
                continue
            double_win = None if verdict is None else verdict.double_win
            search.record(rung, double_win, _why_undecided(verdict))
            del current[(key, rung)]
    spent = sum(1 for j in waves.transfers if j.id in waves.done_ids)
    return SearchOutcome(tuple(searches.values()), spent, len(waves.transfers))
