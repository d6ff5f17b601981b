"""Disk a plan will use, for ``doublewin run --dry-run``: bytes per store entry, by stage.

Weights files are the model's tensors (4 bytes per float) plus a header; tickets are one bit
per prunable weight, deflated; every entry has its spec, metrics, log and markers. The sizes
are computed from the architecture and the spec, so a plan is sized with no data present. The
constants were measured on the quick demo's store (the estimate is checked against it in
tests/test_demo_e2e.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from doublewin.core.ticket_parts import NETWORK_METHODS
from doublewin.data import dataset_info
from doublewin.experiments.plan.grid import Job
from doublewin.models import build_model
from doublewin.stages.landscape import SHARPNESS_GRID
from doublewin.tickets.ladder import ticket_ladder
from doublewin.tickets.mask import prunable_parameters

ENTRY_BYTES = 2_600  # spec.json, metrics.json, log.jsonl, DONE
HEADER_BYTES = 2_000  # a safetensors header with doublewin's metadata
LOG_BYTES_PER_EPOCH = 300  # an epoch record and a few step records
# Deflated bit-packed masks: about this share of one bit per prunable weight.
TICKET_COMPRESSION = 0.75


@lru_cache(maxsize=32)
def tensor_bytes(arch: str, num_classes: int) -> tuple[int, int]:
    """(bytes of the full state dict, prunable weights) of ``arch`` with ``num_classes``."""
    model = build_model(arch, num_classes)
    total = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    prunable = sum(p.numel() for p in prunable_parameters(model).values())
    return total, prunable


def _classes(dataset: str) -> int:
    return dataset_info(dataset).num_classes


def job_bytes(job: Job, default_arch: str) -> int:
    """Bytes the finished entry of ``job`` keeps."""
    spec = job.spec
    if job.stage == "pretrain":
        weights, _ = tensor_bytes(spec.arch, _classes(spec.data.name))
        epochs = 0 if spec.kind == "control" else spec.train.epochs
        return ENTRY_BYTES + HEADER_BYTES + weights + LOG_BYTES_PER_EPOCH * epochs
    if job.stage == "tickets":
        _, prunable = tensor_bytes(default_arch, 10)
        rungs = len(ticket_ladder(spec))
        per_ticket = HEADER_BYTES + int(prunable / 8 * TICKET_COMPRESSION)
        copies = 2 if spec.method == "imp" else 1  # IMP also keeps its trunk's rungs
        epochs = spec.rounds * spec.train.epochs if spec.method == "imp" else 0
        if spec.method in NETWORK_METHODS:
            # Each rung's network beside its ticket, at most the supernet's size.
            weights, _ = tensor_bytes(default_arch, _classes(spec.data.name))
            per_ticket += HEADER_BYTES + weights
            epochs = spec.train.epochs * rungs
        return ENTRY_BYTES + copies * rungs * per_ticket + LOG_BYTES_PER_EPOCH * epochs
    if job.stage == "transfer":
        weights, _ = tensor_bytes(default_arch, _classes(spec.data.name))
        kept = {"none": 0, "best_sa": 1, "best_ra": 1, "both": 2}[spec.save_models]
        return (
            ENTRY_BYTES + kept * (HEADER_BYTES + weights) + LOG_BYTES_PER_EPOCH * spec.train.epochs
        )
    if job.stage == "landscape":
        floats = spec.grid**2 + spec.grid + SHARPNESS_GRID**2 + SHARPNESS_GRID + 3 * spec.snapshots
        return (
            ENTRY_BYTES
            + HEADER_BYTES
            + 8 * floats
            + LOG_BYTES_PER_EPOCH * (spec.transfer.train.epochs + 1)
        )
    return ENTRY_BYTES


def plan_bytes(jobs: Iterable[Job], default_arch: str) -> int:
    return sum(job_bytes(job, default_arch) for job in jobs)
