"""What a new user trips on in the first hour: defaults that fit the run, and mistakes that
must not pass silently (each one line, exit 2, nothing half-written, or the documented
behaviour)."""

from __future__ import annotations

from doublewin.cli import main
from doublewin.experiments.demo import demo_config, demo_jobs


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
