"""Measured speeds of the work a job does, on the machine and device that will run it.

A job's time is made of three kinds of batch work (see cost.py): a training step (forward,
backward and the optimizer update of one batch), an input-gradient pass (what each attack step
costs: forward and backward to the input only) and a no-grad forward (clean evaluation). Each is
timed once per job shape (architecture, resolution, batch size, CPU threads, device) in a short
probe, and kept in ``$DOUBLEWIN_CACHE/rates.json`` under this machine's name, so a later dry run
on the same machine asks again for nothing.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from doublewin.core import paths
from doublewin.core.atomic import atomic_write_json
from doublewin.models import build_model

PROBE_SECONDS = 0.4  # per kind of work: each shape costs about a second and a half once
BUSY_PROBES: dict[str, Rates] = {}  # timed while other work loaded the CPU: this process only


@dataclass(frozen=True)
class Shape:
    """What a batch's time depends on."""

    arch: str
    resolution: int
    batch: int
    threads: int
    device: str

    @property
    def key(self) -> str:
        return f"{self.arch}@{self.resolution}px/b{self.batch}/t{self.threads}/{self.device}"


@dataclass(frozen=True)
class Rates:
    """Seconds per batch of each kind of work at one shape."""

    step: float  # a training step: forward, backward, optimizer update
    grad: float  # an input-gradient pass (one attack step)
    forward: float  # a no-grad forward


def machine() -> str:
    """This machine, as the rates' cache knows it: CPU, torch and the GPU if any."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.node()} | {cpu_model()} | torch {torch.__version__} | {gpu}"


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what the platform says."""
    try:
        with open("/proc/cpuinfo") as handle:
            names = [
                line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")
            ]
    except OSError:
        names = []
    return names[0] if names else (platform.processor() or platform.machine())


def rates(shape: Shape) -> Rates:
    """The rates of ``shape``: from the cache when this machine measured them, else probed."""
    cache = _cache()
    found = cache.get(machine(), {}).get(shape.key)
    if found is not None:
        return Rates(**found)
    if shape.key in BUSY_PROBES:
        return BUSY_PROBES[shape.key]
    busy = shape.device == "cpu" and _cpu_busy()
    measured = probe(shape)
    if busy:  # timed beside other work: slower than the run will be; ask again next time
        BUSY_PROBES[shape.key] = measured
        return measured
    cache.setdefault(machine(), {})[shape.key] = asdict(measured)
    with contextlib.suppress(OSError):  # a read-only cache only costs probing again later
        atomic_write_json(paths.rates_cache(), cache)
    return measured


def _cpu_busy() -> bool:
    """Whether other processes keep this machine's cores busy (1-minute load average)."""
    try:
        return os.getloadavg()[0] > (os.cpu_count() or 1) - 0.5
    except OSError:
        return False


@functools.cache
def _cache() -> dict[str, dict[str, dict[str, float]]]:
    try:
        data = json.loads(paths.rates_cache().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def probe(shape: Shape) -> Rates:
    """Time each kind of work on a random batch of ``shape`` (after a warm-up). A shape whose
    batch would take long (a ResNet-50 at 224 px on a CPU) is timed on a smaller batch and
    scaled by the batch ratio: per image, a large model's time does not depend on the batch."""
    device = torch.device(shape.device)
    before = torch.get_num_threads()
    torch.set_num_threads(shape.threads)
    try:
        model = build_model(shape.arch, 10).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        batch = _probe_batch(model, shape, device)
        x = torch.rand(batch, 3, shape.resolution, shape.resolution, device=device)
        y = torch.randint(0, 10, (batch,), device=device)

        def step() -> None:
            model.train()
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()

        def grad() -> None:
            model.eval()
            delta = torch.zeros_like(x, requires_grad=True)
            torch.autograd.grad(F.cross_entropy(model(x + delta), y), delta)

        def forward() -> None:
            model.eval()
            with torch.no_grad():
                model(x)

        scale = shape.batch / batch
        return Rates(
            _timed(step, device) * scale,
            _timed(grad, device) * scale,
            _timed(forward, device) * scale,
        )
    finally:
        torch.set_num_threads(before)


def _probe_batch(model: torch.nn.Module, shape: Shape, device: torch.device) -> int:
    """The batch to time: the shape's own, or the largest power of two whose training step
    (about three forwards) stays within PROBE_SECONDS (a ResNet-50 at 224 px on a CPU).
    Found by doubling from one image: one image's time is mostly fixed per-batch cost, and
    scaled up by the batch it overestimates a small model several times."""
    model.eval()
    batch = 1
    while True:
        x = torch.rand(batch, 3, shape.resolution, shape.resolution, device=device)
        with torch.no_grad():
            model(x)
            times = []
            for _ in range(3):  # the fastest of a few: one timing can land on a busy moment
                begin = time.perf_counter()
                model(x)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                times.append(time.perf_counter() - begin)
        if 3 * min(times) > PROBE_SECONDS:
            return max(2, batch // 2)
        if batch >= shape.batch:
            return shape.batch
        batch = min(shape.batch, 2 * batch)


def _timed(work: Callable[[], None], device: torch.device) -> float:
    """Seconds per call of ``work``: the median of calls in about PROBE_SECONDS."""
    for _ in range(2):
        work()
    times = []
    started = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - started < PROBE_SECONDS and len(times) < 200):
        begin = time.perf_counter()
        work()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - begin)
    return sorted(times)[len(times) // 2]
