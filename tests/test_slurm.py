"""`--executor slurm` against a real single-node Slurm (munged, slurmctld and slurmd started
as root by the fixture; tests/slurm_cluster.py). Skips, saying why, only where those daemons
cannot start. The dense part of the quick demo runs as Slurm job arrays through submitit and
gives the local executor's results; the driver, killed and started again, picks up what the
cluster finished."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

import slurm_cluster
from doublewin.core import paths
from runs import computations, doublewin, finished_transfers, rows, seed_upstream

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.slow]
pytest.importorskip(
    "submitit", reason="the slurm extra is not installed (pip install doublewin[slurm])"
)

# The quick demo's dense transfers of STD and the control only (one seed): 4 transfers, each
# a Slurm job of its own (same specs, so each row equals the full quick demo's row).
DENSE_SLICE = (
    "--set", "seeds=[0]", "--set", "tickets.methods=[]",
    "--set", "pretrain.runs={STD: {train: {regime: std}}, CONTROL: {kind: control}}",
)  # fmt: skip
SLICE_RUNS = 4


@pytest.fixture(scope="module")
def slurm_env(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("slurm")
    try:
        env, pids = slurm_cluster.start(root)
    except slurm_cluster.Unavailable as exc:
        pytest.skip(f"no Slurm test cluster: {exc}")
    yield env
    slurm_cluster.stop(pids)


def test_the_quick_demo_on_slurm_matches_the_local_run_and_survives_its_driver(
    quick_run, slurm_env, tmp_path
) -> None:
    from doublewin.experiments.run.demo import demo_config

    reference = rows(quick_run[0] / paths.RESULTS)
    out = tmp_path / "slurm"
    args = doublewin(
        "run", str(demo_config(quick=True)), "--out", str(out), "--json",
        "--executor", "slurm", "--partition", "debug", "--time", "10", *DENSE_SLICE,
    )  # fmt: skip
    store = out / paths.STORE_DIR
    seed_upstream(quick_run[0], out)  # the cluster runs the transfers
    first = subprocess.Popen(
        args, env=slurm_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 240
    while len(finished_transfers(store)) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    first.kill()  # the driver goes; the jobs it submitted keep running on the cluster
    first.wait()
    done_before = {d.parent.name for d in store.glob(f"*-*/{paths.DONE}")}
    assert done_before
    again = subprocess.run(args, env=slurm_env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads(again.stdout)
    assert summary["failed"] == [] and summary["transfer_runs"] == SLICE_RUNS
    counts = computations(store)
    assert all(counts[entry] == 1 for entry in done_before)  # finished work was not redone
    assert list((out / paths.SLURM_DIR).glob("*/*_submitted.pkl"))  # it went through Slurm
    result = rows(out / paths.RESULTS)
    assert len(result) == SLICE_RUNS
    for job, row in result.items():
        assert row == reference[job], job
