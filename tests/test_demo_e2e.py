"""The quick demo end to end: results, report, resuming after kills, and the extreme search."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from doublewin.core.results import TIMING_COLUMNS
from doublewin.experiments.demo import demo_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _doublewin(*args: str) -> list[str]:
    return [sys.executable, "-m", "doublewin", *args]


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {row["job"]: {k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows}


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """One uninterrupted `doublewin demo --quick`, shared by the tests below."""
    out = tmp_path_factory.mktemp("quick") / "run"
    started = time.monotonic()
    done = subprocess.run(
        _doublewin("demo", "--quick", "--out", str(out), "--json"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out, time.monotonic() - started


def test_quick_demo_writes_results_and_a_report_within_90_seconds(quick_run) -> None:
    out, seconds = quick_run
    rows = _rows(out / "results.csv")
    methods = {row["method"] for row in rows.values()}
    assert methods == {"dense", "imp"}
    assert {row["pretraining"] for row in rows.values()} == {"STD", "FAT", "AT", "CONTROL"}
    # The no-pre-training control transfers densely only.
    assert {row["method"] for row in rows.values() if row["pretraining"] == "CONTROL"} == {"dense"}
    assert {row["regime"] for row in rows.values()} == {"st", "at"}
    for row in rows.values():
        for column in ("sa_best_sa", "ra_best_sa", "sa_best_ra", "ra_best_ra"):
            assert 0.0 <= float(row[column]) <= 100.0
    report = out / "report"
    assert (report / "report.md").is_file() and (report / "report.html").is_file()
    assert "http://" not in (report / "report.html").read_text()
    # Every pre-training's dense transfer against the control, and what follows from it.
    markdown = (report / "report.md").read_text()
    section = markdown.split("## Does pre-training help here?")[1].split("\n## ")[0]
    assert "the control (CONTROL)" in section
    for label in ("STD", "FAT", "AT"):
        assert f"| {label} |" in section
    if "No pre-training beats the control in any setting" in section:
        assert "**not testable**" in markdown
    assert seconds <= 90 * 1.5, f"quick demo took {seconds:.0f} s"  # slack for a busy CI box


def test_killed_and_restarted_quick_runs_give_the_same_results(quick_run, tmp_path) -> None:
    reference = _rows(quick_run[0] / "results.csv")
    out = tmp_path / "killed"
    # A smaller slice of the same grid (one seed, three rungs): identical specs, so every row
    # must equal the uninterrupted run's row of the same job.
    args = _doublewin(
        "demo",
        "--quick",
        "--out",
        str(out),
        "--json",
        "--set",
        "seeds=[0]",
        "--set",
        "tickets.transfer_rungs=[1,4,8]",
    )
    rng = random.Random(7)
    for _ in range(3):
        process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        time.sleep(rng.uniform(2.0, 12.0))
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # the whole group: workers die too
        process.wait()
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = _rows(out / "results.csv")
    assert resumed, "no rows after resuming"
    for job, row in resumed.items():
        assert job in reference
        assert row == reference[job]


@pytest.mark.parametrize(
    "tolerance",
    [
        [],
        ["verdict.rule=points", "verdict.points=5"],
        ["verdict.rule=points", "verdict.points=10"],
    ],
    ids=["paper", "5-points", "10-points"],
)
def test_search_extreme_matches_the_full_grid_with_at_most_half_the_transfers(
    quick_run, tolerance: list[str]
) -> None:
    """On the quick demo's own results, under its verdict (the paper rule: one dense standard
    deviation) and under looser tolerances that move the boundary up the ladder, the search finds every
    ladder's full-grid extreme with at most half the grid's transfer runs."""
    import json

    from doublewin.analysis.verdict import extreme_sparsities, verdicts
    from doublewin.experiments.experiment import load_experiment

    out = quick_run[0]
    rows = list(_rows(out / "results.csv").values())
    config = load_experiment(demo_config(quick=True), tolerance).verdict
    grid = {
        (e.pretraining, e.dataset, str(e.fraction), e.method, e.imp_regime): e.extreme
        for e in extreme_sparsities(verdicts(rows, config))
    }
    # Same store: the search reuses the finished transfers and reports what it needed.
    sets = [arg for pair in tolerance for arg in ("--set", pair)]
    done = subprocess.run(
        _doublewin(
            "run",
            str(demo_config(quick=True)),
            "--out",
            str(out),
            "--search",
            "extreme",
            "--json",
            *sets,
        ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)["search"]
    assert result["transfer_runs"] <= result["full_grid_transfer_runs"] / 2
    found = {tuple(key.split(" / ")): value for key, value in result["extreme"].items()}
    assert found == grid
    # Exact equality on monotone ladders of every shape: tests/test_search.py.
