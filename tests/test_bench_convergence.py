"""benchmarks/bench_convergence.py reruns a finished run's dense transfers: its overrides must
give a dense-only plan for every shipped demo file, anchors and searches included."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from doublewin.experiments.plan.experiment import load_experiment
from doublewin.experiments.plan.grid import expand
from doublewin.experiments.run.demo import config_dir

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_convergence.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_convergence", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["demo.yaml", "demo-wide.yaml", "demo-brackets.yaml"])
def test_the_dense_only_overrides_plan_only_pretraining_and_dense_transfers(
    name: str, tmp_path: Path
) -> None:
    sets = _bench().dense_only(tmp_path / "store", "0,1,2")
    experiment = load_experiment(config_dir() / name, sets)
    jobs = expand(experiment)
    assert {j.stage for j in jobs} == {"pretrain", "transfer"}
    assert {j.labels["method"] for j in jobs if j.stage == "transfer"} == {"dense"}
    assert {j.labels["fraction"] for j in jobs if j.stage == "transfer"} == {1.0}
    assert experiment.search is None
