"""Under CI=true a skipped cluster test fails the run, saying why; elsewhere it only skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize(("ci", "code"), [("true", 1), ("", 0)])
def test_a_skipped_slurm_test_fails_only_under_ci(tmp_path: Path, ci: str, code: int) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_slurm.py").write_text(
        "import pytest\n\ndef test_cluster():\n    pytest.skip('no Slurm test cluster: sbatch')\n"
    )
    (tests / "test_other.py").write_text(
        "import pytest\n\ndef test_gpu():\n    pytest.skip('no CUDA device')\n"
    )
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(HERE)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "ci_required", "-p", "no:cacheprovider",
         "tests"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == code, done.stdout[-2000:]
    if code:
        assert "cluster tests skipped" in done.stdout and "no Slurm test cluster" in done.stdout
        assert "test_other.py" not in done.stdout.split("cluster tests skipped")[1]
