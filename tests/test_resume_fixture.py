"""A run folder made by an earlier version resumes with every finished job reused.

tests/fixtures/resume holds the store of a small experiment (two pre-trainings, IMP and random
tickets on a two-rung ladder, ST and AT transfer) as doublewin wrote it, minus its weights and
ticket files: every entry's spec.json, metrics.json, log and DONE. Store entries are named by
the content hash of their spec, so the same experiment planned again must name the same entries:
if a change to the specs, their defaults or the grid moved a hash, this run would recompute."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from runs import doublewin

FIXTURE = Path(__file__).parent / "fixtures" / "resume"


def _copy(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(FIXTURE / "store", run / "store")
    return run


def test_the_plan_of_an_earlier_store_has_nothing_left_to_run(tmp_path: Path) -> None:
    run = _copy(tmp_path)
    done = subprocess.run(
        doublewin(
            "run", str(FIXTURE / "experiment.yaml"), "--out", str(run), "--dry-run", "--json"
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    stages = json.loads(done.stdout)["stages"]
    assert {s: c["to_run"] for s, c in stages.items()} == {s: 0 for s in stages}
    assert sum(c["done"] for c in stages.values()) == 16


def test_running_an_earlier_store_again_reuses_every_finished_job(tmp_path: Path) -> None:
    run = _copy(tmp_path)
    done = subprocess.run(
        doublewin("run", str(FIXTURE / "experiment.yaml"), "--out", str(run), "--jobs", "1"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "0 jobs computed, 16 reused" in done.stdout
    assert len((run / "results.csv").read_text().splitlines()) == 1 + 12  # 12 transfers
