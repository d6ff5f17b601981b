"""Where the runner's jobs run: a process pool on this host, Ray tasks, or Slurm jobs.

Every executor hands back ``concurrent.futures.Future`` objects, so the runner's dependency
order, failure handling, progress and ``results.csv`` refreshes are the same code for all of
them (scheduler.py). The store is the only state the jobs share: each job is one content-addressed,
lock-protected entry, so the nodes of a cluster need nothing but a filesystem they all see.

- ``local``: a ``spawn`` process pool; each worker dies with the runner (core/processes.py).
- ``ray``: one Ray task per job with its resources declared (``threads`` CPUs; one GPU for a
  GPU job); ``address`` joins a running cluster, none starts Ray on this machine. Ray retries a
  task whose worker process dies.
- ``slurm``: one Slurm job per runner job through submitit, submitted as job arrays (one array
  per wave of ready jobs) with the partition, time limit and GPUs given.
"""

from __future__ import annotations

import abc
import concurrent.futures as futures
import contextlib
import importlib.util
import io
import logging
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from doublewin.core.errors import RunFailure, UserError
from doublewin.core.processes import die_with_parent

ExecutorKind = Literal["local", "ray", "slurm"]
EXECUTORS = ("local", "ray", "slurm")
# How often the Slurm pool asks submitit whether its jobs finished.
SLURM_POLL_SECONDS = 2.0
# What of sbatch's own words goes into the one line of a refusal.
SAID_LIMIT = 300


# The package each executor beyond this machine needs, and the extra that installs it.
EXECUTOR_PACKAGES = {"ray": ("ray", "Ray"), "slurm": ("submitit", "submitit")}


def require_executor(kind: str) -> None:
    """One UserError when the package of executor ``kind`` is not installed: checked before
    the run writes or computes anything."""
    if kind not in EXECUTOR_PACKAGES:
        return
    module, name = EXECUTOR_PACKAGES[kind]
    if importlib.util.find_spec(module) is None:
        raise UserError(
            f"--executor {kind} needs {name}; install it with `pip install 'doublewin[{kind}]'`"
        )


@dataclass(frozen=True)
class ExecutorOptions:
    """``address``: a Ray cluster (``ray://host:10001`` or ``host:6379``); None starts Ray
    locally. ``partition``, ``time_minutes``, ``gpus``: the Slurm job's partition, time limit
    and GPUs per job; ``folder``: where submitit keeps the jobs' pickles and logs."""

    kind: ExecutorKind = "local"
    address: str | None = None
    partition: str | None = None
    time_minutes: int = 60
    gpus: int = 0
    folder: Path | None = None


class Pool(abc.ABC):
    """Runs ``fn(*args)`` somewhere and returns a Future. ``flush`` sends what ``submit``
    queued (Slurm arrays); ``stop`` ends every running job now (an interrupt)."""

    @abc.abstractmethod
    def submit(self, fn: Callable[..., Any], *args: Any, gpu: bool = False) -> futures.Future:
        """Start (or queue) ``fn(*args)``; ``gpu``: the job wants a GPU."""

    def flush(self) -> None:  # noqa: B027 (a hook: only the Slurm pool queues)
        """Send queued jobs; the pools that start jobs at ``submit`` queue nothing."""

    @abc.abstractmethod
    def stop(self) -> None:
        """End every running job now."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the pool once every job finished."""

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.stop()


def _init_worker(threads: int, parent: int) -> None:
    die_with_parent(parent)
    # Ctrl-C reaches the whole process group; the runner stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # deferred: torch loads in a worker after the guards are armed
    import torch

    torch.set_num_threads(max(1, threads))


