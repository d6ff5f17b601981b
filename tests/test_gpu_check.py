"""The prepared GPU check (tools/gpu_check.py) works here, where there is no GPU: its dry mode
lists every part within the budget, without CUDA it exits 0 in one line, and the table it writes
from a run's results holds every number."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import gpu_check  # noqa: E402


def test_the_dry_mode_lists_each_part_with_its_limit_within_the_budget():
    run = subprocess.run([sys.executable, "tools/gpu_check.py", "--dry"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == len(gpu_check.parts(Path("x"))) + 1
    total = sum(p.limit_s for p in gpu_check.parts(Path("x")))
    assert total <= gpu_check.BUDGET_S <= 8 * 60
    assert any("gpu tests" in line for line in lines) and any(
        "workers per GPU" in line for line in lines
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine the check runs for real")
def test_without_cuda_the_check_says_so_in_one_line_and_exits_0(tmp_path):
    run = subprocess.run([sys.executable, "tools/gpu_check.py", "--out", str(tmp_path / "o")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines() == [
        "gpu check: no CUDA device here, nothing to run (every file it needs is present)"
    ]
    assert not (tmp_path / "o").exists()


def test_the_table_holds_every_part_and_number(tmp_path):
    xml = tmp_path / "t.xml"
    xml.write_text(
        '<testsuites><testsuite><testcase name="test_a" time="1.5"/><testcase name="test_b" '
        'time="2"><failure message="boom&#10;more"/></testcase></testsuite></testsuites>'
    )
    tests = gpu_check.tests_table(xml)
    assert tests == [
        {"test": "test_a", "outcome": "passed", "seconds": 1.5},
        {"test": "test_b", "outcome": "failure: boom", "seconds": 2.0},
    ]
    speed = gpu_check.last_json('noise\n{\n  "arch": "resnet50",\n  "resolution": 224,\n'
                                '  "batch_size": 128,\n  "pgd_steps": 10,\n  "rows": [{"regime": "AT",'
                                ' "doublewin": 900.5, "official": 120.0, "ceiling": 1000.0,'
                                ' "vs_official": 7.5, "of_ceiling": 0.9}]\n}\n')  # fmt: skip
    parts = gpu_check.parts(tmp_path)
    for p in parts:
        p.seconds, p.outcome = 12.0, "ok"
    info = {"device": "NVIDIA H100", "torch": "2.11.0", "cuda": "13.0", "python": "3.12.3",
            "date": "2026-12-07", "commit": "abc1234"}  # fmt: skip
    results = {
        "tests": tests,
        "transfer_speed": speed,
        "precision": {"sa_bf16_minus_fp32": 0.1},
        "patterns": {"two_four": {"dense_over_2to4": 1.4}},
        "workers": [{"workers_per_gpu": w, "seconds": 30.0 / w, "jobs": 119, "outcome": "ok"} for w in (1, 2)],
    }  # fmt: skip
    text = gpu_check.markdown(info, parts, results)
    for expected in ("NVIDIA H100", "torch 2.11.0, CUDA 13.0", "| gpu tests | 160 | 12 | ok |",
                     "1 of 2 passed", "| AT | 900.5 | 120.0 | 1000.0 | 7.5 | 0.9 |",
                     "sa_bf16_minus_fp32 0.1", "dense_over_2to4", "| 2 | 15.0 | 119 | ok |"):  # fmt: skip
        assert expected in text, expected
