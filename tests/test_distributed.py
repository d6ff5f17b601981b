"""torchrun with 2 CPU processes (gloo) trains like one process; rank 0 alone writes."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

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
    distributed.shutdown()
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
