"""`doublewin store gc`: resume files of finished entries and unfinished entries nobody works on
go; every finished result stays; --dry-run removes nothing."""

from __future__ import annotations

import fcntl
import json

import yaml

from doublewin.cli import main
from doublewin.core import paths


def _run_dir(tmp_path):
    run = tmp_path / "run"
    store = run / paths.STORE_DIR
    finished = store / "transfer-aaaa"
    finished.mkdir(parents=True)
    for name, text in ((paths.SPEC, "{}"), (paths.METRICS, "{}"), (paths.DONE, "x")):
        (finished / name).write_text(text)
    (finished / paths.CHECKPOINT).write_bytes(b"0" * 1000)
    (finished / paths.TRAJECTORY_DIR).mkdir()
    (finished / paths.TRAJECTORY_DIR / paths.snapshot(0)).write_bytes(b"0" * 500)
    abandoned = store / "transfer-bbbb"
    abandoned.mkdir()
    (abandoned / paths.CHECKPOINT).write_bytes(b"0" * 300)
    busy = store / "transfer-cccc"
    busy.mkdir()
    (busy / paths.LOCK).touch()
    (run / paths.EXPERIMENT).write_text(
        yaml.safe_dump({"pretrain": {"runs": {"STD": {}}}, "store": str(store)})
    )
    return run, finished, abandoned, busy


def test_gc_removes_what_no_finished_result_needs(tmp_path, capsys):
    run, finished, abandoned, busy = _run_dir(tmp_path)
    with open(busy / paths.LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # a live runner works on it
        main(["store", "gc", str(run), "--dry-run", "--json"])
        dry = json.loads(capsys.readouterr().out)
        assert dry["bytes"] == 1800 and not dry["removed"]
        assert (finished / paths.CHECKPOINT).exists() and abandoned.exists()
        main(["store", "gc", str(run), "--json"])
        done = json.loads(capsys.readouterr().out)
    assert done["bytes"] == 1800
    assert not (finished / paths.CHECKPOINT).exists()
    assert not (finished / paths.TRAJECTORY_DIR).exists()
    assert {p.name for p in finished.iterdir()} == {paths.SPEC, paths.METRICS, paths.DONE}
    assert not abandoned.exists()
    assert busy.exists()  # locked: left alone
