"""Measured speeds of the work a job does, on the machine and device that will run it.

A job's time is made of (see cost.py): the training engine's optimizer step for its regime
(`training_step`: the real training loop timed on random batches, its attack and bookkeeping
included); and, for evaluation, an input-gradient pass (what each attack step costs: forward
and backward to the input only), a no-grad forward (clean evaluation) and the floor of an attack
step (its pass on one image: what a step on the few examples an early-stopped attack leaves
costs), with the bare training step for the scoring passes of SNIP and GraSP (`rates`). Each is
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
from typing import Any

import torch
import torch.nn.functional as F

from doublewin.core import paths
from doublewin.core.atomic import atomic_write_json
from doublewin.core.specs import AttackSpec, TrainSpec
from doublewin.models import build_model
from doublewin.train.engine import train
from doublewin.train.precision import as_layout, channels_last_layout, default_channels_last

PROBE_SECONDS = 0.4  # per kind of work: each shape costs about a second and a half once
BUSY_PROBES: dict[str, dict[str, float]] = {}  # timed on a busy CPU: this process only


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
        # The memory layout the engine and evaluation run in is part of the key: entries timed
        # in another layout are probed again.
        layout = "/cl" if default_channels_last(torch.device(self.device)) else ""
        return (
            f"{self.arch}@{self.resolution}px/b{self.batch}/t{self.threads}/{self.device}{layout}"
        )


@dataclass(frozen=True)
class Rates:
    """Seconds per batch of each kind of work at one shape."""

    step: float  # a training step: forward, backward, optimizer update
    grad: float  # an input-gradient pass (one attack step)
    forward: float  # a no-grad forward
    floor: float  # an input-gradient pass on one image: a step's cost however few are left


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
    found = _cached(
        shape.key, set(Rates.__dataclass_fields__), shape.device, lambda: asdict(probe(shape))
    )
    return Rates(**found)


def training_step(shape: Shape, regime: str, attack_steps: int) -> float:
    """Seconds per optimizer step of the training engine itself at ``shape`` under ``regime``
    (``at``: with a PGD attack of ``attack_steps`` steps): the attack in training mode, the
    masking, the finiteness checks and the bookkeeping the bare passes of `rates` leave out.
    Cached like `rates`."""
    key = f"{shape.key}/train-{regime}{attack_steps if regime == 'at' else ''}"
    found = _cached(
        key,
        {"seconds"},
        shape.device,
        lambda: {"seconds": _probe_engine(shape, regime, attack_steps)},
    )
    return found["seconds"]


def _cached(
    key: str, fields: set[str], device: str, measure: Callable[[], dict[str, float]]
) -> dict[str, float]:
    """The entry ``key`` of this machine's cache, measured when absent (or of an older layout:
    other ``fields``). A measurement taken on a busy CPU is used by this process only."""
    cache = _cache()
    found = cache.get(machine(), {}).get(key)
    if found is not None and set(found) == fields:
        return found
    if key in BUSY_PROBES:
        return BUSY_PROBES[key]
    busy = device == "cpu" and _cpu_busy()
    measured = measure()
    if busy:  # timed beside other work: slower than the run will be; ask again next time
        BUSY_PROBES[key] = measured
        return measured
    cache.setdefault(machine(), {})[key] = measured
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

        def one() -> None:
            model.eval()
            delta = torch.zeros_like(x[:1], requires_grad=True)
            torch.autograd.grad(F.cross_entropy(model(x[:1] + delta), y[:1]), delta)

        scale = shape.batch / batch
        step_seconds = _timed(step, device) * scale  # the scoring passes: the model's own layout
        layout = default_channels_last(device)  # evaluation's layout, as `evaluate` runs it
        x = as_layout(x, layout)
        with channels_last_layout(model, layout):
            return Rates(
                step_seconds,
                _timed(grad, device) * scale,
                _timed(forward, device) * scale,
                _timed(one, device),
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


class _StepClock:
    """Engine callback: the time at the end of every optimizer step."""

    def __init__(self, device: torch.device):
        self.device, self.times = device, []

    def on_step_end(self, state: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.times.append(time.perf_counter())

    def on_epoch_end(self, state: Any) -> None:
        pass


def _probe_engine(shape: Shape, regime: str, attack_steps: int) -> float:
    """Seconds per step of `doublewin.train.engine.train` on random batches of ``shape``: the
    median interval between consecutive optimizer steps of one epoch (the first steps, which
    pay one-off costs, left out), scaled from the probe batch as `probe` does."""
    device = torch.device(shape.device)
    before = torch.get_num_threads()
    torch.set_num_threads(shape.threads)
    try:
        model = build_model(shape.arch, 10).to(device)
        batch = _probe_batch(model, shape, device)
        x = torch.rand(batch, 3, shape.resolution, shape.resolution, device=device)
        y = torch.randint(0, 10, (batch,), device=device)
        attack = AttackSpec(eps=8 / 255, step=2 / 255, steps=max(1, attack_steps))
        spec = TrainSpec(
            regime=regime, epochs=1, batch_size=batch, lr=1e-3, val_ra=False, attack=attack
        )
        clock = _StepClock(device)
        train(model, spec, [(x, y)] * 3, None, device=device, callbacks=(clock,))
        first = clock.times[-1] - clock.times[-2]
        steps = int(min(200, max(5, PROBE_SECONDS / max(first, 1e-4))))
        clock.times.clear()
        train(model, spec, [(x, y)] * (steps + 1), None, device=device, callbacks=(clock,))
        intervals = sorted(b - a for a, b in zip(clock.times[:-1], clock.times[1:], strict=True))
        return intervals[len(intervals) // 2] * shape.batch / batch
    finally:
        torch.set_num_threads(before)


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
