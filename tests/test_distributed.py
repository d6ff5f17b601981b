"""torchrun with 2 CPU processes (gloo) trains like one process; rank 0 alone writes."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

SCRIPT = textwrap.dedent('''
    import sys
    from pathlib import Path

    import torch
    from torch import nn

    from doublewin.core import distributed
    from doublewin.core.specs import AttackSpec, TrainSpec
    from doublewin.train import train

    class Batches:
        """The same 6 global batches of 32 on every rank (as the seeded loaders give)."""
        def __init__(self):
            g = torch.Generator().manual_seed(0)
            self.x = torch.rand(6, 32, 3, 8, 8, generator=g)
            self.y = torch.randint(0, 4, (6, 32), generator=g)
        def __len__(self):
            return 6
        def __iter__(self):
            return iter(zip(self.x, self.y))

    torch.set_num_threads(1)
    world = distributed.init("cpu")
    torch.manual_seed(0)
    # No BatchNorm: with gloo each rank would normalise its own slice (see distributed.py).
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 4))
    out = Path(sys.argv[1])
    spec = TrainSpec(regime="at", epochs=2, batch_size=32, lr=0.05, schedule="constant",
                     attack=AttackSpec(eps=8 / 255, step=2 / 255, steps=2,
                                       random_start=False))
    train(model, spec, Batches(), workdir=out / f"work{world.rank}", seed=0)
    if world.main:
        torch.save(model.state_dict(), out / "final.pt")
    distributed.finish()
''')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_and_only_rank_zero_writes(tmp_path: Path) -> None:
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    single, double = tmp_path / "single", tmp_path / "double"
    single.mkdir()
    double.mkdir()
    one = subprocess.run(
        [sys.executable, str(script), str(single)], capture_output=True, text=True, timeout=300
    )
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--master-port",
            str(_free_port()),
            str(script),
            str(double),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    a = torch.load(single / "final.pt", weights_only=True)
    b = torch.load(double / "final.pt", weights_only=True)
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5, rtol=1e-4), name
    assert (double / "work0" / "checkpoint.pt").is_file()
    assert not (double / "work1" / "checkpoint.pt").exists()


def _torchrun(script: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-port", str(_free_port()), str(script), str(out), *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_ten_two_rank_runs_beside_a_busy_core_end_cleanly(tmp_path: Path) -> None:
    """The end of a rank (`distributed.finish`: a barrier, destroy_process_group, then
    os._exit without interpreter finalization) never aborts a finished rank, even when
    another process keeps a core busy."""
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        for attempt in range(10):
            out = tmp_path / f"run{attempt}"
            out.mkdir()
            done = subprocess.run(
                _torchrun(script, out), capture_output=True, text=True, timeout=300
            )
            assert done.returncode == 0, (attempt, done.stderr[-3000:])
            assert "terminate called" not in done.stderr, (attempt, done.stderr[-3000:])
            assert (out / "final.pt").is_file()
    finally:
        burner.kill()
        burner.wait()


KILLED = textwrap.dedent("""
    import os, signal, sys, time
    from doublewin.core import distributed
    world = distributed.init("cpu")
    distributed.barrier()
    if world.rank == 1:
        os.kill(os.getpid(), signal.SIGKILL)  # this rank dies mid-job
    time.sleep(30)
    distributed.shutdown()
""")


@pytest.mark.slow
def test_a_rank_that_dies_fails_the_job(tmp_path: Path) -> None:
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    started = time.monotonic()
    done = subprocess.run(_torchrun(script, tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert time.monotonic() - started < 60  # the launcher stops the survivor, no hang


def test_the_command_line_leaves_the_process_group_and_ends_with_the_commands_code(
    monkeypatch,
) -> None:
    """Under torchrun, doublewin's entry point ends every rank through `distributed.finish`
    with the command's exit code: after a barrier when the command finished, at once when it
    failed (bad input: 2; a crash: 1, its traceback printed first)."""
    from doublewin import cli
    from doublewin.core import distributed

    calls: list[tuple[int, bool]] = []
    monkeypatch.setenv("WORLD_SIZE", "2")  # what torchrun sets: cli.main reads it, not torch
    monkeypatch.setattr(distributed, "init", lambda device=None: distributed.World())
    monkeypatch.setattr(
        distributed, "finish", lambda code=0, synchronize=True: calls.append((code, synchronize))
    )
    cli.main(["models", "--json"])
    cli.main(["pretrain", "--data", "nowhere", "--out", "x.safetensors"])
    monkeypatch.setattr(cli, "command", lambda: SimpleNamespace(main=lambda **_: 1 / 0))
    cli.main(["models"])
    assert calls == [(0, True), (2, False), (1, False)]


@pytest.mark.slow
def test_finish_flushes_and_ends_the_process_with_its_code(tmp_path: Path) -> None:
    script = (
        "from doublewin.core import distributed\nprint('done', end='')\ndistributed.finish(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 3 and done.stdout == "done"
