"""The run store: atomic writes, DONE markers, reuse of finished entries, redo of partial ones."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from doublewin.core.atomic import atomic_path, atomic_write_bytes
from doublewin.core.specs import DataSpec, TransferSpec
from doublewin.experiments.store.store import Store


def _spec(seed: int = 0) -> TransferSpec:
    return TransferSpec(weights="w" * 16, data=DataSpec(name="digits"), seed=seed)


def test_finished_entry_is_reused_and_never_recomputed(tmp_path):
    store = Store(tmp_path)
    calls = []

    def compute(entry):
        calls.append(1)
        (entry.path / "artifact.txt").write_text("result")
        return {"sa": 90.0}

    first = store.get_or_run("transfer", _spec(), compute)
    second = store.get_or_run("transfer", _spec(), compute)
    assert calls == [1]
    assert first.path == second.path and second.done
    assert second.metrics() == {"sa": 90.0}
    assert (first.path / "spec.json").is_file()
    assert first.path.name == f"transfer-{first.hash}"


def test_incomplete_entry_is_redone_from_scratch(tmp_path):
    store = Store(tmp_path)
    entry = store.entry("transfer", _spec())
    entry.open()
    (entry.path / "stale-partial.bin").write_bytes(b"x")
    assert not entry.done

    seen = []

    def compute(e):
        seen.append(sorted(p.name for p in e.path.iterdir()))
        return {}

    store.get_or_run("transfer", _spec(), compute)
    assert "stale-partial.bin" not in seen[0]
    assert store.entry("transfer", _spec()).done


def test_resumable_entry_keeps_partial_work(tmp_path):
    store = Store(tmp_path)
    entry = store.entry("transfer", _spec())
    entry.open()
    (entry.path / "checkpoint.pt").write_bytes(b"epoch 3")
    found = []
    store.get_or_run(
        "transfer",
        _spec(),
        lambda e: found.append((e.path / "checkpoint.pt").read_bytes()) or {},
        resumable=True,
    )
    assert found == [b"epoch 3"]


def test_failed_compute_leaves_no_done_marker(tmp_path):
    store = Store(tmp_path)

    def compute(entry):
        raise RuntimeError("loss is NaN")

    with pytest.raises(RuntimeError):
        store.get_or_run("transfer", _spec(), compute)
    assert not store.entry("transfer", _spec()).done


def _slow_writer(path: str) -> None:
    store = Store(path)

    def compute(entry):
        with atomic_path(entry.path / "weights.bin") as tmp, open(tmp, "wb") as handle:
            for _ in range(10_000):
                handle.write(os.urandom(1024))
                handle.flush()
                time.sleep(0.001)
        return {}

    store.get_or_run("transfer", _spec(), compute)


def test_killed_writer_leaves_no_entry_that_looks_complete(tmp_path):
    process = multiprocessing.get_context("fork").Process(
        target=_slow_writer, args=(str(tmp_path),)
    )
    process.start()
    entry = Store(tmp_path).entry("transfer", _spec())
    deadline = time.time() + 20
    while time.time() < deadline and not any(entry.path.glob(".weights.bin.*")):
        time.sleep(0.01)
    assert any(entry.path.glob(".weights.bin.*")), "writer never started"
    os.kill(process.pid, signal.SIGKILL)
    process.join()
    assert not entry.done
    assert not (entry.path / "weights.bin").exists()
    assert not (entry.path / "metrics.json").exists()


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "file.bin"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]


def test_entries_lists_every_stage_directory(tmp_path):
    store = Store(tmp_path)
    store.get_or_run("transfer", _spec(0), lambda e: {})
    store.get_or_run("transfer", _spec(1), lambda e: {})
    listed = store.entries("transfer")
    assert len(listed) == 2
    assert all(isinstance(e.path, Path) and e.spec["seed"] in (0, 1) for e in listed)


def test_a_finished_entry_made_under_an_old_default_is_refused_not_reused(tmp_path):
    """The hash omits default values, so a spec relying on a default that has since changed
    hashes like the old one: the store compares the recorded spec and names the key."""
    import json

    import pytest

    from doublewin.core import paths
    from doublewin.core.errors import UserError
    from doublewin.core.specs import TicketSpec
    from doublewin.experiments.store.store import Store

    store = Store(tmp_path)
    spec = TicketSpec(weights="w", method="gem-miner")
    entry = store.entry("tickets", spec)
    entry.open()
    entry.finish({})
    recorded = json.loads((entry.path / paths.SPEC).read_text())
    del recorded["spec"]["gem_miner"]["final"]  # a field added since: not a change
    (entry.path / paths.SPEC).write_text(json.dumps(recorded))
    assert store.entry("tickets", spec).done
    recorded["spec"]["gem_miner"]["lr"] = 0.1  # the default when the entry was made
    (entry.path / paths.SPEC).write_text(json.dumps(recorded))
    with pytest.raises(UserError, match=r"gem_miner\.lr = 0\.1, whose default is now 5\.0"):
        store.entry("tickets", spec)
