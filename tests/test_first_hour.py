"""What a new user trips on in the first hour: defaults that fit the run, and mistakes that
must not pass silently (each one line, exit 2, nothing half-written, or the documented
behaviour)."""

from __future__ import annotations

import os

import pytest

from doublewin.cli import main
from doublewin.experiments.run.demo import demo_config, demo_jobs
from test_bad_input import fails


def _code(argv) -> int:
    try:
        main([str(a) for a in argv])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_run_uses_the_workers_demo_uses(monkeypatch, tmp_path):
    import doublewin.cli.experiments as commands

    seen = {}
    monkeypatch.setattr(commands, "_execute", lambda plan, **kw: seen.update(kw))
    assert _code(["run", demo_config(quick=True), "--out", tmp_path / "r"]) == 0
    assert seen["jobs"] == demo_jobs("auto") >= 1
    assert _code(["run", demo_config(quick=True), "--out", tmp_path / "r", "--jobs", "1"]) == 0
    assert seen["jobs"] == 1


# --- experiment files: mistakes that must not pass silently ---------------------------------

BASE = (
    "pretrain: {data: {name: chars, fraction: 0.02}, train: {epochs: 1},\n"
    "           runs: {STD: {train: {regime: std}}}}\n"
    "tickets: {methods: [omp], prune_rate: 0.5, rounds: 1}\n"
    "transfer: {datasets: [strokes], fractions: [1.0], regimes: {st: {epochs: 1}}}\n"
)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("name: x\npretrain:\n  runs:\n    STD: {}\n    STD: {train: {regime: at}}\n", ("line 5", "'STD' is given twice")),
        ("name: ../../x\n" + BASE, ("name:", "not a folder name")),
        ("name: ''\n" + BASE, ("name:", "not a folder name")),
        ("name: x\nseeds: 3\n" + BASE, ("seeds: 3 is one number", "[0, 1, 2]")),
        ("name: x\n" + BASE + "analysis: {landscape: {method: omp, regimes: [at]}}\n", ("analysis.landscape.regimes", "not in the grid")),
    ],
    ids=["key twice", "name outside runs", "empty name", "seeds as one number", "landscape without its regime"],
)  # fmt: skip
def test_an_experiment_mistake_is_one_line_before_anything_runs(tmp_path, capsys, text, names):
    experiment = tmp_path / "e.yaml"
    experiment.write_text(text)
    fails(["run", experiment, "--dry-run", "--out", tmp_path / "run"], capsys, names=names, watch=tmp_path)  # fmt: skip


@pytest.mark.parametrize("key", ["datasets", "fractions"])
def test_an_empty_transfer_list_says_the_run_transfers_nothing(tmp_path, capsys, key):
    experiment = tmp_path / "e.yaml"
    text = "name: x\n" + BASE
    experiment.write_text(
        text.replace(
            "datasets: [strokes]" if key == "datasets" else "fractions: [1.0]", f"{key}: []"
        )
    )
    assert _code(["run", experiment, "--dry-run", "--out", tmp_path / "run"]) == 0
    assert (
        f"transfer.{key} is empty: this run draws tickets and transfers nothing"
        in capsys.readouterr().out
    )


def test_weights_naming_a_folder_fail_the_dry_run(tmp_path, capsys):
    (tmp_path / "folder").mkdir()
    experiment = tmp_path / "e.yaml"
    experiment.write_text(
        f"name: x\npretrain: {{runs: {{P: {{weights: {tmp_path / 'folder'}}}}}}}\n"
    )
    fails(["run", experiment, "--dry-run", "--out", tmp_path / "run"], capsys,
          names=("pretrain.runs.P.weights", "is a folder"), watch=tmp_path)  # fmt: skip


def test_an_unknown_search_is_refused(tmp_path, capsys):
    fails(["run", demo_config(quick=True), "--search", "extrem", "--out", tmp_path / "r"], capsys,
          names=("--search extrem", "extreme"), watch=tmp_path)  # fmt: skip


