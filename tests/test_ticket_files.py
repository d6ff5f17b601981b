"""Tickets you already have: an experiment transfers ticket files instead of drawing them, with
no ticket job in its plan; the rows equal those of the grid that drew the same tickets, and
the same masks in the official format are the same store entries."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from doublewin.core import paths
from doublewin.core.results import TIMING_COLUMNS
from doublewin.core.specs import MaskScope
from doublewin.experiments.run.folder import make_plan
from doublewin.models import build_model
from doublewin.tickets import load_ticket, save_ticket
from doublewin.tickets.mask import Mask
from doublewin.tickets.official import save_official
from doublewin.tickets.ticket import Ticket, make_info

PRETRAIN = {
    "data": {"name": "chars", "fraction": 0.02, "val_size": 100, "augment": "none"},
    "train": {"epochs": 1, "batch_size": 64, "lr": 0.1, "schedule": "cosine", "val_ra": False},
    "eval_attack": {"steps": 1, "step": 8 / 255},
    "runs": {"STD": {"train": {"regime": "std"}}},
}
TRANSFER = {
    "datasets": ["digits"],
    "fractions": [0.5],
    "data": {"resolution": 8, "test_limit": 64, "val_size": 30, "augment": "none"},
    "regimes": {
        "st": {"epochs": 1, "batch_size": 32, "lr": 0.1},
        "at": {"epochs": 1, "batch_size": 32, "lr": 0.1, "attack": {"steps": 1, "step": 8 / 255}},
    },
    "eval_attack": {"steps": 1, "step": 8 / 255},
}
TICKETS = {
    "methods": ["imp"],
    "prune_rate": 0.5,
    "rounds": 2,
    "data": {"name": "chars", "fraction": 0.01, "val_size": 100, "augment": "none"},
    "train": {"epochs": 1, "batch_size": 64, "lr": 0.01, "schedule": "constant", "val_ra": False},
}


def _experiment(tmp: Path, name: str, tickets=None, files=None) -> Path:
    pretrain = json.loads(json.dumps(PRETRAIN))
    if files is not None:
        pretrain["runs"]["STD"]["tickets"] = {"files": str(files)}
    raw = {
        "name": name,
        "arch": "resnet8",
        "seeds": [0],
        "store": str(tmp / "store"),
        "pretrain": pretrain,
        "transfer": TRANSFER,
        "verdict": {"rule": "paper"},
    }
    if tickets is not None:
        raw["tickets"] = tickets
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _rows(path: Path) -> dict[tuple, dict[str, str]]:
    out = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            key = (row["method"], row["sparsity"], row["regime"], row["seed"])
            out[key] = {
                k: v
                for k, v in row.items()
                if k not in TIMING_COLUMNS and k not in ("job", "spec.ticket", "rung")
            }
    return out


def test_a_grid_from_ticket_files_equals_the_grid_that_drew_them(tmp_path, cli):
    drew = _experiment(tmp_path, "drew", tickets=TICKETS)
    code, _, err = cli("run", str(drew), "--out", str(tmp_path / "drew"), "--device", "cpu")
    assert code == 0, err
    (entry,) = (tmp_path / "store").glob("tickets-*")
    files = tmp_path / "mine"
    files.mkdir()
    for ticket in entry.glob("ticket-*.safetensors"):
        (files / ticket.name).write_bytes(ticket.read_bytes())

    mine = _experiment(tmp_path, "mine", files=files)
    plan = make_plan(mine, run_dir=tmp_path / "mine-run")
    assert not [j for j in plan.jobs if j.stage == "tickets"]
    assert len([j for j in plan.jobs if j.stage == "transfer"]) == 2 * 3  # dense + 2 rungs
    code, _, err = cli("run", str(mine), "--out", str(tmp_path / "mine-run"))
    assert code == 0, err
    drawn_rows = _rows(tmp_path / "drew" / paths.RESULTS)
    file_rows = _rows(tmp_path / "mine-run" / paths.RESULTS)
    assert set(file_rows) == set(drawn_rows) and len(file_rows) == 6
    for key, row in file_rows.items():
        assert row == drawn_rows[key], key

    # The same masks as official files: the same transfer entries, nothing computed again.
    official = tmp_path / "official"
    official.mkdir()
    for ticket in files.glob("*.safetensors"):
        # Without doublewin's metadata: the file the official code writes.
        save_official(official / f"{ticket.stem}.pth", load_ticket(ticket), metadata=False)
    converted = _experiment(tmp_path, "official", files=official)
    again = make_plan(converted, run_dir=tmp_path / "official-run")
    transfers = {j.id for j in again.jobs if j.stage == "transfer"}
    assert transfers == {j.id for j in plan.jobs if j.stage == "transfer"}
    assert transfers <= again.done


def test_an_empty_ticket_folder_is_one_line_naming_the_key(tmp_path, cli):
    empty = tmp_path / "none"
    empty.mkdir()
    code, _, err = cli("run", str(_experiment(tmp_path, "e", files=empty)), "--dry-run")
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "pretrain.runs.STD.tickets.files" in err and "holds no ticket file" in err


def test_a_ticket_for_another_architecture_is_one_line_naming_the_file(tmp_path, cli):
    model = build_model("resnet20", 47)
    mask = Mask.dense(model, MaskScope())
    ticket = Ticket(mask, make_info(mask, arch="resnet20", method="omp", weights_hash=""))
    folder = tmp_path / "other"
    folder.mkdir()
    save_ticket(folder / "resnet20.safetensors", ticket)
    code, _, err = cli("run", str(_experiment(tmp_path, "o", files=folder)), "--dry-run")
    assert code == 2
    assert "resnet20.safetensors" in err and "resnet8" in err
    assert err.strip().count("\n") == 0


@pytest.mark.parametrize("bad", ["yes", 3, {"folder": "x"}])
def test_a_tickets_entry_that_is_neither_a_flag_nor_files_is_refused(tmp_path, cli, bad):
    raw = yaml.safe_load(_experiment(tmp_path, "b").read_text())
    raw["pretrain"]["runs"]["STD"]["tickets"] = bad
    path = tmp_path / "b2.yaml"
    path.write_text(yaml.safe_dump(raw))
    code, _, err = cli("run", str(path), "--dry-run")
    assert code == 2 and "pretrain.runs.STD.tickets" in err