class LocalPool(Pool):
    def __init__(self, workers: int, threads: int):
        ctx = multiprocessing.get_context("spawn")  # CUDA and threads do not survive fork
        self.executor = futures.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(threads, os.getpid()),
        )

    def submit(self, fn, *args, gpu=False):
        return self.executor.submit(fn, *args)

    def stop(self) -> None:
        processes = list(getattr(self.executor, "_processes", {}).values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.kill()
        for process in processes:
            process.join(timeout=5)

    def close(self) -> None:
        self.executor.shutdown(wait=True)


class RayPool(Pool):
    def __init__(self, options: ExecutorOptions, threads: int):
        require_executor("ray")
        # deferred: Ray is an optional extra and takes seconds to import
        import ray

        self.ray = ray
        if not ray.is_initialized():
            ray.init(
                address=options.address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                # The tasks' OpenMP threads sleep when idle, as the local workers' do.
                runtime_env={
                    "env_vars": {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
                },
            )
        self.threads = threads
        self.gpus = ray.cluster_resources().get("GPU", 0) > 0
        self.remote = ray.remote(max_retries=3)(_call)
        self.refs: list[Any] = []

    def submit(self, fn, *args, gpu=False):
        ref = self.remote.options(
            num_cpus=self.threads, num_gpus=1 if (gpu and self.gpus) else 0
        ).remote(fn, *args)
        self.refs.append(ref)
        return ref.future()

    def stop(self) -> None:
        for ref in self.refs:
            self.ray.cancel(ref, force=True)

    def close(self) -> None:
        self.refs.clear()


class SlurmPool(Pool):
    def __init__(self, options: ExecutorOptions, threads: int):
        require_executor("slurm")
        # deferred: submitit is an optional extra
        import submitit

        if options.folder is None:
            raise UserError("--executor slurm needs a folder for its job files")
        # submitit logs every status poll to stdout; only its errors belong in our output.
        logging.getLogger("submitit").setLevel(logging.ERROR)
        try:
            self.executor = submitit.AutoExecutor(
                folder=str(options.folder / "%j"), cluster="slurm"
            )
        except RuntimeError as exc:  # submitit finds no srun: not a Slurm machine
            raise UserError(
                f"--executor slurm: this machine has no Slurm ({str(exc).splitlines()[0]}); run "
                "from a cluster's login node, or use --executor local"
            ) from None
        parameters: dict[str, Any] = {
            "timeout_min": options.time_minutes,
            "cpus_per_task": threads,
            "slurm_job_name": "doublewin",
        }
        if options.partition:
            parameters["slurm_partition"] = options.partition
        self.gpus = options.gpus
        self.executor.update_parameters(**parameters)
        self.queued: list[tuple[futures.Future, Callable, tuple, bool]] = []
        self.jobs: list[tuple[Any, futures.Future]] = []
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.poller = threading.Thread(target=self._poll, name="slurm-poller", daemon=True)
        self.poller.start()

    def submit(self, fn, *args, gpu=False):
        future: futures.Future = futures.Future()
        self.queued.append((future, fn, args, gpu))
        return future

    def flush(self) -> None:
        if not self.queued:
            return
        for gpu in (False, True):
            batch = [q for q in self.queued if q[3] == gpu]
            if not batch:
                continue
            self.executor.update_parameters(gpus_per_node=self.gpus if gpu else 0)
            said: list[str] = []
            try:
                # sbatch writes its refusal to the terminal itself: it goes into the one line.
                with _stderr_into(said), self.executor.batch():  # one array per wave and kind
                    submitted = [
                        (self.executor.submit(fn, *args), future) for future, fn, args, _ in batch
                    ]
            except Exception as exc:  # sbatch refused or no controller answered
                reason = _words(" ".join(("".join(said) or str(exc)).split()), SAID_LIMIT)
                reason = reason or type(exc).__name__
                raise RunFailure(
                    f"Slurm did not take the jobs ({reason}); check the cluster with sinfo, or "
                    "run with --executor local (finished work is kept)"
                ) from None
            with self.lock:
                self.jobs += submitted
        self.queued.clear()

    def _poll(self) -> None:
        while not self.closing.is_set():
            with self.lock:
                pending = [(job, future) for job, future in self.jobs if not future.done()]
            for job, future in pending:
                if job.done():
                    try:
                        future.set_result(job.result())
                    except Exception as exc:  # the job's own error, or Slurm's
                        future.set_exception(exc)
            time.sleep(SLURM_POLL_SECONDS)

    def stop(self) -> None:
        with self.lock:
            for job, future in self.jobs:
                if not future.done():
                    job.cancel(check=False)
        self.closing.set()

    def close(self) -> None:
        self.closing.set()


@contextlib.contextmanager
def _stderr_into(said: list[str]) -> Iterator[None]:
    """Collect what is written to stderr, by subprocesses (file descriptor 2) or by Python
    code (``sys.stderr``), into ``said``; on success it is written back, so nothing is lost."""
    sys.stderr.flush()
    saved = os.dup(2)
    python = io.StringIO()
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        ok = False
        try:
            with contextlib.redirect_stderr(python):
                yield
            ok = True
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode(errors="replace") + python.getvalue()
            if ok and text:
                sys.stderr.write(text)
            said.append(text)


def _words(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, marked with …."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return f"{cut} …"


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def make_pool(options: ExecutorOptions, workers: int, threads: int) -> Pool:
    """The pool of ``options.kind``; ``threads`` CPU threads per job."""
    if options.kind == "local":
        return LocalPool(workers, threads)
    if options.kind == "ray":
        return RayPool(options, threads)
    if options.kind == "slurm":
        return SlurmPool(options, threads)
    raise UserError(f"--executor {options.kind!r}: use local, ray or slurm")
