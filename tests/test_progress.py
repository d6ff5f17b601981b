"""Progress people can read: plain lines at a steady interval when stderr is not a terminal
(CI, nohup, tee), while the command runs; the ETA from the average rate."""

from __future__ import annotations

import os
import re
import subprocess

from doublewin.cli.progress import eta_seconds
from runs import doublewin


def test_piped_output_shows_progress_lines_while_the_command_runs(tmp_path):
    env = {**os.environ, "DOUBLEWIN_PROGRESS_INTERVAL": "0.5"}
    process = subprocess.Popen(
        doublewin("pretrain", "--arch", "resnet8", "--data", "digits", "--regime", "std",
                  "--epochs", "2", "--resolution", "8", "--out", str(tmp_path / "w.safetensors"),
                  "--set", "eval_attack.steps=1", "--set", "train.val_attack.steps=1"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert process.stderr is not None
    live = []  # progress lines read while the process was still running
    for line in process.stderr:
        if re.match(r"\[\d\d:\d\d:\d\d\] ", line):
            live.append((line, process.poll() is None))
    assert process.wait(timeout=120) == 0
    running = [line for line, alive in live if alive]
    assert len(running) >= 2, live
    assert any("eta" in line and "/" in line for line in running), running
    assert any(line.startswith("[") and "train std" in line for line in running), running


def test_the_eta_is_the_average_rate_from_the_first_step():
    assert eta_seconds(10.0, 5, 20) == 30.0
    assert eta_seconds(10.0, 0, 20) is None and eta_seconds(10.0, 5, None) is None
