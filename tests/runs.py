"""Helpers for the tests that run doublewin as a subprocess: the command line, results.csv
without its timing columns, the processes of a run, and the store's record of who computed
each entry."""

from __future__ import annotations

import csv
import json
import sys
import time
from collections import Counter
from pathlib import Path

from doublewin.core import paths
from doublewin.core.results import TIMING_COLUMNS

# A slice of the quick demo (one seed, the first rung): the same specs, so each of its rows must
# equal the full quick demo's row of the same job.
SLICE_PRETRAININGS = ("STD", "CONTROL")
SLICE = (
    "--set", "seeds=[0]", "--set", "tickets.transfer_rungs=[1]",
    "--set", "pretrain.runs={STD: {train: {regime: std}}, CONTROL: {kind: control}}",
)  # fmt: skip
SLICE_TRANSFERS = 6  # STD's and the control's dense models and STD's first IMP rung, ST and AT


def doublewin(*args: str) -> list[str]:
    return [sys.executable, "-m", "doublewin", *args]


def rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        table = list(csv.DictReader(handle))
    return {row["job"]: {k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in table}


def group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (zombies excluded)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def wait_until_gone(pgid: int, seconds: float = 10.0) -> list[int]:
    """Poll for up to ``seconds`` until group ``pgid`` is empty; returns what is left."""
    deadline = time.monotonic() + seconds
    while (left := group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def computations(store: Path) -> Counter:
    """Entry name → how many times a stage started computing it (from each entry's log)."""
    out: Counter = Counter()
    for log in store.glob(f"*-*/{paths.LOG}"):
        for line in log.read_text().splitlines():
            if line.strip() and json.loads(line).get("event") == "stage-start":
                out[log.parent.name] += 1
    return out


def finished_transfers(store: Path) -> set[str]:
    return {d.parent.name for d in store.glob(f"transfer-*/{paths.DONE}")}


def seed_upstream(reference: Path, out: Path) -> int:
    """Copy the finished pre-training and ticket entries (and IMP trunks) of the reference
    run's store into ``out``'s store: content-addressed, so the run under test reuses them and
    spends its time on the transfers it is about. Returns the entries copied."""
    import shutil

    source, target = reference / paths.STORE_DIR, out / paths.STORE_DIR
    target.mkdir(parents=True, exist_ok=True)
    copied = 0
    for entry in [*source.glob("pretrain-*"), *source.glob("tickets-*")]:
        shutil.copytree(entry, target / entry.name, ignore=shutil.ignore_patterns(".lock*"))
        copied += 1
    trunks = source / paths.IMP_TRUNKS_DIR
    if trunks.is_dir():
        shutil.copytree(trunks, target / paths.IMP_TRUNKS_DIR)
    return copied
