"""`--executor ray` on a real local Ray cluster: a head and one more worker node, started with
`ray start` on 127.0.0.1 by the fixture and stopped after. The quick demo's slice gives the
local executor's results; a killed Ray worker's job is retried; a killed driver, started
again, continues without redoing finished entries."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from doublewin.core import paths
from runs import (
    SLICE,
    SLICE_TRANSFERS,
    computations,
    doublewin,
    finished_transfers,
    rows,
    seed_upstream,
)

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.slow]
pytest.importorskip("ray", reason="the ray extra is not installed (pip install doublewin[ray])")

RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_address(tmp_path_factory: pytest.TempPathFactory):
    if not shutil.which(RAY):
        pytest.skip("the ray command is not installed next to this Python")
    port = _free_port()
    temp = tmp_path_factory.mktemp("ray")
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    env = {**os.environ, "RAY_TMPDIR": str(temp)}
    head = [RAY, "start", "--head", f"--port={port}", "--include-dashboard=false", *common]
    try:
        subprocess.run(head, check=True, capture_output=True, timeout=120, env=env)
        subprocess.run(
            [RAY, "start", f"--address=127.0.0.1:{port}", *common],
            check=True,
            capture_output=True,
            timeout=120,
            env=env,
        )
    except subprocess.CalledProcessError as exc:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=60)
        pytest.skip(f"a local Ray cluster could not start: {exc.stderr[-500:]}")
    yield f"127.0.0.1:{port}"
    subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120, env=env)


def _args(out: Path, address: str) -> list[str]:
    from doublewin.experiments.run.demo import demo_config

    return doublewin(
        "run", str(demo_config(quick=True)), "--out", str(out), "--json",
        "--executor", "ray", "--address", address, *SLICE,
    )  # fmt: skip


def _ray_task_pids() -> list[int]:
    """Ray worker processes running one of our tasks (their title is ``ray::_call``)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().startswith(b"ray::_call"):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def test_the_quick_demo_on_ray_survives_a_dead_worker_and_a_dead_driver(
    quick_run, ray_address, tmp_path
) -> None:
    """One run on the cluster: a Ray worker is killed mid-job (Ray retries the task), then
    the driver is killed; started again, the driver redoes no finished entry, and the results
    equal the local executor's."""
    reference = rows(quick_run[0] / paths.RESULTS)
    out = tmp_path / "ray"
    store = out / paths.STORE_DIR
    seed_upstream(quick_run[0], out)  # the cluster runs the transfers
    args = _args(out, ray_address)
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    killed_worker = False
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        done = len(finished_transfers(store))
        if not killed_worker and done >= 2 and (pids := _ray_task_pids()):
            os.kill(pids[0], signal.SIGKILL)  # a worker dies mid-job
            killed_worker = True
        if killed_worker and done >= 6:
            break
        time.sleep(0.2)
    assert killed_worker, "no Ray task was running to kill"
    process.kill()  # the driver dies by SIGKILL
    process.wait()
    done_before = {d.parent.name for d in store.glob(f"*-*/{paths.DONE}")}
    counts_before = computations(store)
    assert done_before, "nothing finished before the driver was killed"
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    counts_after = computations(store)
    for entry in done_before:  # finished entries were not computed again
        assert counts_after[entry] == counts_before[entry], entry
    result = rows(out / paths.RESULTS)
    assert len(result) == SLICE_TRANSFERS
    for job, row in result.items():
        assert row == reference[job], job
