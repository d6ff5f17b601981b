"""Nothing is downloaded at run time: the quick demo's stages (pre-training, the control, IMP
tickets, ST and AT transfer, the report) run with every socket connection refused."""

from __future__ import annotations

import socket

import pytest

from doublewin.cli import main
from doublewin.core import paths


class NetworkUsed(RuntimeError):
    pass


def _refuse(*args, **kwargs):
    raise NetworkUsed(f"network access attempted: {args[1:] or kwargs}")


def test_the_quick_demos_stages_run_with_the_network_blocked(tmp_path, monkeypatch):
    monkeypatch.setenv("DOUBLEWIN_CACHE", str(tmp_path / "cache"))  # embedded data made anew
    for name in ("connect", "connect_ex", "sendto"):
        monkeypatch.setattr(socket.socket, name, _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)
    with pytest.raises(NetworkUsed):  # the block is real
        socket.create_connection(("example.org", 80))
    out = tmp_path / "run"
    main(
        [
            "demo", "--quick", "--out", str(out), "--jobs", "1", "--json",
            "--set", "seeds=[0]", "--set", "tickets.transfer_rungs=[1]",
            "--set", "pretrain.runs={STD: {train: {regime: std}}, CONTROL: {kind: control}}",
        ]
    )  # fmt: skip
    assert (out / paths.REPORT_DIR / paths.REPORT_HTML).is_file()
    # Dense STD and control, and STD's rung-1 IMP ticket, each under ST and AT.
    assert len((out / paths.RESULTS).read_text().splitlines()) == 1 + 6
