"""The machine's own limits, and the bounds of the options that spend them.

``--threads``, ``--jobs`` and ``--workers-per-gpu`` ask for CPU threads and processes; asked
for more than the machine has, torch can crash outright (``torch.set_num_threads(100000)``
ends in a segfault) and a dry run's estimate assumes parallelism that is not there. Each is
checked here against the machine's CPU cores (`cpu_cores`, the one count the workers' default
thread split also uses) and the GPUs it sees, with those limits in the message.
"""

from __future__ import annotations

import os

from doublewin.core.errors import UserError


def cpu_cores() -> int:
    """The machine's CPU cores (``os.cpu_count``): what the default split of threads among
    workers divides, so a thread count, and with it every CPU number, stays what it was."""
    return max(1, os.cpu_count() or 1)


def gpu_count(device: str = "auto") -> int:
    """The CUDA devices a run on ``device`` would use (0 on ``cpu`` or without CUDA)."""
    if device == "cpu":
        return 0
    # deferred: torch, which most commands load only when they compute
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _machine() -> str:
    cores = cpu_cores()
    return f"this machine has {cores} CPU core{'s' if cores != 1 else ''}"


def check_threads(threads: int | None, *, workers: int = 1, option: str = "--threads") -> None:
    """``threads`` per worker, ``workers`` at once, fit the cores of this machine."""
    if threads is None:
        return
    cores = cpu_cores()
    if threads > cores:
        raise UserError(f"{option} {threads}: {_machine()}; use at most {option} {cores}")
    if workers > 1 and threads * workers > cores:
        raise UserError(
            f"{option} {threads} × {workers} jobs is {threads * workers} threads, but "
            f"{_machine()}; lower --jobs or {option} (at most {max(1, cores // workers)} "
            f"threads per job with {workers} jobs)"
        )


def fitting_jobs(default_jobs: int, threads: int | None) -> int:
    """The default number of jobs when ``--threads`` is given and ``--jobs`` is not: as many
    as the cores hold at that many threads each (at least one)."""
    if not threads:
        return default_jobs
    return max(1, min(default_jobs, cpu_cores() // threads))


def check_jobs(jobs: int, device: str = "auto", option: str = "--jobs") -> None:
    """``jobs`` worker processes on this machine: at most one per CPU core (each job needs a
    core to drive it, with a GPU or without)."""
    cores = cpu_cores()
    if jobs > cores:
        gpus = gpu_count(device)
        sees = f" and {gpus} GPU{'s' if gpus != 1 else ''}" if gpus else ""
        raise UserError(
            f"{option} {jobs}: {_machine()}{sees}, so at most {cores} jobs run at once here; "
            f"use {option} {cores} or fewer (or --executor ray / slurm for a cluster)"
        )


def check_workers_per_gpu(per_gpu: int | None, jobs: int | None, device: str = "auto") -> None:
    """``--workers-per-gpu`` applies when --jobs is not given and a GPU is there; with
    --jobs, or on a machine without a GPU, it would do nothing and is refused."""
    if per_gpu is None:
        return
    if jobs is not None:
        raise UserError(
            "--workers-per-gpu sets the number of jobs when --jobs is not given; with --jobs "
            f"{jobs} it would do nothing: pass one of them"
        )
    gpus = gpu_count(device)
    if not gpus:
        raise UserError(
            f"--workers-per-gpu {per_gpu}: no GPU is used here (device {device}), so it would "
            "do nothing; leave it out (--jobs sets the CPU workers)"
        )
    cores = cpu_cores()
    if gpus * per_gpu > cores:
        raise UserError(
            f"--workers-per-gpu {per_gpu} on {gpus} GPU(s) is {gpus * per_gpu} jobs, but "
            f"{_machine()}; use at most --workers-per-gpu {max(1, cores // gpus)}"
        )
