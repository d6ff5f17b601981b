"""Multi-process training with torch.distributed (``torchrun --nproc-per-node N -m doublewin``).

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; `init` reads them and
starts the process group (NCCL on CUDA, gloo on CPU). Every rank iterates the same global
batches in the same order (the loaders are seeded by (seed, epoch), not by rank) and trains on
its contiguous slice of each batch (`shard`), so the global batch size, the learning-rate
schedule and the sequence of updates are those of a single-process run; gradients are averaged
across ranks by DistributedDataParallel. On CUDA, BatchNorm is synchronised across ranks
(SyncBatchNorm) so its statistics are those of the global batch; gloo has no SyncBatchNorm, so
on CPU each rank normalises with its own slice — the usual data-parallel approximation.
Only rank 0 writes files (checkpoints, weights, tickets, logs, metrics).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from dataclasses import dataclass
from typing import NoReturn

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from doublewin.core.errors import UserError
from doublewin.core.numbers import Range, env_number

AT_LEAST_ONE = Range(1, None)
NON_NEGATIVE = Range(0, None)
# What torchrun sets besides WORLD_SIZE, which init_process_group reads.
TORCHRUN_VARIABLES = ("RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def launched() -> bool:
    """True when started by torchrun (or any launcher that sets WORLD_SIZE > 1)."""
    return env_number("WORLD_SIZE", 1, range=AT_LEAST_ONE, whole=True) > 1


def init(device: str | torch.device | None = None) -> World:
    """Join the process group torchrun prepared (no-op for a single process)."""
    if not launched():
        return World()
    if not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and (
            device is None or torch.device(device).type == "cuda"
        )
        missing = [v for v in TORCHRUN_VARIABLES if not os.environ.get(v)]
        if missing:
            raise UserError(
                f"$WORLD_SIZE is set but ${missing[0]} is not: start doublewin with torchrun "
                "(torchrun --nproc-per-node N -m doublewin ...), or unset WORLD_SIZE"
            )
        if use_cuda:
            torch.cuda.set_device(env_number("LOCAL_RANK", 0, range=NON_NEGATIVE, whole=True))
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return world()


def world() -> World:
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(
        dist.get_rank(),
        dist.get_world_size(),
        env_number("LOCAL_RANK", dist.get_rank(), range=NON_NEGATIVE, whole=True),
    )


def is_main() -> bool:
    return world().main


def local_device(requested: str | torch.device) -> torch.device:
    """The device this rank uses: its own GPU (LOCAL_RANK) when CUDA is asked for."""
    device = torch.device(requested)
    w = world()
    if w.distributed and device.type == "cuda":
        return torch.device("cuda", w.local_rank)
    return device


def shard(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """This rank's contiguous slice of each tensor along dim 0 (a global batch)."""
    w = world()
    if not w.distributed:
        return tensors
    n = tensors[0].shape[0]
    bounds = [n * r // w.size for r in range(w.size + 1)]
    start, stop = bounds[w.rank], bounds[w.rank + 1]
    return tuple(t[start:stop] for t in tensors)


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around ``model`` (SyncBatchNorm first on CUDA)."""
    w = world()
    if not w.distributed:
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model, device_ids=[device.index])
    return DistributedDataParallel(model)


def barrier() -> None:
    if world().distributed:
        dist.barrier()


def finish(code: int = 0, *, synchronize: bool = True) -> NoReturn:
    """Leave the process group (`shutdown`), flush, and end this rank's process with ``code``,
    without the interpreter's finalization.

    A rank launched by torchrun ends this way. Gloo's worker threads drop their last reference
    to a collective's work object after the collective has returned to Python; when that comes
    while the interpreter is finalizing, the work's destructor asks for the GIL, the finalizing
    interpreter ends the thread instead, and the unwind through a noexcept destructor aborts the
    rank ("terminate called without an active exception", SIGABRT after a finished run; a core
    dump shows ``AsyncBarrierWork::~AsyncBarrierWork`` in ``ProcessGroupGloo::runLoop``). Ending
    with ``os._exit`` once the group is left and every stream is flushed skips that
    finalization; nothing is lost, as every file doublewin writes is already renamed into place.
    """
    try:
        shutdown(synchronize=synchronize)
    finally:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def shutdown(*, synchronize: bool = True) -> None:
    """Leave the process group before the interpreter exits.

    Without this, gloo's C++ threads are torn down during interpreter finalization, which can
    abort a finished rank ("terminate called without an active exception"). With
    ``synchronize`` (a rank that finished its work), every rank first meets at a barrier, so
    none destroys its connections while a peer may still use them; a rank on its way out with
    an error skips it (a peer may be gone) and destroys its group at once."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    if synchronize and world().distributed:
        # A peer that left raises here: nothing to wait for; the launcher reports that rank.
        with contextlib.suppress(RuntimeError):
            dist.barrier()
    dist.destroy_process_group()