def test_a_run_folder_of_another_experiment_is_refused_not_shrunk(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.csv").write_text(
        "pretraining,dataset,fraction,method,imp_regime,sparsity,regime,seed,sa_best_sa,"
        "ra_best_sa,sa_best_ra,ra_best_ra,job\nX,digits,1.0,dense,,0.0,st,0,90,10,90,10,"
        "transfer-0123456789abcdef\n"
    )
    before = (run / "results.csv").read_text()
    fails(["run", demo_config(quick=True), "--out", run], capsys,
          names=("another experiment", "--out"), watch=tmp_path)  # fmt: skip
    assert (run / "results.csv").read_text() == before


# --- files ------------------------------------------------------------------------------------


def test_a_finished_pretraining_is_not_redone_and_another_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "w.safetensors"
    argv = ["pretrain", "--arch", "resnet8", "--data", "digits", "--regime", "std",
            "--epochs", "1", "--out", out, "--set", "data.fraction=0.05"]  # fmt: skip
    assert _code(argv) == 0
    made = out.stat().st_mtime_ns
    capsys.readouterr()
    assert _code(argv) == 0
    assert "already trained" in capsys.readouterr().out and out.stat().st_mtime_ns == made
    fails([*argv[:-2], "--set", "data.fraction=0.1"], capsys, names=(str(out), "already there"),
          watch=tmp_path)  # fmt: skip
    # Files are readable by colleagues on a shared machine (the umask's mode, not 0600).
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


def test_tickets_of_another_method_are_not_overwritten(tmp_path, capsys, files):
    out = tmp_path / "t"
    omp = ["find-tickets", "--weights", files["weights"], "--method", "omp", "--sparsities", "0.5", "--out", out]  # fmt: skip
    assert _code(omp) == 0 and _code(omp) == 0  # the same run again resumes
    assert _code([*omp[:-3], "0.8", *omp[-2:]]) == 0  # more rungs of the same run sit beside
    before = (out / "ticket-0.500000.safetensors").read_bytes()
    fails([*omp[:4], "random", *omp[5:]], capsys, names=("holds tickets of another run", "omp"),
          watch=tmp_path)  # fmt: skip
    assert (out / "ticket-0.500000.safetensors").read_bytes() == before


def test_tickets_convert_names_each_formats_suffix_and_may_overwrite(tmp_path, capsys, files):
    target = tmp_path / "official.safetensors"
    fails(["tickets", "convert", files["ticket"], target, "--to", "official"], capsys,
          names=("*.pt",), watch=tmp_path)  # fmt: skip
    official = tmp_path / "official.pt"
    for _ in range(2):  # onto an existing file: replaced, not "is not a folder"
        assert _code(["tickets", "convert", files["ticket"], official, "--to", "official"]) == 0
    fails(["tickets", "convert", official, tmp_path / "back.pt", "--to", "doublewin"], capsys,
          names=("*.safetensors",), watch=tmp_path)  # fmt: skip


# --- tracebacks that are now one line ----------------------------------------------------------


def test_a_path_component_over_the_filesystems_limit_is_one_line(tmp_path, capsys, files):
    long = tmp_path / ("a" * 300) / "out"
    fails(["transfer", "--weights", files["weights"], "--data", "digits", "--regime", "st", "--out", long],
          capsys, names=("File name too long",), watch=tmp_path)  # fmt: skip


