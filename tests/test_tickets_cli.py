"""find-tickets, tickets inspect/convert through the CLI, and IMP resuming at the last rung."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from doublewin.core.build import load_spec
from doublewin.models import WeightsMeta, build_model, save_weights
from doublewin.tickets import find_tickets, load_ticket


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = build_model("resnet8", 10)
    path = tmp_path_factory.mktemp("w") / "theta.safetensors"
    save_weights(
        path,
        model,
        WeightsMeta(arch="resnet8", num_classes=10, input_size=8, dataset="shapes", regime="std"),
    )
    return path


def test_find_tickets_inspect_and_convert_round_trip(weights: Path, tmp_path: Path, cli) -> None:
    code, out, _ = cli(
        "find-tickets",
        "--weights",
        str(weights),
        "--method",
        "omp",
        "--sparsities",
        "0.5,0.8",
        "--out",
        str(tmp_path),
        "--device",
        "cpu",
        "--json",
    )
    assert code == 0
    rows = json.loads(out)
    assert [round(r["sparsity"], 4) for r in rows] == [0.5, 0.8]
    ticket = Path(rows[1]["file"])
    code, out, _ = cli("tickets", "inspect", str(ticket), "--json")
    report = json.loads(out)
    assert code == 0 and report["method"] == "omp" and len(report["layers"]) > 5
    official, back = tmp_path / "official.pt", tmp_path / "back.safetensors"
    assert cli("tickets", "convert", str(ticket), str(official), "--to", "official")[0] == 0
    assert cli("tickets", "convert", str(official), str(back), "--to", "doublewin")[0] == 0
    assert load_ticket(back).mask.equals(load_ticket(ticket).mask)
    assert load_ticket(official).mask.equals(load_ticket(ticket).mask)


def test_a_ticket_that_does_not_fit_is_one_line_and_exit_2(
    weights: Path, tmp_path: Path, cli
) -> None:
    torch.manual_seed(0)
    other = tmp_path / "other.safetensors"
    save_weights(
        other,
        build_model("resnet20", 10),
        WeightsMeta(arch="resnet20", num_classes=10, input_size=8),
    )
    cli(
        "find-tickets",
        "--weights",
        str(weights),
        "--method",
        "random",
        "--sparsities",
        "0.5",
        "--out",
        str(tmp_path / "t"),
        "--device",
        "cpu",
        "--json",
    )
    code, _, err = cli(
        "transfer",
        "--weights",
        str(other),
        "--ticket",
        str(tmp_path / "t" / "ticket-0.500000.safetensors"),
        "--data",
        "digits",
        "--out",
        str(tmp_path / "x"),
        "--device",
        "cpu",
    )
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "resnet" in err


def _imp_spec(weights: Path, rounds: int):
    return load_spec(
        "tickets",
        {
            "weights": str(weights),
            "method": "imp",
            "prune_rate": 0.5,
            "rounds": rounds,
            "data": {"name": "shapes", "resolution": 8, "fraction": 0.01, "val_size": 50},
            "train": {"epochs": 1, "batch_size": 50, "lr": 0.01, "val_attack": {"steps": 1}},
        },
    )


def test_a_killed_imp_run_resumes_at_the_last_rung_with_the_same_masks(
    weights: Path, tmp_path: Path
) -> None:
    import doublewin.tickets.imp as imp

    whole = find_tickets(_imp_spec(weights, 3), weights, workdir=tmp_path / "whole", device="cpu")
    original, saved = imp.save_ticket, []

    def die_after_two(path, ticket):
        if len(saved) == 2:
            raise KeyboardInterrupt
        saved.append(path)
        return original(path, ticket)

    imp.save_ticket = die_after_two
    try:
        with pytest.raises(KeyboardInterrupt):
            find_tickets(_imp_spec(weights, 3), weights, workdir=tmp_path / "killed", device="cpu")
    finally:
        imp.save_ticket = original
    trunk = tmp_path / "killed" / "imp-trunk"
    assert imp.finished_rungs(trunk) == [1, 2]
    resumed = find_tickets(
        _imp_spec(weights, 3), weights, workdir=tmp_path / "killed", device="cpu"
    )
    for a, b in zip(whole, resumed, strict=True):
        assert load_ticket(a).mask.equals(load_ticket(b).mask)
    # Asking for more rounds later continues the same trunk.
    longer = find_tickets(_imp_spec(weights, 4), weights, workdir=tmp_path / "killed", device="cpu")
    assert len(longer) == 4 and imp.finished_rungs(trunk) == [1, 2, 3, 4]
    assert [round(load_ticket(p).mask.sparsity, 3) for p in longer] == [0.5, 0.75, 0.875, 0.938]


def test_evaluate_a_ticket_without_retraining_after_batchnorm_re_estimation(
    weights: Path, tmp_path: Path, cli
) -> None:
    code, out, _ = cli(
        "find-tickets",
        "--weights",
        str(weights),
        "--method",
        "omp",
        "--sparsities",
        "0.9",
        "--out",
        str(tmp_path),
        "--device",
        "cpu",
        "--json",
    )
    ticket = json.loads(out)[0]["file"]
    common = ["evaluate", "--weights", str(weights), "--data", "digits", "--steps", "1"]
    common += ["--check-points", "32", "--device", "cpu", "--json"]
    code, out, err = cli(*common, "--ticket", ticket, "--recalibrate-bn", "3")
    assert code == 0, err
    report = json.loads(out)
    assert report["recalibrated_bn_batches"] == 3
    assert report["sparsity"] == pytest.approx(0.9, abs=1e-3)
    code, out, _ = cli(*common, "--ticket", ticket)
    assert code == 0 and "recalibrated_bn_batches" not in json.loads(out)
    code, _, err = cli(*common, "--recalibrate-bn", "-1")
    assert code == 2


@pytest.mark.parametrize(("given", "trained"), [((), "at"), (("--regime", "st"), "std")])
def test_transfer_keeps_the_configs_regime_unless_regime_is_given(
    weights: Path, tmp_path: Path, cli, given, trained
) -> None:
    config = tmp_path / "at.yaml"
    config.write_text("train: {regime: at, attack: {eps: 8/255, step: 4/255, steps: 1}}\n")
    out = tmp_path / "out"
    code, stdout, err = cli(
        *("transfer", "--weights", str(weights), "--data", "digits", "--out", str(out)),
        *("--config", str(config), "--epochs", "1", "--fraction", "0.05", *given),
        *("--set", "data.test_limit=64", "--set", "eval_attack.steps=2"),
    )
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    spec = metrics["spec"]
    assert spec["train"]["regime"] == trained
    # ST validates SA only (the official ST script) and tests both metrics at that checkpoint.
    assert spec["train"]["val_ra"] is (trained == "at")
    if trained == "std":
        assert metrics["best_val_ra"] is None
        assert (metrics["sa_best_ra"], metrics["ra_best_ra"]) == (
            metrics["sa_best_sa"],
            metrics["ra_best_sa"],
        )
    assert stdout.startswith(f"digits ({'AT' if trained == 'at' else 'ST'}, sparsity 0.00%, ")


def test_transferred_weights_reload_to_the_model_that_was_tested(
    weights: Path, tmp_path: Path, cli
) -> None:
    """The fine-tuned weights a transfer saves carry the normalization they were trained with
    (the downstream statistics), so evaluating the file gives the transfer's test numbers."""
    out = tmp_path / "t"
    code, _, err = cli(
        *("transfer", "--weights", str(weights), "--data", "digits", "--out", str(out)),
        *("--epochs", "1", "--fraction", "0.3", "--save-models", "best_sa", "--json"),
        *("--set", "eval_attack.steps=2"),
    )
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    code, stdout, err = cli(
        *("evaluate", "--weights", str(out / "best_sa.safetensors"), "--data", "digits"),
        *("--steps", "2", "--json"),
    )
    assert code == 0, err
    assert json.loads(stdout)["sa"] == pytest.approx(metrics["sa_best_sa"], abs=0.01)
