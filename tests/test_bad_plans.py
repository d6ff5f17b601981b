"""Impossible rungs and patterns found at plan time, a ticket's pattern verified wherever it is
read, options that do nothing in a combination, failures that leave no mess, optional
packages checked first, and help text as written: one line, exit 2, nothing new on disk."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from doublewin.cli import main
from doublewin.core import paths
from doublewin.experiments.run.executors import SAID_LIMIT, _words
from doublewin.tickets import load_ticket, save_ticket
from test_bad_input import fails

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "src" / "doublewin" / "configs" / "demo-quick.yaml"


def _plan(tmp_path: Path, *sets: str, extra: tuple[str, ...] = (), dry: bool = True) -> list:
    argv = ["run", QUICK, "--out", tmp_path / "run", *(["--dry-run"] if dry else []), *extra]
    for item in sets:
        argv += ["--set", item]
    return argv


# --- 5. impossible rungs and patterns, at plan time ---------------------------------------


@pytest.mark.parametrize(
    ("item", "names"),
    [
        ("tickets.sparsities=[0.999999]", ("0.999999", "keeps 0", "76,720", "0.999986")),
        ("tickets.rounds=100", ("tickets.rounds", "keeps 0", "at most rounds: 23")),
        ("tickets={methods: [omp], rounds: 60}", ("round 54", "at most rounds: 53")),
        ("tickets={methods: [omp], pattern: nm, nm: [1, 3]}", ("nm 1:3", "0.38%", "66.67%")),
    ],
)
def test_an_impossible_rung_or_pattern_is_refused_before_anything_runs(
    item, names, tmp_path, capsys
):
    fails(_plan(tmp_path, item), capsys, names=names, watch=tmp_path)
    # Without --dry-run too: nothing is pre-trained, no folder and no results.csv are made.
    fails(_plan(tmp_path, item, dry=False), capsys, names=names[:1], watch=tmp_path)


def test_find_tickets_refuses_a_rung_that_keeps_nothing_before_it_computes(tmp_path, capsys, files):
    fails(
        [
            "find-tickets",
            "--weights",
            files["weights"],
            "--method",
            "omp",
            "--sparsities",
            "0.999999",
            "--out",
            tmp_path / "t",
        ],
        capsys,
        names=("keeps 0",),
        watch=tmp_path,
    )


def test_a_validation_split_larger_than_the_dataset_is_refused_at_plan_time(tmp_path, capsys):
    fails(
        _plan(tmp_path, "transfer.data.val_size=100000"),
        capsys,
        names=("transfer.data.val_size", "1,258 training images of digits"),
        watch=tmp_path,
    )


# --- 6. a ticket's recorded pattern, verified wherever the file is read -------------------


@pytest.fixture
def mislabelled(files, tmp_path) -> Path:
    """The 50% unstructured OMP ticket, its file saying it is 2:4."""
    ticket = load_ticket(files["ticket"])
    info = dataclasses.replace(
        ticket.info, extra={**ticket.info.extra, "pattern": "nm", "nm": [2, 4]}
    )
    path = tmp_path / "labelled-2-4.safetensors"
    save_ticket(path, dataclasses.replace(ticket, info=info))
    return path


@pytest.mark.parametrize("command", ["export", "transfer", "evaluate", "inspect"])
def test_a_ticket_whose_mask_breaks_its_pattern_is_refused_everywhere(
    command, mislabelled, files, tmp_path, capsys
):
    out = tmp_path / "out"
    argv = {
        "export": ["export", "--weights", files["weights"], "--ticket", mislabelled, "--out", out],
        "transfer": [
            "transfer",
            "--weights",
            files["weights"],
            "--ticket",
            mislabelled,
            "--data",
            "digits",
            "--out",
            out,
            "--epochs",
            "1",
        ],
        "evaluate": [
            "evaluate",
            "--weights",
            files["weights"],
            "--ticket",
            mislabelled,
            "--data",
            "digits",
            "--limit",
            "10",
        ],
        "inspect": ["tickets", "inspect", mislabelled, "--json"],
    }[command]
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        main([str(a) for a in argv])
    assert stopped.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "records a nm pattern its mask does not hold" in err[0], err
    assert not out.exists()


# --- 10. options that do nothing in the combination given --------------------------------


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (("--address", "10.0.0.1:6379"), ("--address", "--executor ray")),
        (("--partition", "gpu"), ("--partition", "--executor slurm")),
        (("--time", "60"), ("--time",)),
        (("--gpus", "1", "--executor", "ray"), ("--gpus", "--executor slurm")),
    ],
)
def test_an_executor_option_of_another_executor_is_refused(extra, names, tmp_path, capsys):
    fails(_plan(tmp_path, extra=extra), capsys, names=names, watch=tmp_path)


def test_assume_spread_without_a_dry_run_or_seeds_on_demand_is_refused(tmp_path, capsys):
    fails(
        _plan(tmp_path, extra=("--assume-spread", "2"), dry=False),
        capsys,
        names=("--assume-spread", "--dry-run"),
        watch=tmp_path,
    )
    fails(
        _plan(tmp_path, extra=("--assume-spread", "2")),
        capsys,
        names=("--assume-spread", "--seeds auto"),
        watch=tmp_path,
    )


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (("--data", "chars"), ("--data", "omp")),
        (("--regime", "at"), ("--regime",)),
        (("--epochs", "7"), ("--epochs",)),
        (("--set", "data.fraction=0.5"), ("--set data.fraction",)),
        (("--rate", "0.3"), ("--rate", "--sparsities")),
    ],
)
def test_find_tickets_refuses_what_the_method_does_not_read(extra, names, tmp_path, capsys, files):
    fails(
        [
            "find-tickets",
            "--weights",
            files["weights"],
            "--method",
            "omp",
            "--sparsities",
            "0.5",
            "--out",
            tmp_path / "t",
            *extra,
        ],
        capsys,
        names=names,
        watch=tmp_path,
    )


def test_csr_of_a_channel_ticket_and_val_size_of_the_test_split_are_refused(
    tmp_path, capsys, files
):
    channel = tmp_path / "channel"
    main(
        [
            "find-tickets",
            "--weights",
            str(files["weights"]),
            "--method",
            "omp",
            "--sparsities",
            "0.5",
            "--set",
            "pattern=channel",
            "--out",
            str(channel),
            "--json",
        ]
    )
    ticket = channel / paths.ticket(0.5)
    fails(
        [
            "export",
            "--weights",
            files["weights"],
            "--ticket",
            ticket,
            "--out",
            tmp_path / "e",
            "--csr",
        ],
        capsys,
        names=("--csr", "channel"),
        watch=tmp_path,
    )
    fails(
        ["evaluate", "--weights", files["weights"], "--data", "digits", "--val-size", "50"],
        capsys,
        names=("--val-size", "--split val"),
        watch=tmp_path,
    )


def test_attack_options_of_a_regime_without_that_attack_are_refused(tmp_path, capsys, files):
    for regime, option, value in (("std", "--steps", "5"), ("fat", "--step", "2/255")):
        fails(
            [
                "pretrain",
                "--data",
                "digits",
                "--out",
                tmp_path / "w.safetensors",
                "--regime",
                regime,
                option,
                value,
            ],
            capsys,
            names=(option, f"regime {regime}"),
            watch=tmp_path,
        )
    fails(
        [
            "tickets",
            "convert",
            files["ticket"],
            tmp_path / "t.pt",
            "--to",
            "official",
            "--arch",
            "resnet8",
        ],
        capsys,
        names=("--arch", "doublewin ticket"),
        watch=tmp_path,
    )


@pytest.mark.parametrize(
    ("item", "names"),
    [
        ("transfer.regimes.st={epochs: 1, milestones: [5, 2]}", ("milestones", "5")),
        ("transfer.regimes.st={epochs: 9, milestones: [5, 2]}", ("in order", "[2, 5]")),
        ("transfer.regimes.st={schedule: cosine, milestones: [2]}", ("multistep only",)),
    ],
)
def test_milestones_that_change_nothing_are_refused(item, names, tmp_path, capsys):
    fails(_plan(tmp_path, item), capsys, names=names, watch=tmp_path)


# --- 11. a failure in the middle leaves no mess --------------------------------------------


def test_a_run_that_fails_before_any_transfer_leaves_no_empty_table(tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as stopped:
        main(
            [
                "run",
                str(QUICK),
                "--out",
                str(out),
                "--jobs",
                "1",
                "--set",
                "seeds=[0]",
                "--set",
                "pretrain.runs={STD: {train: {regime: std, lr: 1e30}}}",
            ]
        )
    assert stopped.value.code == 2
    assert "NaN" in capsys.readouterr().err
    assert not (out / paths.RESULTS).exists()  # no 0-byte table
    assert not list((out / paths.STORE_DIR).glob("pretrain-*"))  # the diverged entry is gone
    assert (out / paths.EXPERIMENT).is_file()  # the folder resumes
    fails(["report", out], capsys, names=("has finished yet", "nothing to report"), watch=tmp_path)


def test_slurms_refusal_is_cut_at_a_word_not_inside_one():
    said = "sbatch: error: " + "Batch job submission failed: invalid partition name " * 20
    cut = _words(said, SAID_LIMIT)
    assert len(cut) <= SAID_LIMIT + 2 and cut.endswith(" …")
    assert said.startswith(cut[:-2]) and said[len(cut) - 2] == " "
    assert _words("short", SAID_LIMIT) == "short"


# --- 12. optional packages checked before any compute ---------------------------------------


def test_autoattack_without_torchattacks_stops_before_the_pgd_evaluation(
    tmp_path, capsys, files, monkeypatch
):
    stage = sys.modules["doublewin.stages.evaluate"]  # the package's name is the function

    monkeypatch.setitem(sys.modules, "torchattacks", None)  # import torchattacks fails

    def never(*args, **kwargs):
        raise AssertionError("the weights were loaded before the missing package was found")

    monkeypatch.setattr(stage, "load_model", never)
    fails(
        ["evaluate", "--weights", files["weights"], "--data", "digits", "--autoattack", "10"],
        capsys,
        names=("torchattacks",),
        watch=tmp_path,
    )


@pytest.mark.parametrize(("executor", "package"), [("ray", "ray"), ("slurm", "submitit")])
def test_an_executor_without_its_package_is_refused_first(
    executor, package, tmp_path, capsys, monkeypatch
):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == package else find_spec(name)
    )
    fails(
        _plan(tmp_path, extra=("--executor", executor), dry=False),
        capsys,
        names=(f"doublewin[{executor}]",),
        watch=tmp_path,
    )


def test_the_gpu_check_without_torch_is_one_line(tmp_path):
    script = (
        "import sys, runpy; sys.modules['torch'] = None; "
        f"sys.argv = ['gpu_check.py', '--out', {str(tmp_path / 'out')!r}]; "
        "runpy.run_path('tools/gpu_check.py', run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout.strip().count("\n") == 0 and "has no torch" in done.stdout
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()


# --- 14. help text as written ---------------------------------------------------------------


def test_help_keeps_brackets_and_prints_no_stray_period(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # one option per line
    main(["run", "--help"])
    text = capsys.readouterr().out
    assert "pip install doublewin[ray]" in text and "`doublewin[slurm]`" in text
    assert "(small models leave a GPU idle with one) [default: 1]" in text
    for command in (
        ["run"],
        ["transfer"],
        ["evaluate"],
        ["import-weights"],
        ["tickets", "convert"],
    ):
        main([*command, "--help"])
        shown = capsys.readouterr().out
        assert " .  " not in shown and " . │" not in shown, command