def test_a_corrupt_image_in_a_folder_dataset_is_one_line_naming_it(tmp_path, capsys, files):
    from PIL import Image

    root = tmp_path / "data"
    for split in ("train", "val"):
        for label in ("a", "b"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(4):
                Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(folder / f"{i}.png")
    bad = root / "train" / "a" / "9.png"
    bad.write_bytes(b"not an image at all")
    out = tmp_path / "out"
    fails(["transfer", "--weights", files["weights"], "--data", f"folder:{root}", "--regime", "st",
           "--epochs", "1", "--resolution", "8", "--out", out, "--set", "train.batch_size=2"], capsys,
          names=(str(bad), "not a readable image"), watch=tmp_path)  # fmt: skip


def test_slurm_that_does_not_answer_is_one_line(tmp_path, capsys, monkeypatch):
    pytest.importorskip("submitit", reason="submitit comes with the test extras")
    fake = tmp_path / "bin"
    fake.mkdir()
    for tool in ("sbatch", "srun", "squeue", "sacct", "scancel"):
        (fake / tool).write_text(
            "#!/bin/sh\necho 'sbatch: error: Batch job submission failed: Unable to contact "
            "slurm controller (connect failure)' >&2\nexit 1\n"
        )
        (fake / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    fails(["run", demo_config(quick=True), "--executor", "slurm", "--out", tmp_path / "r"], capsys,
          code=1, names=("Slurm did not take the jobs", "--executor local"), watch=fake)  # fmt: skip


def test_a_warning_is_one_line_in_the_tools_words(tmp_path, capsys, files):
    """export of a ticket drawn from other weights of the same architecture: the warning once,
    without Python's category and source line."""
    from doublewin.models import load_weights, save_weights

    state, meta = load_weights(files["weights"])
    other = tmp_path / "other.safetensors"
    save_weights(other, {k: v + 0.01 if v.is_floating_point() else v for k, v in state.items()}, meta)  # fmt: skip
    assert _code(["export", "--weights", other, "--ticket", files["ticket"], "--out", tmp_path / "e"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "Warning" not in err.replace("warning:", "") and ".py:" not in err


def test_every_option_shows_its_default_and_the_extras_are_named():
    """--help of every command: each option that can be left out says what it is then, either
    typer's [default: …] or the help text's own; --executor names the extras it needs."""
    from typer.main import get_command

    from doublewin.cli.app import app

    def commands(command, prefix=""):
        subs = getattr(command, "commands", None)
        if not subs:
            yield prefix.strip(), command
            return
        for name, sub in subs.items():
            yield from commands(sub, f"{prefix}{name} ")

    silent = []
    for name, command in commands(get_command(app)):
        for p in command.params:
            if getattr(p, "param_type_name", "") != "option" or p.name == "help":
                continue
            if p.required or p.is_flag or p.multiple or p.opts[0] in ("--config", "--set"):
                continue
            if p.default is None and "default" not in (p.help or "").lower():
                silent.append(f"{name} {p.opts[0]}")
    assert silent == []
    run = next(c for n, c in commands(get_command(app)) if n == "run")
    executor = next(p for p in run.params if p.opts[0] == "--executor")
    assert "doublewin[ray]" in executor.help and "doublewin[slurm]" in executor.help
    pretrain = next(c for n, c in commands(get_command(app)) if n == "pretrain")
    epochs = next(p for p in pretrain.params if p.opts[0] == "--epochs")
    assert "[default: 10]" in epochs.help


def test_cuda_out_of_memory_is_one_line_naming_the_batch_size(tmp_path, capsys, files, monkeypatch):
    """The CPU twin of the gpu test: an out-of-memory error raised inside training (here made
    to happen) ends as one line naming the batch size to lower, exit 2, nothing written."""
    import torch

    import doublewin.train.engine as engine

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(engine, "_train_epoch", oom)
    fails(["transfer", "--weights", files["weights"], "--data", "digits", "--regime", "st",
           "--epochs", "1", "--out", tmp_path / "out", "--set", "train.batch_size=64"], capsys,
          names=("CUDA out of memory", "batch size 64", "--set train.batch_size=32"), watch=tmp_path)  # fmt: skip


def test_piped_output_never_cuts_a_path_and_pretrain_says_when_it_measures_the_source(tmp_path):
    """Piped, a line longer than 80 columns stays one line (a path or hash whole for grep and
    copy-paste); and after training, pretrain shows the source evaluation's progress instead of
    going silent."""
    import subprocess
    import sys

    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "weights.safetensors"
    deep.parent.mkdir(parents=True)
    run = subprocess.run(
        [sys.executable, "-m", "doublewin", "pretrain", "--arch", "resnet8", "--data", "digits",
         "--regime", "std", "--epochs", "1", "--out", str(deep), "--set", "data.fraction=0.05"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = next(line for line in run.stdout.splitlines() if "source SA" in line)
    assert summary.startswith(str(deep)) and len(summary) > 80
    assert "source SA/RA on the validation split" in run.stderr + run.stdout
