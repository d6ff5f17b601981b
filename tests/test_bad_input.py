"""Every bad input gets one clear line naming it, a non-zero exit code, and leaves nothing
behind: each case asserts the exit code, a one-line message naming the input, and that the
output paths hold nothing new. Commands run in-process (`doublewin.cli.main`)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from doublewin.cli import main
from doublewin.core import paths
from doublewin.core.build import load_spec
from doublewin.models import WeightsMeta, build_model, save_weights

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "doublewin" / "configs"


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def fails(argv, capsys, *, code: int = 2, names: tuple[str, ...] = (), watch: Path):
    """Run ``argv``; assert exit ``code``, a one-line message containing every ``names``, and
    no new file or folder under ``watch``. Returns the message."""
    capsys.readouterr()
    before = _tree(watch)
    with pytest.raises(SystemExit) as stopped:
        main([str(a) for a in argv])
    assert stopped.value.code == code, capsys.readouterr().err
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    assert _tree(watch) == before, sorted(_tree(watch) - before)
    return lines[0]


def _transfer(files, out, *extra):
    return ["transfer", "--weights", files["weights"], "--data", "digits", "--out", out,
            "--epochs", "1", "--fraction", "0.05", *extra]  # fmt: skip


# --- the failures the issue lists -------------------------------------------------------


def test_a_folder_at_pretrains_out_fails_before_training(tmp_path, capsys):
    (tmp_path / "w.safetensors").mkdir()
    fails(["pretrain", "--data", "digits", "--out", tmp_path / "w.safetensors"], capsys,
          names=("w.safetensors", "folder"), watch=tmp_path)  # fmt: skip


def test_an_unwritable_out_fails_before_compute(tmp_path, capsys, files):
    # /proc refuses new files even to root: a stand-in for a read-only filesystem.
    target = Path("/proc/self/doublewin-out")
    for argv in (
        ["pretrain", "--data", "digits", "--out", target / "w.safetensors"],
        _transfer(files, target),
        ["find-tickets", "--weights", files["weights"], "--method", "omp", "--sparsities",
         "0.5", "--out", target],
        ["import-weights", files["weights"], "--format", "torchvision", "--arch", "resnet8",
         "--out", target / "w.safetensors"],
        ["run", CONFIGS / "demo-quick.yaml", "--out", target],
    ):  # fmt: skip
        fails(argv, capsys, names=("cannot write",), watch=tmp_path)


def test_a_truncated_ticket_is_one_line(tmp_path, capsys, files):
    broken = tmp_path / "broken.safetensors"
    data = files["ticket"].read_bytes()
    broken.write_bytes(data[: len(data) - 40])
    fails(_transfer(files, tmp_path / "out", "--ticket", broken), capsys,
          names=("broken.safetensors",), watch=tmp_path)  # fmt: skip


def _quick_run_dir(tmp_path: Path, store: str | None = None) -> Path:
    import yaml

    raw = yaml.safe_load((CONFIGS / "demo-quick.yaml").read_text())
    if store is not None:
        raw["store"] = store
    run = tmp_path / "run"
    run.mkdir()
    (run / paths.EXPERIMENT).write_text(yaml.safe_dump(raw))
    return run


def test_a_corrupt_metrics_file_in_the_store_names_it_and_keeps_results(tmp_path, capsys):
    from doublewin.experiments.run.folder import make_plan

    run = _quick_run_dir(tmp_path)
    plan = make_plan(run / paths.EXPERIMENT, run_dir=run)
    job = next(j for j in plan.jobs if j.stage == "transfer")
    entry = run / paths.STORE_DIR / job.id
    entry.mkdir(parents=True)
    (entry / paths.METRICS).write_text("{broken")
    (entry / paths.DONE).write_text("x\n")
    (run / paths.RESULTS).write_text("pretraining,dataset\nSTD,digits\n")
    fails(["report", run], capsys, code=1, names=(paths.METRICS, job.id), watch=tmp_path)
    assert (run / paths.RESULTS).read_text() == "pretraining,dataset\nSTD,digits\n"


def test_report_with_a_store_that_is_not_there_fails_and_keeps_results(tmp_path, capsys):
    run = _quick_run_dir(tmp_path, store="shared-store")  # relative: resolves elsewhere
    table = "pretraining,dataset\nSTD,digits\n"
    (run / paths.RESULTS).write_text(table)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cwd = os.getcwd()
    os.chdir(elsewhere)
    try:
        fails(["report", run], capsys, names=("shared-store", "store"), watch=tmp_path)
    finally:
        os.chdir(cwd)
    assert (run / paths.RESULTS).read_text() == table


def test_report_never_replaces_results_with_a_smaller_table(tmp_path, capsys):
    from doublewin.analysis.results_table import write_results_csv

    run = _quick_run_dir(tmp_path)
    (run / paths.STORE_DIR).mkdir()
    write_results_csv([{"pretraining": "STD", "dataset": "digits", "seed": 0}], run / "t.csv")
    shutil.move(run / "t.csv", run / paths.RESULTS)
    before = (run / paths.RESULTS).read_text()
    fails(["report", run], capsys, names=("0 finished", "1 rows"), watch=tmp_path)
    assert (run / paths.RESULTS).read_text() == before


def test_flipped_bytes_behind_an_intact_header_are_caught(tmp_path, capsys, files):
    damaged = tmp_path / "damaged.safetensors"
    data = bytearray(files["weights"].read_bytes())
    header = int.from_bytes(data[:8], "little") + 8
    for i in range(header + 100, header + 140):
        data[i] ^= 0xFF
    damaged.write_bytes(bytes(data))
    fails(["evaluate", "--weights", damaged, "--data", "digits", "--steps", "1"], capsys,
          names=("damaged.safetensors", "corrupt"), watch=tmp_path)  # fmt: skip


def test_failed_transfers_leave_no_output_folder(tmp_path, capsys, files):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not weights at all")
    out = tmp_path / "out"
    fails(["transfer", "--weights", garbage, "--data", "digits", "--out", out], capsys,
          names=("garbage.safetensors",), watch=tmp_path)  # fmt: skip
    fails(["transfer", "--weights", files["weights"], "--data", "nosuchset", "--out", out],
          capsys, names=("nosuchset",), watch=tmp_path)  # fmt: skip
    fails(_transfer(files, out, "--device", "cuda:7"), capsys, names=("cuda",), watch=tmp_path)


def test_weights_holding_nan_are_bad_input_before_anything_runs(tmp_path, capsys, files):
    from doublewin.models import load_weights

    state, meta = load_weights(files["weights"])
    state = {k: v.clone() for k, v in state.items()}
    first = next(k for k, v in state.items() if v.dim() == 4)
    state[first].view(-1)[0] = float("nan")  # one poisoned weight
    poisoned = tmp_path / "poisoned.safetensors"
    save_weights(poisoned, state, meta)
    for argv in (
        _transfer({"weights": poisoned}, tmp_path / "out"),
        ["find-tickets", "--weights", poisoned, "--method", "omp", "--sparsities", "0.5",
         "--out", tmp_path / "t"],
        ["evaluate", "--weights", poisoned, "--data", "digits", "--limit", "10"],
    ):  # fmt: skip
        fails(argv, capsys, names=("poisoned.safetensors", first, "NaN"), watch=tmp_path)


def test_a_loss_that_turns_nan_is_bad_input_and_leaves_nothing(tmp_path, capsys, files):
    before = _tree(tmp_path)
    with pytest.raises(SystemExit) as stopped:  # a learning rate that diverges at once
        main(
            [
                str(a)
                for a in _transfer(
                    files, tmp_path / "out", "--set", "train.lr=1e12", "--set", "train.batch_size=8"
                )
            ]
        )
    assert stopped.value.code == 2
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert "lower train.lr" in line and ("NaN" in line or "infinite" in line)
    assert _tree(tmp_path) == before


def test_run_with_an_impossible_device_writes_nothing(tmp_path, capsys):
    for command in (["run", CONFIGS / "demo-quick.yaml"], ["demo", "--quick"]):
        fails([*command, "--out", tmp_path / "run", "--device", "cuda:3"], capsys,
              names=("cuda:3",), watch=tmp_path)  # fmt: skip


def test_a_ticket_given_as_weights_is_told_to_pass_it_as_ticket(tmp_path, capsys, files):
    message = fails(["transfer", "--weights", files["ticket"], "--data", "digits", "--out",
                     tmp_path / "o"], capsys, names=("--ticket",), watch=tmp_path)  # fmt: skip
    assert "import-weights" not in message


def test_a_text_file_given_to_import_weights_is_not_told_to_trust_pickle(tmp_path, capsys):
    text = tmp_path / "notes.pt"
    text.write_text("hello, these are not weights\n")
    message = fails(["import-weights", text, "--format", "torchvision", "--arch", "resnet8",
                     "--out", tmp_path / "w.safetensors"], capsys,
                    names=("notes.pt", "not a torch checkpoint"), watch=tmp_path)  # fmt: skip
    assert "trust-pickle" not in message


def test_the_set_error_suggests_an_override_that_works(tmp_path, capsys, files):
    message = fails(_transfer(files, tmp_path / "o", "--set", "train.epochs"), capsys,
                    names=("train.epochs",), watch=tmp_path)  # fmt: skip
    suggested = message.split("e.g. ")[1].strip()
    assert load_spec("transfer", {}, [suggested]).train.epochs == 5


def test_a_key_error_names_the_key_where_it_was_written(tmp_path, capsys):
    experiment = tmp_path / "e.yaml"
    experiment.write_text("pretrain: {train: {epochz: 3}, runs: {STD: {train: {regime: std}}}}\n")
    fails(["run", experiment, "--dry-run"], capsys, names=("pretrain.train.epochz",),
          watch=tmp_path)  # fmt: skip


def test_a_missing_stage_config_is_called_a_stage_config(tmp_path, capsys, files):
    message = fails(_transfer(files, tmp_path / "o", "--config", tmp_path / "none.yaml"),
                    capsys, names=("none.yaml", "transfer spec"), watch=tmp_path)  # fmt: skip
    assert "experiment" not in message


def test_a_ticket_that_keeps_nothing_is_refused(tmp_path, capsys, files):
    zeros = {f"{k[: -len('.weight')]}.weight_mask": torch.zeros_like(v)
             for k, v in build_model("resnet8", 10).state_dict().items()
             if k.endswith(".weight") and v.dim() == 4}  # fmt: skip
    official = tmp_path / "zeros.pth.tar"
    torch.save(zeros, official)
    fails(["tickets", "convert", official, tmp_path / "t.safetensors", "--to", "doublewin",
           "--arch", "resnet8"], capsys, names=("keeps no weight",), watch=tmp_path)  # fmt: skip
    fails(["find-tickets", "--weights", files["weights"], "--method", "omp", "--sparsities",
           "1.0", "--out", tmp_path / "t"], capsys, names=("sparsities",),
          watch=tmp_path)  # fmt: skip


def test_an_eps_above_one_is_a_unit_mistake(tmp_path, capsys):
    fails(["pretrain", "--data", "digits", "--regime", "at", "--eps", "8", "--out",
           tmp_path / "w.safetensors"], capsys, names=("eps", "8/255"),
          watch=tmp_path)  # fmt: skip


def test_one_eps_sets_every_attack_of_the_stage_unless_one_is_written_out():
    spec = load_spec("pretrain", {}, ["train.regime=at", "train.attack.eps=4/255"])
    assert spec.train.attack.eps == spec.train.val_attack.eps == spec.eval_attack.eps == 4 / 255
    explicit = load_spec("pretrain", {}, ["train.attack.eps=4/255", "eval_attack.eps=2/255"])
    assert explicit.eval_attack.eps == 2 / 255 and explicit.train.val_attack.eps == 4 / 255
    transfer = load_spec("transfer", {}, ["train.regime=at", "train.attack.eps=2/255"])
    assert transfer.eval_attack.eps == transfer.train.val_attack.eps == 2 / 255


def test_eps_zero_raises_no_gradient_masking_warning(files, capsys):
    main(["evaluate", "--weights", files["weights"], "--data", "digits", "--eps", "0",
          "--steps", "1", "--check-points", "50", "--json"])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    ladder = next(c for c in report["checks"] if c["name"] == "eps-ladder")
    assert not ladder["flagged"] and "ε = 0" in ladder["detail"]
    assert report["ladder"] == []


def test_a_small_cifar_folder_evaluates_on_its_test_split(tmp_path, capsys):
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for b, n in enumerate((260,) * 5, start=1):
        data = np.random.default_rng(b).integers(0, 256, (n, 3072), dtype=np.uint8)
        with open(folder / f"data_batch_{b}", "wb") as handle:
            pickle.dump({b"data": data, b"labels": [i % 10 for i in range(n)]}, handle)
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump({b"data": np.zeros((20, 3072), np.uint8), b"labels": [0] * 20}, handle)
    torch.manual_seed(0)
    weights = tmp_path / "c.safetensors"
    save_weights(weights, build_model("resnet8", 10), WeightsMeta(arch="resnet8", num_classes=10,
                                                                  input_size=32))  # fmt: skip
    main(["evaluate", "--weights", weights, "--data", "cifar10", "--data-root", tmp_path,
          "--split", "test", "--steps", "1", "--check-points", "10", "--json"])  # fmt: skip
    assert json.loads(capsys.readouterr().out)["n"] == 20
    main(["evaluate", "--weights", weights, "--data", "cifar10", "--data-root", tmp_path,
          "--split", "val", "--val-size", "30", "--steps", "1", "--check-points", "10",
          "--json"])  # fmt: skip
    assert json.loads(capsys.readouterr().out)["n"] == 30


def test_version_prints_the_package_version(capsys):
    from doublewin import __version__

    try:
        main(["--version"])
    except SystemExit as stopped:
        assert stopped.code in (0, None)
    assert capsys.readouterr().out.strip() == f"doublewin {__version__}"


# --- more bad inputs, each one line and nothing written ----------------------------------


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["transfer", "--data", "digits", "--regime", "xt"], ("--regime xt",)),
        (["transfer", "--data", "digits", "--fraction", "0"], ("fraction",)),
        (["transfer", "--data", "digits", "--fraction", "1.5"], ("fraction",)),
        (["transfer", "--data", "digits", "--set", "train.epochz=3"], ("train.epochz",)),
        (["transfer", "--data", "digits", "--set", "train.lr=-1"], ("train.lr",)),
        (["transfer", "--data", "digits", "--set", "train.schedule=wavy"], ("wavy",)),
        (["transfer", "--data", "digits", "--set", "data.augment=zoom"], ("zoom",)),
        (["transfer", "--data", "digits", "--device", "tpu"], ("tpu",)),
        (["transfer", "--data", "digits", "--ticket", "MISSING"], ("MISSING",)),
        (
            ["transfer", "--data", "digits", "--set", "train.select_from_epoch=99"],
            ("select_from_epoch",),
        ),
        (["landscape", "--data", "digits", "--grid", "4"], ("grid", "odd")),
        (["landscape", "--data", "digits", "--plane", "sphere"], ("sphere",)),
        (["landscape", "--data", "digits", "--loss", "hinge"], ("hinge",)),
        (["evaluate", "--data", "digits", "--steps", "0"], ("steps",)),
        (["evaluate", "--data", "digits", "--norm", "l3"], ("l3",)),
        (["evaluate", "--data", "digits", "--eps", "eight"], ("eight",)),
        (["evaluate", "--data", "digits", "--split", "train"], ("train",)),
        (["find-tickets", "--method", "magic"], ("magic",)),
        (["find-tickets", "--method", "omp", "--sparsities", "0.5,x"], ("0.5,x",)),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, list) else None,
)
def test_a_bad_option_is_one_line_and_writes_nothing(argv, names, tmp_path, capsys, files):
    command = [*argv[:1], "--weights", files["weights"], *argv[1:]]
    command += ["--out", tmp_path / "out"] if argv[0] != "evaluate" else []
    fails(command, capsys, names=names, watch=tmp_path)


def test_a_ticket_of_another_architecture_does_not_fit(tmp_path, capsys, files):
    fails(_transfer(files, tmp_path / "o", "--ticket", files["other_ticket"]), capsys,
          names=("ticket",), watch=tmp_path)  # fmt: skip


@pytest.mark.parametrize(
    ("content", "names"),
    [
        ("pretrain: [1, 2\n", ("not valid YAML",)),
        ("colour: blue\n", ("colour",)),
        ("pretrain: {runs: {}}\n", ("pretrain.runs",)),
        ("pretrain: {runs: {STD: {}}}\nseeds: [one]\n", ("seeds[0]",)),
        ("pretrain: {runs: {STD: {}}}\ntransfer: {fractions: [2]}\n", ("fractions",)),
        ("pretrain: {runs: {STD: {}}}\ntransfer: {regimes: {fat: {}}}\n", ("regimes.fat",)),
        ("pretrain: {runs: {STD: {}}}\ntickets: {transfer_rungs: [99]}\n", ("rung 99",)),
        ("pretrain: {runs: {STD: {}}}\nverdict: {rule: vibes}\n", ("vibes",)),
        (
            "pretrain: {runs: {STD: {}}}\n"
            "transfer: {regimes: {at: {attack: {eps: 8/255, early_stop: true}}}}\n",
            ("train.attack.early_stop",),
        ),
    ],
)
def test_a_bad_experiment_file_is_one_line_and_writes_nothing(content, names, tmp_path, capsys):
    experiment = tmp_path / "e.yaml"
    experiment.write_text(content)
    # --dry-run: a file wrongly accepted prints a plan instead of running a grid.
    fails(["run", experiment, "--out", tmp_path / "run", "--dry-run"], capsys, names=names,
          watch=tmp_path)  # fmt: skip


@pytest.mark.parametrize(
    ("content", "extra", "names"),
    [
        ("verdict: {rule: paper}\n", ["--seeds", "auto"], ("verdict.rule", "no interval")),
        ("verdict: {rule: points}\n", ["--seeds", "auto"], ("verdict.rule",)),
        ("verdict: {seeds: {min: 6, max: 4}}\n", ["--seeds", "auto"], ("verdict.seeds.min",)),
        ("verdict: {seeds: {step: 0}}\n", ["--seeds", "auto"], ("verdict.seeds.step",)),
        ("verdict: {seeds: {max: 4}}\n", [], ("verdict.seeds", "seeds: auto")),
        ("", ["--seeds", "3"], ("--seeds 3", "auto")),
    ],
)
def test_seeds_on_demand_that_cannot_work_is_one_line_before_anything_runs(
    content, extra, names, tmp_path, capsys
):
    experiment = tmp_path / "e.yaml"
    experiment.write_text("pretrain: {runs: {STD: {}}}\n" + content)
    fails(["run", experiment, "--out", tmp_path / "run", *extra], capsys, names=names,
          watch=tmp_path)  # fmt: skip


def test_missing_files_are_named(tmp_path, capsys):
    for argv, name in (
        (["run", tmp_path / "none.yaml"], "none.yaml"),
        (["verdict", tmp_path / "none.csv"], "none.csv"),
        (["report", tmp_path / "norun"], "norun"),
        (["tickets", "inspect", tmp_path / "none.safetensors"], "none.safetensors"),
        (["evaluate", "--weights", tmp_path / "w.safetensors", "--data", "digits"],
         "w.safetensors"),
        (["import-weights", tmp_path / "c.pt", "--format", "torchvision", "--arch",
          "resnet8", "--out", tmp_path / "w.safetensors"], "c.pt"),
    ):  # fmt: skip
        fails(argv, capsys, names=(name,), watch=tmp_path)


def test_an_official_ticket_of_unknown_architecture_asks_for_arch(tmp_path, capsys):
    official = tmp_path / "odd.pth"
    torch.save({"stem.weight_mask": torch.ones(5, 3, 7, 7)}, official)
    fails(["tickets", "convert", official, tmp_path / "t.safetensors", "--to", "doublewin"],
          capsys, names=("odd.pth", "--arch"), watch=tmp_path)  # fmt: skip


def test_conversions_check_their_arguments(tmp_path, capsys, files):
    fails(["tickets", "convert", files["ticket"], tmp_path / "t.pth", "--to", "onnx"], capsys,
          names=("onnx",), watch=tmp_path)  # fmt: skip
    fails(["import-weights", files["weights"], "--format", "keras", "--arch", "resnet8",
           "--out", tmp_path / "w.safetensors"], capsys, names=("keras",),
          watch=tmp_path)  # fmt: skip
    fails(["import-weights", files["weights"], "--format", "torchvision", "--arch", "resnet8",
           "--out", tmp_path / "w.pt"], capsys, names=("safetensors",),
          watch=tmp_path)  # fmt: skip


def test_two_demos_at_once_are_one_line_before_anything_runs(tmp_path, capsys):
    fails(["demo", "--quick", "--vit", "--out", tmp_path / "run"], capsys, names=("--vit",),
          watch=tmp_path)  # fmt: skip
