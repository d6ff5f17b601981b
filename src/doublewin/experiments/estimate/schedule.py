"""How long a plan takes on N workers: the scheduler's order, simulated.

The scheduler starts every job whose dependencies are finished, costliest first, on the first
free worker (run/scheduler.py). Given each job's estimated seconds, the same rule played forward
gives the wall time: the pre-trainings and IMP ladders that everything waits for, then the
transfers spread over the workers. A run with seeds on demand goes in waves
(adaptive/on_demand.py): each wave is scheduled after the one before has finished.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

from doublewin.experiments.plan.grid import Job


def makespan(jobs: Sequence[Job], seconds: Mapping[str, float], workers: int) -> float:
    """Wall seconds of ``jobs`` on ``workers`` workers, costliest ready job first; a
    dependency outside ``jobs`` counts as finished."""
    ids = {job.id for job in jobs}
    waiting = {job.id: {d for d in job.deps if d in ids} for job in jobs}
    children: dict[str, list[str]] = {}
    for job in jobs:
        for dep in waiting[job.id]:
            children.setdefault(dep, []).append(job.id)
    ready = [(-seconds[j.id], j.id) for j in jobs if not waiting[j.id]]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []  # (finish time, job id)
    clock = 0.0
    while ready or running:
        while ready and len(running) < max(1, workers):
            cost, job_id = heapq.heappop(ready)
            heapq.heappush(running, (clock - cost, job_id))
        clock, done = heapq.heappop(running)
        for child in children.get(done, ()):
            waiting[child].discard(done)
            if not waiting[child]:
                heapq.heappush(ready, (-seconds[child], child))
    return clock


def waves_makespan(
    waves: Sequence[Sequence[Job]], seconds: Mapping[str, float], workers: int
) -> float:
    """Wall seconds of waves run one after another (each waits for the one before)."""
    return sum(makespan(wave, seconds, workers) for wave in waves if wave)
