"""Numbers, resources, the YAML's structure and duplicates: each bad input is one line, exit
code 2, and nothing new on disk (``fails`` of test_bad_input.py); the inputs that are accepted
(YAML merge keys) do what they say."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from doublewin.core.errors import UserError
from doublewin.core.numbers import EPOCHS, Range, read_number
from doublewin.core.resources import cpu_cores
from doublewin.core.specs import TrainSpec
from doublewin.experiments.estimate.cost import validation_count
from doublewin.experiments.plan.experiment import load_experiment
from runs import doublewin
from test_bad_input import fails

QUICK = Path(__file__).resolve().parents[1] / "src" / "doublewin" / "configs" / "demo-quick.yaml"


def _plan(tmp_path: Path, *sets: str, extra: tuple[str, ...] = ()) -> list[str]:
    """`doublewin run` of the quick demo with ``--set`` items, into a folder under tmp_path."""
    argv = ["run", QUICK, "--dry-run", "--out", tmp_path / "run", *extra]
    for item in sets:
        argv += ["--set", item]
    return argv


# --- 1. non-finite and out-of-range numbers ---------------------------------------------


@pytest.mark.parametrize(
    ("item", "key"),
    [
        ("pretrain.train.lr=.nan", "pretrain.train.lr"),
        ("transfer.regimes.at.attack.eps=.inf", "transfer.regimes.at.attack.eps"),
        ("tickets.prune_rate=-.inf", "tickets.prune_rate"),
        ("transfer.fractions=[1e400]", "transfer.fractions[0]"),
        ("verdict.margin_floor=.nan", "verdict.margin_floor"),
        ("pretrain.train.epochs=1e400", "pretrain.train.epochs"),
    ],
)
def test_a_non_finite_number_from_yaml_names_its_key(item, key, tmp_path, capsys):
    line = fails(_plan(tmp_path, item), capsys, names=(key,), watch=tmp_path)
    assert "finite" in line


def test_a_nan_learning_rate_never_trains(tmp_path, capsys):
    out = tmp_path / "w.safetensors"
    fails(
        ["pretrain", "--data", "digits", "--out", out, "--set", "train.lr=.nan"],
        capsys,
        names=("train.lr", "finite"),
        watch=tmp_path,
    )


def test_nan_and_inf_options_are_refused_like_yaml_ones(tmp_path, capsys, files):
    for option, value in (("--lr", "nan"), ("--lr", "inf"), ("--fraction", "-inf")):
        fails(
            [
                "transfer",
                "--weights",
                files["weights"],
                "--data",
                "digits",
                "--out",
                tmp_path / "t",
                option,
                value,
            ],
            capsys,
            watch=tmp_path,
        )


def test_a_verdict_config_with_a_nan_margin_is_refused(tmp_path, capsys):
    table = tmp_path / "results.csv"
    table.write_text("pretraining,dataset,fraction,method,sparsity,regime,seed\n")
    config = tmp_path / "verdict.yaml"
    config.write_text("margin_floor: .nan\n")
    fails(["verdict", table, "--config", config], capsys, names=("margin_floor",), watch=tmp_path)


@pytest.mark.parametrize("value", ["abc", "nan", "-5"])
def test_a_bad_environment_number_names_the_variable(value, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DOUBLEWIN_PROGRESS_INTERVAL", value)
    fails(
        ["pretrain", "--data", "digits", "--out", tmp_path / "w.safetensors", "--epochs", "1"],
        capsys,
        names=("$DOUBLEWIN_PROGRESS_INTERVAL",),
        watch=tmp_path,
    )


@pytest.mark.parametrize("value", ["abc", "0"])
def test_a_bad_world_size_is_one_line(value, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", value)
    fails(["models"], capsys, names=("$WORLD_SIZE",), watch=tmp_path)


def test_a_world_size_without_torchrun_says_how_to_launch(tmp_path):
    # A subprocess: under WORLD_SIZE > 1 the command ends its own process (distributed.finish).
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "MASTER_ADDR", "MASTER_PORT")}
    done = subprocess.run(
        doublewin("models"), env={**env, "WORLD_SIZE": "2"}, capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "torchrun" in done.stderr, done.stderr


def test_a_diverging_loss_is_bad_input_and_leaves_nothing(tmp_path, capsys):
    out = tmp_path / "w.safetensors"
    fails(
        ["pretrain", "--data", "digits", "--out", out, "--epochs", "1", "--lr", "1e30"],
        capsys,
        names=("NaN", "lower train.lr"),
        watch=tmp_path,
    )


def test_the_checked_reader_reads_what_users_write_and_refuses_the_rest():
    assert read_number("8/255", name="eps") == pytest.approx(8 / 255)
    assert read_number(" 2e-4 ", name="lr") == 2e-4
    assert read_number(5.0, name="epochs", whole=True) == 5
    assert read_number("12", name="epochs", whole=True) == 12
    for bad in (float("nan"), float("inf"), "1e400", "nan", True, None, [1]):
        with pytest.raises(UserError, match="x:"):
            read_number(bad, name="x")
    with pytest.raises(UserError, match="far too large"):
        read_number(10**20, name="x", whole=True)
    with pytest.raises(UserError, match=r"allowed \[1, 100000\]"):
        read_number(10**20, name="x", whole=True, range=EPOCHS)
    with pytest.raises(UserError, match="whole number"):
        read_number(2.5, name="x", whole=True, range=Range(0, None))


# --- 2. resource options ------------------------------------------------------------------


def test_more_threads_than_cores_is_refused_with_the_machines_cores(tmp_path, capsys):
    line = fails(
        [
            "pretrain",
            "--data",
            "digits",
            "--out",
            tmp_path / "w.safetensors",
            "--threads",
            "100000",
        ],
        capsys,
        names=("--threads 100000",),
        watch=tmp_path,
    )
    assert f"{cpu_cores()} CPU core" in line


def test_more_jobs_than_cores_is_refused_before_the_estimate(tmp_path, capsys):
    line = fails(
        _plan(tmp_path, extra=("--jobs", "1000")), capsys, names=("--jobs 1000",), watch=tmp_path
    )
    assert f"{cpu_cores()} CPU core" in line


def test_threads_times_jobs_beyond_the_cores_is_refused(tmp_path, capsys):
    extra = ("--jobs", str(cpu_cores()), "--threads", "2")
    fails(_plan(tmp_path, extra=extra), capsys, names=("--threads 2",), watch=tmp_path)


def test_workers_per_gpu_without_a_gpu_does_nothing_and_is_refused(tmp_path, capsys):
    fails(
        _plan(tmp_path, extra=("--workers-per-gpu", "2", "--device", "cpu")),
        capsys,
        names=("--workers-per-gpu",),
        watch=tmp_path,
    )


def test_a_twenty_digit_epoch_count_is_refused_at_once(tmp_path, capsys):
    started = time.monotonic()
    fails(
        _plan(tmp_path, "pretrain.train.epochs=12345678901234567890"),
        capsys,
        names=("pretrain.train.epochs",),
        watch=tmp_path,
    )
    assert time.monotonic() - started < 30


def test_the_validations_of_a_long_run_are_counted_not_enumerated():
    for epochs, every, first in ((10, 1, 1), (10, 3, 1), (12, 5, 4), (7, 7, 7), (1, 2, 1)):
        spec = TrainSpec(epochs=epochs, val_every=every, select_from_epoch=first)
        expected = sum(1 for e in range(first, epochs + 1) if e % every == 0 or e == epochs)
        assert validation_count(spec) == expected
    started = time.monotonic()
    assert validation_count(TrainSpec(epochs=EPOCHS.high)) == EPOCHS.high
    assert time.monotonic() - started < 0.1


# --- 3. the YAML's own structure ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("name: x\n1: one\n", ("line 2", "quote it")),
        ("name: x\non: 3\n", ("line 2", "true/false")),
        ("name: [a, b]\n", ("name:", "not text")),
        ("name: x\npretrain: {runs: {STD: {}, STD: {}}}\n", ("given twice",)),
    ],
)
def test_the_yaml_structure_is_checked(text, names, tmp_path, capsys):
    experiment = tmp_path / "e.yaml"
    experiment.write_text(text)
    fails(
        ["run", experiment, "--dry-run", "--out", tmp_path / "run"],
        capsys,
        names=names,
        watch=tmp_path,
    )


def test_a_key_that_is_not_text_in_a_set_value_is_refused(tmp_path, capsys):
    fails(
        _plan(tmp_path, "pretrain.runs={1: {}}"),
        capsys,
        names=("--set", "quote it"),
        watch=tmp_path,
    )


def test_yaml_merge_keys_are_accepted_and_merge(tmp_path):
    experiment = tmp_path / "e.yaml"
    experiment.write_text(
        "name: merged\n"
        "x-common: &common {epochs: 1, batch_size: 32}\n"
        "pretrain:\n"
        "  train: {<<: *common, lr: 0.05}\n"
        "  runs: {STD: {train: {regime: std}}}\n"
        "transfer:\n"
        "  regimes: {st: {<<: *common, epochs: 2}}\n"
    )
    parsed = load_experiment(experiment)
    spec = parsed.pretrainings[0].spec
    assert (spec.train.epochs, spec.train.batch_size, spec.train.lr) == (1, 32, 0.05)
    st = parsed.regimes["st"]
    assert (st.epochs, st.batch_size) == (2, 32)  # the mapping's own key wins


def test_an_unknown_top_level_key_names_the_anchor_section(tmp_path, capsys):
    experiment = tmp_path / "e.yaml"
    experiment.write_text("name: x\ncommon: &c {epochs: 1}\n")
    fails(
        ["run", experiment, "--dry-run", "--out", tmp_path / "run"],
        capsys,
        names=("common", "x-"),
        watch=tmp_path,
    )


# --- 4. duplicates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "key"),
    [
        ("seeds=[0, 0]", "seeds[1]"),
        ("transfer.fractions=[0.2, 1/5]", "transfer.fractions[1]"),
        ("transfer.datasets=[digits, digits]", "transfer.datasets[1]"),
        ("tickets.methods=[imp, omp, imp]", "tickets.methods[2]"),
        ("tickets.sparsities=[0.5, 0.5]", "tickets.sparsities[1]"),
        ("verdict.st_metrics=[sa, sa]", "verdict.st_metrics[1]"),
        ("transfer.regimes.at.milestones=[1, 1]", "milestones[1]"),
    ],
)
def test_a_value_listed_twice_is_refused_naming_it(item, key, tmp_path, capsys):
    line = fails(_plan(tmp_path, item), capsys, names=(key,), watch=tmp_path)
    assert "listed twice" in line


def test_two_labels_of_one_pretraining_are_refused(tmp_path, capsys):
    fails(
        _plan(tmp_path, "pretrain.runs.std={train: {regime: std}}"),
        capsys,
        names=("pretrain.runs.std", "STD"),
        watch=tmp_path,
    )


def test_two_sparsities_that_name_one_rung_are_refused(tmp_path, capsys):
    fails(
        _plan(tmp_path, "tickets.sparsities=[0.5, 0.5000001]"),
        capsys,
        names=("one rung",),
        watch=tmp_path,
    )


def test_a_key_set_twice_on_the_command_line_is_merged_and_said(capsys):
    from doublewin.cli import main  # in-process: its warning is one line, before the plan

    with pytest.raises(SystemExit):  # stopped by the second check, after the merge was said
        main(
            [
                "run",
                str(QUICK),
                "--dry-run",
                "--set",
                "seeds=[0]",
                "--set",
                "seeds=[1]",
                "--assume-spread",
                "2",
            ]
        )
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("warning: --set seeds is given twice") and "last one" in err[0]


def test_an_option_and_a_set_of_one_key_are_refused(tmp_path, capsys, files):
    fails(
        [
            "transfer",
            "--weights",
            files["weights"],
            "--data",
            "digits",
            "--out",
            tmp_path / "t",
            "--fraction",
            "1.5",
            "--set",
            "data.fraction=0.5",
        ],
        capsys,
        names=("data.fraction", "1.5"),
        watch=tmp_path,
    )
    fails(
        _plan(tmp_path, "seeds=[0]", extra=("--seeds", "auto")),
        capsys,
        names=("--seeds auto",),
        watch=tmp_path,
    )


def test_one_ticket_file_listed_twice_is_refused(tmp_path, capsys, files):
    experiment = tmp_path / "e.yaml"
    ticket = files["ticket"]
    experiment.write_text(
        f"name: t\narch: resnet8\npretrain: {{runs: {{IMPORTED: {{weights: {files['weights']}, "
        f"tickets: {{files: [{ticket}, {ticket}]}}}}}}}}\ntransfer: {{datasets: [digits]}}\n"
    )
    fails(
        ["run", experiment, "--dry-run", "--out", tmp_path / "run"],
        capsys,
        names=("tickets", "the same mask as"),
        watch=tmp_path,
    )
