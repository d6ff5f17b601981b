"""One transfer spec gives one set of metrics, whichever way it runs: `doublewin transfer`, a
transfer job of `doublewin run`, and `doublewin.transfer` on the same weights and images all
go through the transfer stage (its validation, checkpoint choice and test attack)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml

import doublewin
from doublewin.core import paths
from doublewin.core.results import TEST_METRICS
from doublewin.core.typed import to_dict
from doublewin.data import load_dataset
from doublewin.models import load_model

# An AT transfer small enough to run three times (a few seconds each on 2 CPU cores).
TRAIN = {"regime": "at", "epochs": 2, "batch_size": 64, "lr": 0.05, "schedule": "cosine"}
DATA = {"resolution": 8, "test_limit": 100}
EVAL_ATTACK = {"steps": 5, "loss": "ce+margin"}


def _experiment(tmp_path: Path, weights: Path) -> Path:
    raw = {
        "name": "routes",
        "arch": "resnet8",
        "seeds": [0],
        "pretrain": {"runs": {"THETA": {"weights": str(weights), "tickets": False}}},
        "transfer": {
            "datasets": ["digits"],
            "fractions": [1.0],
            "data": DATA,
            "regimes": {"at": {k: v for k, v in TRAIN.items() if k != "regime"}},
            "eval_attack": EVAL_ATTACK,
        },
        "verdict": {"rule": "paper"},
    }
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _transfer_by_cli(cli, weights: Path, out: Path) -> dict:
    options = ["--regime", "at", "--epochs", "2", "--resolution", "8", "--save-models", "none"]
    sets = [f"train.{k}={v}" for k, v in TRAIN.items() if k not in ("regime", "epochs")]
    sets += [f"data.test_limit={DATA['test_limit']}"]
    sets += [f"eval_attack.{k}={v}" for k, v in EVAL_ATTACK.items()]
    options += [part for item in sets for part in ("--set", item)]
    code, _, err = cli(
        "transfer", "--weights", str(weights), "--data", "digits", "--out", str(out), *options
    )
    assert code == 0, err
    return json.loads((out / paths.METRICS).read_text())


def _transfer_by_experiment(cli, weights: Path, tmp_path: Path) -> tuple[dict, dict]:
    """The results row of the experiment's one transfer, and its store entry's spec."""
    run = tmp_path / "run"
    code, _, err = cli("run", str(_experiment(tmp_path, weights)), "--out", str(run), "--jobs", "1")
    assert code == 0, err
    with open(run / paths.RESULTS, newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    spec = json.loads((run / paths.STORE_DIR / row["job"] / paths.SPEC).read_text())
    return row, spec


def test_the_command_line_an_experiment_and_the_api_give_the_same_metrics(files, tmp_path, cli):
    weights = files["weights"]
    by_cli = _transfer_by_cli(cli, weights, tmp_path / "cli")
    row, spec = _transfer_by_experiment(cli, weights, tmp_path)
    model, _ = load_model(weights)
    digits = load_dataset("digits")
    train = (digits.train.images, digits.train.labels)
    val = (digits.val.images, digits.val.labels)
    test = (digits.test.images, digits.test.labels)
    run = doublewin.transfer(model, None, train, test, val=val, spec=by_cli["spec"])

    # One spec: the experiment's job is the command line's, but for where the weights come
    # from and the files it keeps; the API's records the caller's tensors.
    recorded = spec.get("spec", spec)
    for key in ("train", "eval_attack", "seed", "normalization"):
        assert recorded[key] == by_cli["spec"][key], key
    assert recorded["data"] == by_cli["spec"]["data"]
    assert to_dict(run.spec.train) == by_cli["spec"]["train"]
    assert to_dict(run.spec.eval_attack) == by_cli["spec"]["eval_attack"]
    for metric in TEST_METRICS:
        assert float(row[metric]) == pytest.approx(by_cli[metric], rel=1e-6), metric
        assert run.metrics[metric] == pytest.approx(by_cli[metric], rel=1e-6), metric
    # AT validates RA and chooses both checkpoints; the test attack is the spec's (PGD-5 on
    # the worst of two losses, at the default step).
    for chosen in ("best_val_sa_epoch", "best_val_ra_epoch"):
        assert run.metrics[chosen] == by_cli[chosen] and by_cli[chosen] in (1, 2)
    assert run.spec.eval_attack.loss == "ce+margin" and run.spec.eval_attack.steps == 5


class _Tiny(torch.nn.Module):
    """A model of the caller's own: no normalization inside, a head named ``out``."""

    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1)
        )
        self.out = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x).flatten(1))


def test_the_api_holds_out_a_tenth_for_validation_and_tests_with_the_runs_attack():
    torch.manual_seed(0)
    x, y = torch.rand(100, 3, 6, 6), torch.arange(100) % 3  # floats off the 8-bit grid
    test = (torch.rand(30, 3, 6, 6), torch.arange(30) % 3)
    options = {"regime": "at", "eps": "4/255", "epochs": 1, "batch_size": 16, "head": "out"}
    run = doublewin.transfer(_Tiny(), None, (x, y), test, **options)
    assert run.metrics["train_images"] == 90 and run.metrics["test_images"] == 30
    assert run.metrics["best_val_ra_epoch"] == 1
    # The training ε is the test attack's, at the default step (ε/4 for PGD-20).
    assert run.spec.eval_attack.eps == pytest.approx(4 / 255)
    assert run.spec.eval_attack.step == pytest.approx(1 / 255)
    assert run.row["ra_best_ra"] == run.metrics["ra_best_ra"] is not None
