"""Runs that survive faults: workers that die with their runner, clean interruption with
130 / 143, restarts that give the uninterrupted results, two runners on one folder, and the
entry lock's lease."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time

import pytest

from doublewin.core import paths
from runs import (
    SLICE,
    SLICE_PRETRAININGS,
    SLICE_TRANSFERS,
    computations,
    doublewin,
    finished_transfers,
    rows,
    seed_upstream,
    wait_until_gone,
)

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.slow]


def _slice_args(out) -> list[str]:
    return doublewin("demo", "--quick", "--out", str(out), "--json", *SLICE)


def test_killed_runners_leave_no_process_and_restarts_give_the_same_results(
    quick_run, tmp_path
) -> None:
    reference = rows(quick_run[0] / "results.csv")
    out = tmp_path / "killed"
    seed_upstream(quick_run[0], out)  # the kills land among the transfers
    rng = random.Random(11)
    kills = [signal.SIGKILL, signal.SIGTERM, signal.SIGINT]
    landed_mid_entry = 0  # kills that found a transfer entry started and not finished
    for sig in kills:
        process = subprocess.Popen(
            _slice_args(out),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: the run's processes, found later
        )
        # Kill once a worker is computing a transfer (an entry open without DONE), a random
        # moment later: the kill lands mid-entry (checked below), not in the workers' start-up.
        store = out / paths.STORE_DIR
        deadline = time.monotonic() + 120
        while process.poll() is None and not _unfinished_transfers(store):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.0))
        running = process.poll() is None
        if running:
            unfinished = _unfinished_transfers(out / paths.STORE_DIR)
            os.kill(process.pid, sig)
            # Still unfinished after the kill: the kill landed while it was being computed.
            landed_mid_entry += bool(
                unfinished & _unfinished_transfers(out / paths.STORE_DIR)
            )  # the runner alone: its workers must follow by themselves
        _, err = process.communicate(timeout=60)
        left = wait_until_gone(process.pid, 10.0)
        if left:
            os.killpg(process.pid, signal.SIGKILL)
        assert not left, f"{len(left)} process(es) of the run outlived {sig.name}"
        if not running:
            continue
        if sig is signal.SIGKILL:
            assert process.returncode == -signal.SIGKILL
            continue
        if process.returncode == 0 and not err.strip():
            # The slice's last jobs finished while the signal was on its way: the run ended
            # whole (its rows are checked below); nothing was interrupted.
            continue
        assert process.returncode == (130 if sig is signal.SIGINT else 143), err[-2000:]
        assert "run the same command to resume" in err
        # results.csv was rewritten from the store before the runner stopped (none while no
        # transfer has finished: never an empty table).
        done = finished_transfers(out / paths.STORE_DIR)
        table = out / paths.RESULTS
        if done:
            assert len(rows(table)) == len(done)
        else:
            assert not table.exists()
    assert landed_mid_entry, "no kill landed while a transfer was being computed"
    finished = subprocess.run(_slice_args(out), capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    resumed = rows(out / paths.RESULTS)
    # Every job of the slice, each equal to the uninterrupted run's row: nothing dropped.
    expected = {
        job
        for job, row in reference.items()
        if row["seed"] == "0"
        and row["rung"] in ("", "1")
        and row["pretraining"] in SLICE_PRETRAININGS
    }
    assert set(resumed) == expected and len(expected) == SLICE_TRANSFERS
    for job, row in resumed.items():
        assert row == reference[job], job


def _unfinished_transfers(store) -> set[str]:
    """Transfer entries that have started (a spec written) but have no DONE."""
    return {
        d.parent.name
        for d in store.glob(f"transfer-*/{paths.SPEC}")
        if not (d.parent / paths.DONE).exists()
    }


def test_an_interrupted_single_process_command_exits_130(tmp_path) -> None:
    args = doublewin(
        "pretrain", "--arch", "resnet8", "--data", "digits", "--regime", "at", "--epochs", "50",
        "--out", str(tmp_path / "w.safetensors"), "--device", "cpu",
    )  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(8)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err[-2000:]
    assert "interrupted" in err


def test_two_runners_on_one_folder_compute_every_entry_once(quick_run, tmp_path) -> None:
    reference = rows(quick_run[0] / "results.csv")
    out = tmp_path / "shared"
    seed_upstream(quick_run[0], out)  # the two runners race on the transfers
    runners = [
        subprocess.Popen(
            _slice_args(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    summaries = []
    for runner in runners:
        stdout, stderr = runner.communicate(timeout=600)
        assert runner.returncode == 0, stderr[-3000:]
        summaries.append(json.loads(stdout))
        assert summaries[-1]["failed"] == []
    counts = computations(out / paths.STORE_DIR)
    # Each runner's summary adds up to the plan, and together they computed each entry once.
    totals = {s["computed"] + s["reused"] for s in summaries}
    assert len(totals) == 1, summaries
    assert sum(s["computed"] for s in summaries) == SLICE_TRANSFERS, summaries
    assert counts and max(counts.values()) == 1, counts.most_common(3)
    transfers = [name for name in counts if name.startswith("transfer-")]
    assert len(transfers) == SLICE_TRANSFERS
    for job, row in rows(out / paths.RESULTS).items():
        assert row == reference[job], job


def test_a_lock_whose_holder_stopped_heartbeating_is_taken_over(tmp_path, monkeypatch) -> None:
    """A holder on another host that died with its lock stuck (its heartbeat stopped) loses the
    lock after the lease; a live holder's lock is never taken."""
    import fcntl

    from doublewin.experiments.store import locks

    folder = tmp_path / "entry"
    folder.mkdir()
    stuck = open(folder / paths.LOCK, "a+")  # noqa: SIM115  (a lock nobody will release)
    fcntl.flock(stuck.fileno(), fcntl.LOCK_EX)
    (folder / paths.LEASE).write_text(
        json.dumps({"host": "elsewhere", "pid": 1, "time": time.time() - 3600})
    )
    monkeypatch.setattr(locks, "POLL_SECONDS", 0.05)
    acquired = threading.Event()

    def take() -> None:
        with locks.entry_lock(folder, lease_seconds=60):
            acquired.set()

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    assert acquired.wait(10), "the stale lock was not taken over"
    thread.join(5)
    assert list(folder.glob(f"{paths.LOCK}.broken-*"))  # the dead holder's lock, moved aside

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    held = open(fresh / paths.LOCK, "a+")  # noqa: SIM115
    fcntl.flock(held.fileno(), fcntl.LOCK_EX)
    (fresh / paths.LEASE).write_text(
        json.dumps({"host": "elsewhere", "pid": 1, "time": time.time()})
    )
    waiting = threading.Event()

    def wait_for_it() -> None:
        with locks.entry_lock(fresh, lease_seconds=60):
            waiting.set()

    threading.Thread(target=wait_for_it, daemon=True).start()
    assert not waiting.wait(1.5), "a live holder's lock was taken"
    fcntl.flock(held.fileno(), fcntl.LOCK_UN)
    assert waiting.wait(10)
    stuck.close()
    held.close()


