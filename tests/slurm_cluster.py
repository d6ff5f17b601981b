"""A real single-node Slurm for the tests: munged, slurmctld and slurmd from the machine's
packages (Debian: `apt-get install slurm-wlm munge`), started as root with a minimal
slurm.conf in a temporary folder, listening on 127.0.0.1 only, and stopped afterwards.

``start`` returns the environment the Slurm commands need (``SLURM_CONF``), or raises
``Unavailable`` saying why the daemons cannot start here."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class Unavailable(RuntimeError):
    """Slurm cannot run on this machine (not installed, not root, a daemon did not start)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONF = """\
ClusterName=doublewin-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerParameters=sched_interval=1
MessageTimeout=30
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def start(root: Path) -> tuple[dict[str, str], list[int]]:
    """Start munged, slurmctld and slurmd under ``root``; returns (env, pids to stop)."""
    missing = [d for d in ("munged", "slurmctld", "slurmd", "sbatch") if not shutil.which(d)]
    if missing:
        raise Unavailable(f"{', '.join(missing)} not installed (apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        raise Unavailable("the Slurm daemons of the test cluster need root")
    key = Path("/etc/munge/munge.key")
    if not key.is_file():
        raise Unavailable("no /etc/munge/munge.key (the munge package creates it)")
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("state", "spool"):
        (root / sub).mkdir(exist_ok=True)
    # munged runs as the munge user, who cannot enter the tests' private temporary folders.
    munge_dir = Path(tempfile.mkdtemp(prefix="doublewin-munge-"))
    munge_dir.chmod(0o755)
    shutil.chown(munge_dir, "munge", "munge")
    (root / "munge").symlink_to(munge_dir)
    munge_socket = munge_dir / "munge.socket"
    pids: list[int] = []
    munged = subprocess.run(
        [
            "runuser", "-u", "munge", "--", "munged",
            f"--socket={munge_socket}", f"--pid-file={munge_dir / 'munged.pid'}",
            f"--log-file={munge_dir / 'munged.log'}", f"--seed-file={munge_dir / 'seed'}",
        ],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    if munged.returncode != 0:
        raise Unavailable(f"munged did not start: {munged.stderr.strip()[-300:]}")
    pids.append(int((munge_dir / "munged.pid").read_text()))
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(
        CONF.format(
            host=host,
            root=root,
            ctld_port=_free_port(),
            slurmd_port=_free_port(),
            munge_socket=munge_socket,
            cpus=os.cpu_count() or 1,
        )
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    for daemon in ("slurmctld", "slurmd"):
        done = subprocess.run([daemon, "-f", str(conf)], env=env, capture_output=True, timeout=60)
        if done.returncode != 0:
            stop(pids + _pids(root))
            log = (
                (root / f"{daemon}.log").read_text()[-400:]
                if (root / f"{daemon}.log").is_file()
                else ""
            )
            raise Unavailable(f"{daemon} did not start: {done.stderr.decode()[-300:]} {log}")
    pids += _pids(root)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = subprocess.run(
            ["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True, timeout=30
        ).stdout.strip()
        if state in ("idle", "mix", "alloc"):
            return env, pids
        time.sleep(0.5)
    stop(pids)
    raise Unavailable(f"the Slurm node did not become idle (sinfo says {state!r})")


def _pids(root: Path) -> list[int]:
    out = []
    for name in ("slurmctld.pid", "slurmd.pid"):
        path = root / name
        for _ in range(50):
            if path.is_file() and path.read_text().strip():
                out.append(int(path.read_text()))
                break
            time.sleep(0.1)
    return out


def stop(pids: list[int]) -> None:
    for pid in reversed(pids):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    time.sleep(1)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
