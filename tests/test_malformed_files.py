"""Every file a user names, malformed five ways, is one line naming the file and exit 2.

Every file-taking option of every command × {empty, text, random bytes, a valid file cut in
half, a valid file of another kind}: never a traceback, never a half-written output
(core/foreign.py is the one reader they go through)."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
import torch

from doublewin.cli import main
from doublewin.core import paths
from doublewin.core.build import load_spec
from doublewin.models import build_model
from doublewin.stages import Inputs, run_stage
from test_bad_input import fails

MALFORMED = ("empty", "text", "random", "truncated", "wrong-kind")


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> dict[str, Path]:
    """One valid file of every kind a command reads."""
    root = tmp_path_factory.mktemp("valid")
    spec = load_spec("pretrain", {"arch": "resnet8", "data": {"name": "digits"}, "kind": "control"})
    run_stage("pretrain", spec, Inputs(), root / "theta", device=torch.device("cpu"))
    weights = root / "theta" / paths.WEIGHTS
    main(["find-tickets", "--weights", str(weights), "--method", "omp", "--sparsities", "0.5",
          "--out", str(root / "tickets"), "--json"])  # fmt: skip
    checkpoint = root / "resnet8.pth"
    torch.save(build_model("resnet8", 10).state_dict(), checkpoint)
    # YAML written as one flow mapping, so any cut of it is a syntax error, not fewer keys.
    stage = root / "stage.yaml"
    stage.write_text("{train: {epochs: 1, lr: 0.1, batch_size: 64, schedule: cosine}}\n")
    experiment = root / "experiment.yaml"
    experiment.write_text(
        "{name: e, pretrain: {runs: {STD: {train: {regime: std}}}}, seeds: [0, 1, 2]}\n"
    )
    verdict = root / "verdict.yaml"
    verdict.write_text("{rule: interval, margin_floor: 1.0, std_multiplier: 1.0}\n")
    results = root / "results.csv"
    header = (
        "pretraining,dataset,fraction,method,imp_regime,sparsity,regime,seed,sa_best_sa,ra_best_ra"
    )
    lines = [header] + [
        f"STD,digits,1.0,{m},,{s},{r},{seed},{90 - 10 * s:.1f},{40 - 10 * s:.1f}"
        for m, s in (("dense", 0.0), ("omp", 0.5))
        for r in ("st", "at")
        for seed in (0, 1, 2)
    ]
    results.write_text("\n".join(lines) + "\n")
    return {
        "weights": weights,
        "ticket": root / "tickets" / paths.ticket(0.5),
        "checkpoint": checkpoint,
        "stage": stage,
        "experiment": experiment,
        "verdict": verdict,
        "results": results,
    }


# kind of file → (a valid file of another kind, the file name the command sees)
WRONG_KIND = {
    "weights": ("ticket", "w.safetensors"),
    "ticket": ("weights", "t.safetensors"),
    "checkpoint": ("results", "c.pth"),
    "stage": ("ticket", "c.yaml"),
    "experiment": ("results", "e.yaml"),
    "verdict": ("ticket", "v.yaml"),
    "results": ("weights", "r.csv"),
}


def _argv(option: str, file: Path, valid: dict[str, Path], out: Path) -> list:
    """The command line that hands ``file`` to ``option`` (the rest valid)."""
    w = valid["weights"]
    return {
        "tickets inspect": ["tickets", "inspect", file],
        "tickets convert": ["tickets", "convert", file, out / "t.pth", "--to", "official"],
        "transfer --weights": ["transfer", "--weights", file, "--data", "digits", "--out", out / "o"],
        "transfer --ticket": ["transfer", "--weights", w, "--ticket", file, "--data", "digits",
                              "--out", out / "o"],
        "transfer --config": ["transfer", "--weights", w, "--config", file, "--data", "digits",
                              "--out", out / "o"],
        "evaluate --weights": ["evaluate", "--weights", file, "--data", "digits"],
        "evaluate --ticket": ["evaluate", "--weights", w, "--ticket", file, "--data", "digits"],
        "find-tickets --weights": ["find-tickets", "--weights", file, "--method", "omp",
                                   "--sparsities", "0.5", "--out", out / "tk"],
        "landscape --weights": ["landscape", "--weights", file, "--data", "digits",
                                "--out", out / "l"],
        "landscape --ticket": ["landscape", "--weights", w, "--ticket", file, "--data", "digits",
                               "--out", out / "l"],
        "pretrain --config": ["pretrain", "--config", file, "--data", "digits",
                              "--out", out / "p.safetensors"],
        "import-weights": ["import-weights", file, "--format", "torchvision", "--arch", "resnet8",
                           "--out", out / "i.safetensors"],
        "run": ["run", file, "--out", out / "run", "--dry-run"],
        "verdict": ["verdict", file],
        "verdict --config": ["verdict", valid["results"], "--config", file],
    }[option]  # fmt: skip


OPTIONS = {
    "tickets inspect": "ticket",
    "tickets convert": "ticket",
    "transfer --weights": "weights",
    "transfer --ticket": "ticket",
    "transfer --config": "stage",
    "evaluate --weights": "weights",
    "evaluate --ticket": "ticket",
    "find-tickets --weights": "weights",
    "landscape --weights": "weights",
    "landscape --ticket": "ticket",
    "pretrain --config": "stage",
    "import-weights": "checkpoint",
    "run": "experiment",
    "verdict": "results",
    "verdict --config": "verdict",
}


def _malformed(how: str, kind: str, valid: dict[str, Path], folder: Path) -> Path:
    other, name = WRONG_KIND[kind]
    path = folder / name
    if how == "empty":
        path.write_bytes(b"")
    elif how == "text":
        path.write_text("hello, this is not what you think\n")
    elif how == "random":
        path.write_bytes(random.Random(7).randbytes(512))
    elif how == "truncated":
        data = valid[kind].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        shutil.copyfile(valid[other], path)
    return path


@pytest.mark.parametrize("how", MALFORMED)
@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_a_malformed_file_is_one_line_naming_it_and_exit_2(option, how, valid, tmp_path, capsys):
    kind = OPTIONS[option]
    inputs = tmp_path / "in"
    inputs.mkdir()
    file = _malformed(how, kind, valid, inputs)
    out = tmp_path / "out"
    out.mkdir()
    fails(_argv(option, file, valid, out), capsys, names=(file.name,), watch=out)