ON_DEMAND = """
name: on-demand
arch: resnet8
seeds: auto
pretrain:
  data: {name: chars, fraction: 0.02, val_size: 100, augment: none}
  train: {epochs: 1, batch_size: 64, lr: 0.1, schedule: cosine, val_ra: false}
  eval_attack: {steps: 1, step: 8/255}
  runs: {STD: {train: {regime: std}}}
tickets:
  methods: [imp]
  prune_rate: 0.5
  rounds: 2
  data: {name: chars, fraction: 0.01, val_size: 100, augment: none}
  train: {epochs: 1, batch_size: 64, lr: 0.01, schedule: constant, val_ra: false}
transfer:
  datasets: [digits]
  fractions: [0.5]
  data: {resolution: 8, test_limit: 64, val_size: 30, augment: none}
  regimes:
    st: {epochs: 1, batch_size: 32, lr: 0.1}
    at: {epochs: 1, batch_size: 32, lr: 0.1, attack: {steps: 1, step: 8/255}}
  eval_attack: {steps: 1, step: 8/255}
verdict: {rule: interval, seeds: {min: 2, max: 5, step: 1}}
"""


def test_seeds_on_demand_killed_mid_wave_resume_to_the_uninterrupted_rows(tmp_path) -> None:
    experiment = tmp_path / "on-demand.yaml"
    experiment.write_text(ON_DEMAND)
    reference = tmp_path / "reference"
    done = subprocess.run(
        doublewin("run", str(experiment), "--out", str(reference), "--json"),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    expected = rows(reference / paths.RESULTS)
    seeds = {int(r["seed"]) for r in expected.values()}
    # Later waves ran: seeds past the first look (2 seeds) were asked for.
    assert max(seeds) >= 2
    out = tmp_path / "killed"
    seed_upstream(reference, out)
    process = subprocess.Popen(
        doublewin("run", str(experiment), "--out", str(out)),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    # Kill once a later wave has started: a transfer of a seed past the first look computing.
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if _later_wave_started(out / paths.STORE_DIR):
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before a later wave started"
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    left = wait_until_gone(process.pid, 10.0)
    if left:
        os.killpg(process.pid, signal.SIGKILL)
    assert not left
    before = finished_transfers(out / paths.STORE_DIR)
    resumed = subprocess.run(
        doublewin("run", str(experiment), "--out", str(out), "--json"),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert rows(out / paths.RESULTS) == expected
    # Nothing finished before the kill was computed again.
    counts = computations(out / paths.STORE_DIR)
    assert all(counts[entry] == 1 for entry in before)


def _later_wave_started(store) -> bool:
    for spec_file in store.glob(f"transfer-*/{paths.SPEC}"):
        try:
            spec = json.loads(spec_file.read_text())["spec"]
        except (OSError, ValueError, KeyError):
            continue
        if spec.get("seed", 0) >= 2:
            return True
    return False
