"""``--search extreme``: the extreme double-win sparsity of each ladder without the full grid.

A ladder is one pre-training × dataset × fraction × ticket method × IMP regime; its rungs are
the ticket sparsities. Double-win is expected to hold at low sparsity and to fail beyond some
rung, so the boundary is found by bisection over the rungs (the dense baseline counts as the
always-true rung below the first). The boundary is then confirmed at its neighbours: the rung
below must be double-win and the rung above must not; a neighbour that disagrees is reported as
a non-monotone ladder, and the extreme is the largest double-win rung actually evaluated —
the same definition the full grid uses.

Every rung evaluation runs all of its transfer jobs (regimes × seeds). Ladders advance in
waves: each wave gathers the next rung of every unfinished ladder and runs those jobs together,
so ``--jobs N`` keeps N workers busy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from doublewin.analysis.verdict import VerdictConfig, verdicts
from doublewin.experiments.experiment import Job

LadderKey = tuple[str, str, float, str, str]


@dataclass
class LadderSearch:
    """Bisection state of one ladder; rung indices are 0-based, -1 is the dense baseline."""

    key: LadderKey
    sparsities: tuple[float, ...]
    low: int = -1  # largest rung known double-win (monotone assumption)
    high: int = -1  # smallest rung known not double-win (len = none known yet)
    results: dict[int, bool | None] = field(default_factory=dict)
    phase: str = "bisect"  # bisect → confirm → done
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.high = len(self.sparsities)

    def next_rung(self) -> int | None:
        """The rung to evaluate next, or None when the search is done."""
        if self.phase == "bisect":
            if self.high - self.low > 1:
                return (self.low + self.high) // 2
            self.phase = "confirm"
        if self.phase == "confirm":
            for rung in (self.low - 1, self.high):
                if 0 <= rung < len(self.sparsities) and rung not in self.results:
                    return rung
            self._check_monotone()
            self.phase = "done"
        return None

    def record(self, rung: int, double_win: bool | None) -> None:
        self.results[rung] = double_win
        if self.phase == "bisect":
            if double_win:
                self.low = rung
            else:
                self.high = rung

    def _check_monotone(self) -> None:
        below = self.results.get(self.low - 1)
        above = self.results.get(self.high)
        if self.low - 1 >= 0 and below is not True:
            self.notes.append(f"rung below the boundary ({self.sparsities[self.low - 1]:.4f}) "
                              "is not double-win: the ladder is not monotone here")
        if above is True:
            self.notes.append(f"rung above the boundary ({self.sparsities[self.high]:.4f}) "
                              "is double-win: the ladder is not monotone here")

    @property
    def extreme(self) -> float | None:
        winners = [r for r, dw in self.results.items() if dw]
        return self.sparsities[max(winners)] if winners else None


@dataclass(frozen=True)
class SearchOutcome:
    ladders: tuple[LadderSearch, ...]
    transfer_runs: int  # transfer jobs the search needed (dense baselines included)
    full_grid_transfer_runs: int


def ladder_key(labels: Mapping[str, Any]) -> LadderKey:
    return (str(labels["pretraining"]), str(labels["dataset"]), float(labels["fraction"]),
            str(labels["method"]), str(labels.get("imp_regime") or ""))


def search_extreme(jobs: Sequence[Job], run: Callable[[list[Job]], list[dict[str, Any]]],
                   verdict_config: VerdictConfig) -> SearchOutcome:
    """Run only the jobs the adaptive search needs.

    ``jobs`` is the full grid (upstream stages included); ``run(jobs)`` runs the given jobs
    (and whatever they depend on among ``jobs``) and returns the results rows of every finished
    transfer job of the grid so far.
    """
    upstream = [j for j in jobs if j.stage != "transfer"]
    transfers = [j for j in jobs if j.stage == "transfer"]
    dense: dict[tuple, list[Job]] = defaultdict(list)
    rungs: dict[LadderKey, dict[float, list[Job]]] = defaultdict(lambda: defaultdict(list))
    for job in transfers:
        setting = (job.labels["pretraining"], job.labels["dataset"],
                   float(job.labels["fraction"]))
        if job.labels["method"] == "dense":
            dense[setting].append(job)
        else:
            rungs[ladder_key(job.labels)][round(float(job.labels["sparsity"]), 6)].append(job)
    searches = {key: LadderSearch(key, tuple(sorted(by_sparsity)))
                for key, by_sparsity in rungs.items()}

    # Wave 0: every upstream stage and every dense baseline (needed by every verdict).
    needed: list[Job] = [*upstream, *(j for group in dense.values() for j in group)]
    done_ids: set[str] = set()
    rows = run(needed)
    done_ids.update(j.id for j in needed)
    while True:
        wave: list[tuple[LadderSearch, int]] = []
        for search in searches.values():
            rung = search.next_rung()
            if rung is not None:
                wave.append((search, rung))
        if not wave:
            break
        batch = [j for search, rung in wave
                 for j in rungs[search.key][search.sparsities[rung]] if j.id not in done_ids]
        rows = run(batch)
        done_ids.update(j.id for j in batch)
        outcome = {(v.key.group, v.key.sparsity): v.double_win
                   for v in verdicts(rows, verdict_config)}
        for search, rung in wave:
            search.record(rung, outcome.get((search.key, search.sparsities[rung])))
    spent = sum(1 for j in transfers if j.id in done_ids)
    return SearchOutcome(tuple(searches.values()), spent, len(transfers))
